//! JSON ↔ CLASP values (FEATURES HTTP-3): integers that fit an i64 stay integers, every
//! other number is a float; strings, bools, arrays and objects (maps) map one to one. CLASP
//! byte strings have no JSON form: they are written as arrays of numbers 0..=255, and JSON
//! never produces bytes.

pub use clasp_actors::json::{to_json, to_value};

#[cfg(test)]
mod tests {
    use super::*;
    use clasp_proto::Value;
    use serde_json::json;
    use serde_json::Value as Json;

    #[test]
    fn numbers_keep_their_kind() {
        assert_eq!(to_value(&json!(3)), Value::Int(3));
        assert_eq!(to_value(&json!(0.5)), Value::Float(0.5));
        assert_eq!(to_value(&json!(u64::MAX)), Value::Float(u64::MAX as f64));
        assert_eq!(to_json(&Value::Int(-7)), json!(-7));
    }

    #[test]
    fn structures_round_trip() {
        let j = json!({"a": [1, 2.5, "x", true, null], "b": {"c": false}});
        assert_eq!(to_json(&to_value(&j)), j);
        assert_eq!(to_json(&Value::Bytes(vec![1, 255])), json!([1, 255]));
        assert_eq!(to_json(&Value::Float(f64::NAN)), Json::Null);
    }
}
