package io.github.flagsidecar;

import com.google.common.hash.Hashing;
import java.math.BigDecimal;
import java.math.MathContext;
import java.math.RoundingMode;
import java.nio.charset.StandardCharsets;
import java.util.Optional;
import java.util.OptionalInt;

/**
 * The bucket a split puts a user in, computed as the sidecar does (README, "Percentage splits"):
 * MurmurHash3 x86 32-bit, seed 0 (Guava's {@code Hashing.murmur3_32_fixed}), of the UTF-8 bytes
 * of "&lt;flag key&gt;:&lt;text&gt;", times 10000, shifted right by 32.
 */
public final class Bucket {
  /** The number of buckets a split divides users into. */
  public static final int COUNT = 10_000;

  private static final double EXPONENT_BELOW = 1e-4;

  private Bucket() {}

  /**
   * The bucket in [0, {@link #COUNT}) of a bucket value for a flag; empty when the value cannot be
   * bucketed on (see {@link #text}), as the sidecar then skips the rule.
   */
  public static OptionalInt of(String flagKey, Object value) {
    return text(value).map(text -> bucket(flagKey + ":" + text)).map(OptionalInt::of)
        .orElse(OptionalInt.empty());
  }

  private static int bucket(String key) {
    long hash = Integer.toUnsignedLong(
        Hashing.murmur3_32_fixed().hashString(key, StandardCharsets.UTF_8).asInt());
    return (int) ((hash * COUNT) >>> 32);
  }

  /**
   * A value as the sidecar writes it before hashing: a string as it is, a boolean as true or
   * false, a whole number in decimal with no fraction (42 for 42.0, 0 for -0), any other number
   * in its shortest round-trip form, in exponent form with two exponent digits at least (1e-05)
   * only below 1e-4 in size. A number is taken as the double the API carries. Empty for null,
   * NaN, infinities and other types.
   */
  public static Optional<String> text(Object value) {
    if (value instanceof String text) {
      return Optional.of(text);
    }
    if (value instanceof Boolean bool) {
      return Optional.of(bool.toString());
    }
    if (value instanceof Number number) {
      return numberText(number.doubleValue());
    }
    return Optional.empty();
  }

  private static Optional<String> numberText(double number) {
    if (Double.isNaN(number) || Double.isInfinite(number)) {
      return Optional.empty();
    }
    if (number == 0) {
      return Optional.of("0"); // -0 too
    }
    if (number == Math.rint(number)) {
      return Optional.of(new BigDecimal(number).toPlainString());
    }
    BigDecimal shortest = shortest(number);
    if (Math.abs(number) >= EXPONENT_BELOW) {
      return Optional.of(shortest.toPlainString());
    }
    // Python's repr (and Go's 'e' format): 2.5e-07, digits without trailing zeros.
    String digits = shortest.unscaledValue().abs().toString();
    int exponent = digits.length() - 1 - shortest.scale();
    String mantissa = digits.length() == 1 ? digits : digits.charAt(0) + "." + digits.substring(1);
    String sign = number < 0 ? "-" : "";
    return Optional.of(String.format("%s%se%s%02d", sign, mantissa, exponent < 0 ? "-" : "+",
        Math.abs(exponent)));
  }

  /**
   * The decimal with the fewest significant digits that reads back as the same double. Not
   * Double.toString: before Java 19 it can give more digits than needed.
   */
  private static BigDecimal shortest(double number) {
    BigDecimal exact = new BigDecimal(number);
    for (int digits = 1; digits < 17; digits++) {
      BigDecimal candidate = exact.round(new MathContext(digits, RoundingMode.HALF_EVEN));
      if (candidate.doubleValue() == number) {
        return candidate.stripTrailingZeros();
      }
    }
    return exact.round(new MathContext(17, RoundingMode.HALF_EVEN)).stripTrailingZeros();
  }
}
