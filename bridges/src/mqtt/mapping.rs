//! MQTT ↔ CLASP mapping shared by the MQTT bridges (FEATURES MQTT-2, MQTT-3): topics to
//! addresses under a namespace, subscription filters to patterns, and payload bytes to
//! values and back. Pure functions, no I/O, so both bridges map exactly the same way.

use clasp_proto::{Address, Value};

use crate::Namespace;

/// Why a topic, filter or address does not map.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MappingError {
    /// An empty topic, or one with an empty level (`a//b`, `/a`, `a/`).
    #[error("topic {0:?} has an empty level")]
    EmptyLevel(String),
    /// A character an address cannot hold literally (`+ # * { }`, NUL).
    #[error("topic {0:?} contains {1:?}, which has no place in a CLASP address")]
    BadChar(String, char),
    /// A filter wildcard in the wrong place (`a/#/b`, `a+/b`).
    #[error("filter {0:?} is not a valid MQTT topic filter")]
    BadFilter(String),
    /// The address is not a valid CLASP address.
    #[error("address {0:?}: {1}")]
    Address(String, String),
}

/// The CLASP address of an MQTT topic: `sensors/temp` under `/mqtt` is
/// `/mqtt/sensors/temp`. Topics with empty levels or wildcard characters are refused, so
/// two topics never share one address and no address is a pattern.
pub fn topic_to_address(ns: &Namespace, topic: &str) -> Result<Address, MappingError> {
    check_levels(topic)?;
    if let Some(c) = topic
        .chars()
        .find(|c| matches!(c, '+' | '#' | '*' | '{' | '}' | '\0'))
    {
        return Err(MappingError::BadChar(topic.to_string(), c));
    }
    ns.address(topic)
        .map_err(|e| MappingError::Address(topic.to_string(), e.to_string()))
}

/// The MQTT topic of a CLASP address under the namespace (`/mqtt/a/b` → `a/b`); `None`
/// when the address is outside the namespace or is the namespace itself.
pub fn address_to_topic<'a>(ns: &Namespace, address: &'a str) -> Option<&'a str> {
    let path = ns.strip(address)?;
    let topic = path.strip_prefix('/').unwrap_or(path);
    (!topic.is_empty()).then_some(topic)
}

/// Checks a topic the bridge is about to publish to: MQTT forbids wildcards and NUL in a
/// published topic (a broker drops the connection over one).
pub fn check_publish_topic(topic: &str) -> Result<(), MappingError> {
    if topic.is_empty() {
        return Err(MappingError::EmptyLevel(topic.to_string()));
    }
    match topic.chars().find(|c| matches!(c, '+' | '#' | '\0')) {
        Some(c) => Err(MappingError::BadChar(topic.to_string(), c)),
        None => Ok(()),
    }
}

/// The CLASP pattern of an MQTT subscription filter: `+` → `*`, `#` → `**`
/// (`sensors/#` under `/mqtt` is `/mqtt/sensors/**`).
pub fn filter_to_pattern(ns: &Namespace, filter: &str) -> Result<String, MappingError> {
    check_filter(filter)?;
    let levels: Vec<&str> = filter
        .split('/')
        .map(|level| match level {
            "+" => "*",
            "#" => "**",
            other => other,
        })
        .collect();
    Ok(format!("{}/{}", ns.as_str(), levels.join("/")))
}

/// Checks an MQTT subscription filter: no empty level, `#` only as the last level, `+` and
/// `#` only as whole levels, no CLASP wildcard characters.
pub fn check_filter(filter: &str) -> Result<(), MappingError> {
    check_levels(filter)?;
    let levels: Vec<&str> = filter.split('/').collect();
    let last = levels.len().saturating_sub(1);
    for (i, level) in levels.iter().enumerate() {
        let whole = *level == "+" || (*level == "#" && i == last);
        if !whole && level.contains(['+', '#']) {
            return Err(MappingError::BadFilter(filter.to_string()));
        }
        if let Some(c) = level.chars().find(|c| matches!(c, '*' | '{' | '}' | '\0')) {
            return Err(MappingError::BadChar(filter.to_string(), c));
        }
    }
    Ok(())
}

fn check_levels(topic: &str) -> Result<(), MappingError> {
    if topic.is_empty() || topic.split('/').any(str::is_empty) {
        return Err(MappingError::EmptyLevel(topic.to_string()));
    }
    Ok(())
}

