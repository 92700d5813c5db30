//! JSON ↔ CLASP values, one mapping for every JSON-speaking part (rules files, the REST, JSON
//! WebSocket and MQTT bridges): integers that fit an i64 stay integers, every other number is
//! a float; strings, bools, arrays and objects (maps) map one to one. Bytes have no JSON form:
//! they are written as an array of numbers 0..=255, and JSON never produces bytes; a
//! non-finite float, which JSON lacks, is written as `null`.

use clasp_proto::Value;
use serde_json::Value as Json;

/// The CLASP value of a JSON value.
pub fn to_value(j: &Json) -> Value {
    match j {
        Json::Null => Value::Null,
        Json::Bool(b) => Value::Bool(*b),
        Json::Number(n) => match n.as_i64() {
            Some(i) => Value::Int(i),
            None => Value::Float(n.as_f64().unwrap_or(f64::NAN)),
        },
        Json::String(s) => Value::String(s.clone()),
        Json::Array(a) => Value::Array(a.iter().map(to_value).collect()),
        Json::Object(o) => Value::Map(o.iter().map(|(k, v)| (k.clone(), to_value(v))).collect()),
    }
}

/// The JSON form of a CLASP value.
pub fn to_json(v: &Value) -> Json {
    match v {
        Value::Null => Json::Null,
        Value::Bool(b) => Json::Bool(*b),
        Value::Int(i) => Json::from(*i),
        Value::Float(f) => serde_json::Number::from_f64(*f).map_or(Json::Null, Json::Number),
        Value::String(s) => Json::String(s.clone()),
        Value::Bytes(b) => Json::Array(b.iter().map(|x| Json::from(*x)).collect()),
        Value::Array(a) => Json::Array(a.iter().map(to_json).collect()),
        Value::Map(m) => Json::Object(m.iter().map(|(k, v)| (k.clone(), to_json(v))).collect()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn numbers_keep_their_kind_and_values_round_trip() {
        assert_eq!(to_value(&json!(3)), Value::Int(3));
        assert_eq!(to_value(&json!(3.0)), Value::Float(3.0));
        let j = json!({"a": [1, 2.5, "x", true, null], "b": {"c": -7}});
        assert_eq!(to_json(&to_value(&j)), j);
        assert_eq!(to_json(&Value::Float(f64::NAN)), Json::Null);
        assert_eq!(to_json(&Value::Bytes(vec![1, 255])), json!([1, 255]));
    }
}
