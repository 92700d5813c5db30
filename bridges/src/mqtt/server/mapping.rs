//! MQTT ↔ CLASP mapping of the embedded broker (FEATURES MQTT-2, MQTT-3): topics to
//! addresses under the broker's namespace, topic filters to patterns, payloads to values and
//! back. Pure functions, no I/O. Payloads and address-to-topic map as in the client bridge
//! (`mqtt::mapping`); topic names and filters follow the broker's rules (a leading `/` is
//! allowed, and filters are matched here, MQTT-style).

use clasp_proto::Value;

use crate::Namespace;

/// The CLASP address of an MQTT topic name: `home/light` under `/mqtt` is `/mqtt/home/light`.
/// A leading `/` in the topic is not kept (`/a` and `a` are the same address); `None` for a
/// topic CLASP cannot carry.
pub fn topic_to_address(ns: &Namespace, topic: &str) -> Option<String> {
    if topic.is_empty() || topic.contains(['+', '#', '\0']) {
        return None;
    }
    ns.address(topic).ok().map(|a| a.as_str().to_string())
}

pub use crate::mqtt::mapping::address_to_topic;

/// The CLASP pattern of an MQTT topic filter: `+` → `*`, `#` → `**`
/// (`sensors/#` under `/mqtt` is `/mqtt/sensors/**`). Used for scope checks and to read the
/// current params a new subscriber gets as retained messages.
pub fn filter_to_pattern(ns: &Namespace, filter: &str) -> String {
    let filter = filter.strip_prefix('/').unwrap_or(filter);
    let mut out = String::with_capacity(ns.as_str().len() + filter.len() + 2);
    out.push_str(ns.as_str());
    for level in filter.split('/') {
        out.push('/');
        out.push_str(match level {
            "+" => "*",
            "#" => "**",
            other => other,
        });
    }
    out
}

/// Whether `filter` is a valid MQTT topic filter (`#` only last and alone, `+` alone).
pub fn valid_filter(filter: &str) -> bool {
    if filter.is_empty() || filter.contains('\0') {
        return false;
    }
    let levels: Vec<&str> = filter.split('/').collect();
    let last = levels.len() - 1;
    levels.iter().enumerate().all(|(i, level)| {
        (!level.contains('#') || (*level == "#" && i == last))
            && (!level.contains('+') || *level == "+")
    })
}

/// MQTT topic matching (MQTT 3.1.1 §4.7): `+` one level, `#` this level and everything
/// below (so `a/#` also matches `a`); topics starting with `$` are not matched by a filter
/// starting with a wildcard.
pub fn topic_matches(filter: &str, topic: &str) -> bool {
    if topic.starts_with('$') && (filter.starts_with('+') || filter.starts_with('#')) {
        return false;
    }
    let mut topics = topic.split('/');
    for f in filter.split('/') {
        if f == "#" {
            return true;
        }
        match topics.next() {
            Some(t) if f == "+" || f == t => {}
            _ => return false,
        }
    }
    topics.next().is_none()
}

/// An MQTT payload as a CLASP value, as the client bridge maps it
/// ([`crate::mqtt::mapping::decode_payload`]), except that an empty payload is `Null`: for a
/// retained publish it clears the retained message.
pub fn payload_to_value(payload: &[u8]) -> Value {
    if payload.is_empty() {
        return Value::Null;
    }
    crate::mqtt::mapping::decode_payload(payload)
}

pub use crate::mqtt::mapping::encode_payload as value_to_payload;

#[cfg(test)]
mod tests {
    use super::*;

    fn ns() -> Namespace {
        "/mqtt".parse().unwrap()
    }

    #[test]
    fn topics_and_addresses() {
        assert_eq!(
            topic_to_address(&ns(), "home/light").as_deref(),
            Some("/mqtt/home/light")
        );
        assert_eq!(
            address_to_topic(&ns(), "/mqtt/home/light"),
            Some("home/light")
        );
        assert_eq!(address_to_topic(&ns(), "/other/x"), None);
        assert_eq!(topic_to_address(&ns(), "a/+"), None);
        assert_eq!(filter_to_pattern(&ns(), "sensors/#"), "/mqtt/sensors/**");
        assert_eq!(filter_to_pattern(&ns(), "+/temp"), "/mqtt/*/temp");
    }

    #[test]
    fn filters() {
        assert!(valid_filter("a/+/b/#"));
        assert!(!valid_filter("a/b#"));
        assert!(!valid_filter("a/#/b"));
        assert!(!valid_filter("a+/b"));
        assert!(topic_matches("a/#", "a"));
        assert!(topic_matches("a/#", "a/b/c"));
        assert!(topic_matches("a/+/c", "a/b/c"));
        assert!(!topic_matches("a/+", "a/b/c"));
        assert!(!topic_matches("#", "$SYS/x"));
        assert!(topic_matches("é/+", "é/x"));
    }

    #[test]
    fn payloads() {
        assert_eq!(payload_to_value(b"22"), Value::Int(22));
        assert_eq!(payload_to_value(b"22.5"), Value::Float(22.5));
        assert_eq!(payload_to_value(b" 7.25 "), Value::Float(7.25));
        assert_eq!(payload_to_value(b"on"), Value::String("on".into()));
        assert_eq!(payload_to_value(&[0xff, 0x00]), Value::Bytes(vec![0xff, 0]));
        assert!(matches!(payload_to_value(br#"{"v":1}"#), Value::Map(_)));
        assert_eq!(value_to_payload(&Value::String("on".into())), b"on");
        assert_eq!(value_to_payload(&Value::Float(22.5)), b"22.5");
        assert_eq!(value_to_payload(&Value::Bool(true)), b"true");
        assert_eq!(value_to_payload(&Value::Null), b"null");
        assert_eq!(
            value_to_payload(&Value::Array(vec![Value::Int(1), Value::Int(2)])),
            b"[1,2]"
        );
    }
}
