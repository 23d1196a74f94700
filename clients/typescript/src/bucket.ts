import murmurhash from "murmurhash";

/** The number of buckets a split divides users into. */
export const BUCKET_COUNT = 10000;

/**
 * The bucket in [0, BUCKET_COUNT) that the sidecar puts a bucket value in for a flag (README,
 * "Percentage splits"): MurmurHash3 x86 32-bit, seed 0, of the UTF-8 bytes of
 * "<flag key>:<text>", times 10000, shifted right by 32. Undefined when the value cannot be
 * bucketed on (see bucketText), as the sidecar then skips the rule.
 */
export function bucket(flagKey: string, value: unknown): number | undefined {
  const text = bucketText(value);
  if (text === undefined) {
    return undefined;
  }
  const hash = murmurhash.v3(Buffer.from(`${flagKey}:${text}`, "utf8"), 0);
  // hash * 10000 < 2^46: exact in a double, so the division is the 64-bit shift.
  return Math.floor((hash * BUCKET_COUNT) / 2 ** 32);
}

/**
 * A context value as the sidecar hashes it: a string as it is, a boolean as true or false, a
 * whole number in decimal with no fraction (42 for 42.0, 0 for -0, 1e20 in full), any other
 * number in its shortest round-trip form, in exponent form (1e-05) only below 1e-4 in size.
 * Undefined for null, NaN, infinities and other types.
 */
export function bucketText(value: unknown): string | undefined {
  switch (typeof value) {
    case "string":
      return value;
    case "boolean":
      return value ? "true" : "false";
    case "number":
      return numberText(value);
  }
  return undefined;
}

function numberText(n: number): string | undefined {
  if (!Number.isFinite(n)) {
    return undefined;
  }
  if (Number.isInteger(n)) {
    // BigInt: every digit of the double (String(1e21) would be "1e+21"); -0 becomes 0.
    return BigInt(n).toString();
  }
  if (Math.abs(n) < 1e-4) {
    // Shortest digits, with at least two exponent digits as the sidecar writes them: 1e-05.
    return n.toExponential().replace(/e([+-])(\d)$/, "e$10$2");
  }
  // A fraction means |n| < 2^53, where JavaScript writes the shortest digits in plain notation.
  return String(n);
}