/// The value of an MQTT payload: JSON first (object → map, array, int, float, bool, null,
/// string), otherwise finite numeric text → float, otherwise UTF-8 text → string,
/// otherwise the raw bytes. Every payload maps to something; none is refused.
pub fn decode_payload(payload: &[u8]) -> Value {
    let Ok(text) = std::str::from_utf8(payload) else {
        return Value::Bytes(payload.to_vec());
    };
    if let Ok(json) = serde_json::from_str::<serde_json::Value>(text) {
        return from_json(json);
    }
    match text.trim().parse::<f64>() {
        Ok(f) if f.is_finite() => Value::Float(f),
        _ => Value::String(text.to_string()),
    }
}

/// The MQTT payload of a value: numbers and strings as text, `true`/`false`, `null`, bytes
/// raw, arrays and maps as JSON.
pub fn encode_payload(value: &Value) -> Vec<u8> {
    match value {
        Value::Null => b"null".to_vec(),
        Value::Bool(b) => b.to_string().into_bytes(),
        Value::Int(i) => i.to_string().into_bytes(),
        Value::Float(f) => f.to_string().into_bytes(),
        Value::String(s) => s.as_bytes().to_vec(),
        Value::Bytes(b) => b.clone(),
        Value::Array(_) | Value::Map(_) => to_json(value).to_string().into_bytes(),
    }
}

pub use clasp_actors::json::to_json;

/// A JSON document as a value (integers beyond i64 become floats).
pub fn from_json(json: serde_json::Value) -> Value {
    clasp_actors::json::to_value(&json)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ns() -> Namespace {
        "/mqtt".parse().unwrap()
    }

    #[test]
    fn topics_map_both_ways() {
        let a = topic_to_address(&ns(), "sensors/temp").unwrap();
        assert_eq!(a.as_str(), "/mqtt/sensors/temp");
        assert_eq!(address_to_topic(&ns(), a.as_str()), Some("sensors/temp"));
        assert_eq!(address_to_topic(&ns(), "/other/x"), None);
        assert_eq!(address_to_topic(&ns(), "/mqtt"), None);
        let none = Namespace::none();
        assert_eq!(topic_to_address(&none, "a/b").unwrap().as_str(), "/a/b");
        assert_eq!(address_to_topic(&none, "/a/b"), Some("a/b"));
    }

    #[test]
    fn bad_topics_are_refused() {
        for t in ["", "/a", "a/", "a//b", "a/+/b", "a/#", "a*b", "x{y}"] {
            assert!(topic_to_address(&ns(), t).is_err(), "{t}");
        }
    }

    #[test]
    fn filters_become_patterns() {
        assert_eq!(filter_to_pattern(&ns(), "#").unwrap(), "/mqtt/**");
        assert_eq!(
            filter_to_pattern(&ns(), "sensors/+/t").unwrap(),
            "/mqtt/sensors/*/t"
        );
        assert!(filter_to_pattern(&ns(), "a/#/b").is_err());
        assert!(filter_to_pattern(&ns(), "a+/b").is_err());
    }

    #[test]
    fn payload_rules() {
        assert_eq!(decode_payload(b"22"), Value::Int(22));
        assert_eq!(decode_payload(b"22.5"), Value::Float(22.5));
        assert_eq!(decode_payload(b"+7.5"), Value::Float(7.5));
        assert_eq!(decode_payload(b"true"), Value::Bool(true));
        assert_eq!(decode_payload(b"null"), Value::Null);
        assert_eq!(decode_payload(b"hello"), Value::String("hello".into()));
        assert_eq!(decode_payload(b"\"q\""), Value::String("q".into()));
        assert_eq!(decode_payload(b"NaN"), Value::String("NaN".into()));
        assert_eq!(decode_payload(&[0xff, 0x00]), Value::Bytes(vec![0xff, 0]));
        assert_eq!(
            decode_payload(br#"{"v":[1,2.5]}"#),
            Value::Map(vec![(
                "v".into(),
                Value::Array(vec![Value::Int(1), Value::Float(2.5)])
            )])
        );
    }

    #[test]
    fn payloads_out() {
        assert_eq!(encode_payload(&Value::Float(22.5)), b"22.5");
        assert_eq!(encode_payload(&Value::Int(-3)), b"-3");
        assert_eq!(encode_payload(&Value::Bool(false)), b"false");
        assert_eq!(encode_payload(&Value::Null), b"null");
        assert_eq!(encode_payload(&Value::String("on".into())), b"on");
        assert_eq!(encode_payload(&Value::Bytes(vec![1, 255])), [1, 255]);
        let arr = Value::Array(vec![Value::Int(1), Value::Int(2)]);
        assert_eq!(encode_payload(&arr), b"[1,2]");
        let map = Value::Map(vec![("a".into(), Value::Bool(true))]);
        assert_eq!(encode_payload(&map), br#"{"a":true}"#);
    }
}
