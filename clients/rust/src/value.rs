//! JSON values (serde_json) to and from protobuf's `Value` and `Struct`.

use prost_types::{ListValue, Struct, Value as ProtoValue, value::Kind};
use serde_json::{Map, Number, Value};

/// The largest whole number a double holds exactly along with all smaller ones (2^53).
const EXACT_WHOLE: f64 = 9_007_199_254_740_992.0;

/// A JSON value as protobuf carries it: every number becomes a double, as in JSON itself.
pub(crate) fn to_proto(value: &Value) -> ProtoValue {
    let kind = match value {
        Value::Null => Kind::NullValue(0),
        Value::Bool(b) => Kind::BoolValue(*b),
        // serde_json numbers are finite; an integer beyond 2^53 rounds to the nearest double.
        Value::Number(n) => Kind::NumberValue(n.as_f64().unwrap_or(f64::NAN)),
        Value::String(s) => Kind::StringValue(s.clone()),
        Value::Array(items) => Kind::ListValue(ListValue {
            values: items.iter().map(to_proto).collect(),
        }),
        Value::Object(fields) => Kind::StructValue(to_struct(fields)),
    };
    ProtoValue { kind: Some(kind) }
}

pub(crate) fn to_struct(fields: &Map<String, Value>) -> Struct {
    Struct {
        fields: fields
            .iter()
            .map(|(key, value)| (key.clone(), to_proto(value)))
            .collect(),
    }
}

/// An empty map is sent as no struct at all, as the other clients do.
pub(crate) fn to_optional_struct(fields: &Map<String, Value>) -> Option<Struct> {
    (!fields.is_empty()).then(|| to_struct(fields))
}

/// A protobuf value as JSON. A whole number up to 2^53 in size becomes a JSON integer, so that
/// `as_i64` and `as_u64` work on it; other numbers stay doubles. NaN and infinities, which JSON
/// cannot hold (and the sidecar does not serve), become null.
pub(crate) fn from_proto(value: ProtoValue) -> Value {
    match value.kind {
        None | Some(Kind::NullValue(_)) => Value::Null,
        Some(Kind::BoolValue(b)) => Value::Bool(b),
        Some(Kind::NumberValue(n)) => number(n),
        Some(Kind::StringValue(s)) => Value::String(s),
        Some(Kind::ListValue(list)) => {
            Value::Array(list.values.into_iter().map(from_proto).collect())
        }
        Some(Kind::StructValue(fields)) => Value::Object(
            fields
                .fields
                .into_iter()
                .map(|(key, value)| (key, from_proto(value)))
                .collect(),
        ),
    }
}

fn number(n: f64) -> Value {
    if n.fract() == 0.0 && n.abs() <= EXACT_WHOLE {
        // The casts are exact: n is whole and within 2^53.
        if n >= 0.0 {
            return Value::Number(Number::from(n as u64));
        }
        return Value::Number(Number::from(n as i64));
    }
    Number::from_f64(n).map_or(Value::Null, Value::Number)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn values_survive_the_round_trip() {
        let value = json!({"s": "x", "b": true, "n": null, "f": 2.5, "i": -7, "u": 42,
                           "list": [1, "two", [3.5]], "nested": {"k": false}});
        assert_eq!(from_proto(to_proto(&value)), value);
    }

    #[test]
    fn whole_numbers_come_back_as_integers() {
        assert_eq!(number(10.0).as_i64(), Some(10));
        assert_eq!(number(-0.0).as_u64(), Some(0));
        assert_eq!(number(EXACT_WHOLE).as_u64(), Some(9_007_199_254_740_992));
        assert_eq!(number(1e20).as_f64(), Some(1e20));
        assert!(number(1e20).as_u64().is_none());
        assert!(number(f64::NAN).is_null());
        assert!(number(f64::INFINITY).is_null());
    }

    #[test]
    fn an_empty_map_is_no_struct() {
        assert!(to_optional_struct(&Map::new()).is_none());
        let fields = json!({"a": 1}).as_object().cloned().unwrap();
        assert_eq!(to_optional_struct(&fields).unwrap().fields.len(), 1);
    }
}
