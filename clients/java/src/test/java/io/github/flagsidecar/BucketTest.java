package io.github.flagsidecar;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.util.Optional;
import java.util.OptionalInt;
import org.junit.jupiter.api.Test;

/** Bucket texts beyond the vectors' cases; each expected text is Python's repr of the number. */
class BucketTest {
  @Test
  void numbersAreWrittenAsPythonsReprWritesThem() {
    assertEquals(Optional.of("2.5e-07"), Bucket.text(2.5e-7));
    assertEquals(Optional.of("-1.5e-05"), Bucket.text(-1.5e-5));
    assertEquals(Optional.of("0.0001"), Bucket.text(1e-4));
    assertEquals(Optional.of("0.1"), Bucket.text(0.1));
    assertEquals(Optional.of("0.30000000000000004"), Bucket.text(0.1 + 0.2));
    assertEquals(Optional.of("0.3333333333333333"), Bucket.text(1.0 / 3));
    assertEquals(Optional.of("100000000000000000000"), Bucket.text(1e20));
    assertEquals(Optional.of("0"), Bucket.text(-0.0));
    assertEquals(Optional.of("-42"), Bucket.text(-42L));
    assertEquals(Optional.of("5e-324"), Bucket.text(Double.MIN_VALUE));
  }

  @Test
  void valuesThatCannotBeBucketedOnHaveNoBucket() {
    assertEquals(Optional.empty(), Bucket.text(null));
    assertEquals(Optional.empty(), Bucket.text(Double.NaN));
    assertEquals(Optional.empty(), Bucket.text(Double.POSITIVE_INFINITY));
    assertEquals(OptionalInt.empty(), Bucket.of("flag", java.util.List.of("a")));
  }
}
