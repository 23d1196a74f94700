//! The bucket of a percentage split, computed as the sidecar does (README, "Percentage splits").

use std::io::Cursor;

use serde_json::Value;

/// The number of buckets a split divides users into.
pub const BUCKET_COUNT: u32 = 10_000;

/// The bucket in `[0, BUCKET_COUNT)` that the sidecar puts `value` in for `flag_key`:
/// MurmurHash3 x86 32-bit, seed 0, of the UTF-8 bytes of `"<flag key>:<text>"`, times 10000,
/// shifted right by 32. `None` when the value cannot be bucketed on ([`bucket_text`]), as the
/// sidecar then skips the rule.
pub fn bucket(flag_key: &str, value: &Value) -> Option<u32> {
    let text = bucket_text(value)?;
    let key = format!("{flag_key}:{text}");
    // Reading from memory cannot fail.
    let hash = murmur3::murmur3_32(&mut Cursor::new(key.as_bytes()), 0).ok()?;
    Some(((u64::from(hash) * u64::from(BUCKET_COUNT)) >> 32) as u32)
}

/// A context value as the sidecar hashes it: a string as it is, a boolean as `true` or `false`,
/// a whole number in decimal with no fraction (`42` for `42.0`, `0` for `-0`), any other number
/// in its shortest round-trip form, in exponent form with at least two exponent digits
/// (`1e-05`) only below 1e-4 in size. Numbers are taken as doubles, because protobuf carries
/// every number as one. `None` for null, lists and objects.
pub fn bucket_text(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Number(n) => n.as_f64().and_then(number_text),
        _ => None,
    }
}

fn number_text(f: f64) -> Option<String> {
    if !f.is_finite() {
        return None;
    }
    if f == 0.0 {
        return Some("0".to_owned()); // -0 too
    }
    if f.fract() == 0.0 {
        // A precision makes Rust write the double's exact decimal value (1e23 is
        // 99999999999999991611392), as Python's int() does; plain `{}` would round it.
        return Some(format!("{f:.0}"));
    }
    if f.abs() < 1e-4 {
        // Rust writes 1e-5 and 2.5e-7; Python's repr, 1e-05 and 2.5e-07.
        let text = format!("{f:e}");
        let (mantissa, exponent) = text.split_once('e')?;
        let (sign, digits) = match exponent.strip_prefix('-') {
            Some(digits) => ("-", digits),
            None => ("+", exponent),
        };
        return Some(format!("{mantissa}e{sign}{digits:0>2}"));
    }
    // Shortest round-trip digits, in plain notation.
    Some(f.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_readme_test_vector() {
        assert_eq!(bucket("new-checkout", &json!("acct-42")), Some(55));
    }

    #[test]
    fn texts_follow_the_documented_rule() {
        for (value, text) in [
            (json!("42"), "42"),
            (json!(true), "true"),
            (json!(false), "false"),
            (json!(42), "42"),
            (json!(42.0), "42"),
            (json!(-0.0), "0"),
            (json!(-7), "-7"),
            (json!(1e20), "100000000000000000000"),
            (json!(1e23), "99999999999999991611392"),
            (json!(9_007_199_254_740_993_u64), "9007199254740992"),
            (json!(1.5), "1.5"),
            (json!(1234567.5), "1234567.5"),
            (json!(0.0001), "0.0001"),
            (json!(0.00001), "1e-05"),
            (json!(2.5e-7), "2.5e-07"),
            (json!(-1.25e-120), "-1.25e-120"),
        ] {
            assert_eq!(bucket_text(&value).as_deref(), Some(text), "{value}");
        }
    }

    #[test]
    fn no_text_for_null_lists_and_objects() {
        for value in [json!(null), json!([1]), json!({"a": 1})] {
            assert_eq!(bucket_text(&value), None);
            assert_eq!(bucket("f", &value), None);
        }
    }

    #[test]
    fn buckets_are_in_range() {
        for i in 0..1000 {
            assert!(bucket("f", &json!(format!("user-{i}"))).unwrap() < BUCKET_COUNT);
        }
    }
}
