//! The JSON messages of the bridge (FEATURES WSB-2): requests a web client sends, the
//! answers and updates it receives, and the mapping between JSON and CLASP values. Pure
//! functions, no I/O, so every rule here is unit-tested.

use clasp_actors::client::Update;
use clasp_proto::{SignalType, Value};
use serde_json::{json, Map, Value as Json};

/// One request from a web client.
#[derive(Debug, Clone, PartialEq)]
pub enum Request {
    /// Write a param: answered with `ack` carrying the revision.
    Set {
        /// Address as the client wrote it.
        address: String,
        /// New value.
        value: Value,
    },
    /// Read a param: answered with `value`.
    Get {
        /// Address.
        address: String,
    },
    /// Fire an event: answered with `ack`.
    Emit {
        /// Address.
        address: String,
        /// Payload (`null` when absent).
        value: Value,
    },
    /// Send a stream sample: no answer unless the request has an `id`.
    Stream {
        /// Address.
        address: String,
        /// Sample.
        value: Value,
    },
    /// Receive `value` and `event` messages for a pattern: answered with `ack`.
    Subscribe {
        /// Pattern (`/lights/*`, `/**`).
        pattern: String,
    },
    /// Stop one subscription: answered with `ack`.
    Unsubscribe {
        /// The pattern as subscribed.
        pattern: String,
    },
    /// Every param under a prefix: answered with `snapshot`.
    Snapshot {
        /// Address prefix (`None`: everything).
        prefix: Option<String>,
    },
}

impl Request {
    /// The `type` it came with, echoed as `request_type` in its answer.
    pub fn kind(&self) -> &'static str {
        match self {
            Request::Set { .. } => "set",
            Request::Get { .. } => "get",
            Request::Emit { .. } => "emit",
            Request::Stream { .. } => "stream",
            Request::Subscribe { .. } => "subscribe",
            Request::Unsubscribe { .. } => "unsubscribe",
            Request::Snapshot { .. } => "snapshot",
        }
    }
}

/// A request with its optional correlation `id` (any JSON, echoed as it came).
#[derive(Debug, Clone, PartialEq)]
pub struct Envelope {
    /// The request.
    pub request: Request,
    /// The client's `id`.
    pub id: Option<Json>,
}

/// Why a text frame is not a request; answered with an `error` message.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{message}")]
pub struct RequestError {
    /// What is wrong, for a human.
    pub message: String,
    /// The request's `type`, when it had a string one.
    pub request_type: Option<String>,
    /// The request's `id`, when it had one.
    pub id: Option<Json>,
}

/// Parses one text frame.
pub fn parse(text: &str) -> Result<Envelope, RequestError> {
    let fail = |message: String, request_type: Option<String>, id: Option<Json>| RequestError {
        message,
        request_type,
        id,
    };
    let json: Json =
        serde_json::from_str(text).map_err(|e| fail(format!("invalid JSON: {e}"), None, None))?;
    let Json::Object(mut obj) = json else {
        return Err(fail("a request is a JSON object".into(), None, None));
    };
    let id = obj.remove("id");
    let kind = match obj.remove("type") {
        Some(Json::String(s)) => s,
        Some(_) => return Err(fail("\"type\" must be a string".into(), None, id)),
        None => return Err(fail("missing \"type\"".into(), None, id)),
    };
    let text_field = |obj: &mut Map<String, Json>, name: &str| match obj.remove(name) {
        Some(Json::String(s)) => Ok(s),
        Some(_) => Err(format!("\"{name}\" must be a string")),
        None => Err(format!("missing \"{name}\"")),
    };
    let request = (|| {
        Ok(match kind.as_str() {
            "set" => Request::Set {
                address: text_field(&mut obj, "address")?,
                value: obj
                    .remove("value")
                    .map(|v| json_to_value(&v))
                    .ok_or("missing \"value\"")?,
            },
            "get" => Request::Get {
                address: text_field(&mut obj, "address")?,
            },
            "emit" => Request::Emit {
                address: text_field(&mut obj, "address")?,
                value: obj
                    .remove("value")
                    .map_or(Value::Null, |v| json_to_value(&v)),
            },
            "stream" => Request::Stream {
                address: text_field(&mut obj, "address")?,
                value: obj
                    .remove("value")
                    .map(|v| json_to_value(&v))
                    .ok_or("missing \"value\"")?,
            },
            "subscribe" => Request::Subscribe {
                pattern: text_field(&mut obj, "pattern")?,
            },
            "unsubscribe" => Request::Unsubscribe {
                pattern: text_field(&mut obj, "pattern")?,
            },
            "snapshot" => Request::Snapshot {
                prefix: match obj.remove("prefix") {
                    None | Some(Json::Null) => None,
                    Some(Json::String(s)) => Some(s),
                    Some(_) => return Err("\"prefix\" must be a string".to_string()),
                },
            },
            other => return Err(format!("unknown type {other:?}")),
        })
    })();
    match request {
        Ok(request) => Ok(Envelope { request, id }),
        Err(message) => Err(fail(message, Some(kind), id)),
    }
}

pub use clasp_actors::json::{to_json as value_to_json, to_value as json_to_value};

/// Adds the client's `id` to an answer.
fn with_id(mut answer: Json, id: Option<&Json>) -> String {
    if let (Some(id), Json::Object(o)) = (id, &mut answer) {
        o.insert("id".into(), id.clone());
    }
    answer.to_string()
}

/// `{"type":"value","address","value","revision"}`: a param's state.
pub fn value_message(
    address: &str,
    value: &Value,
    revision: Option<u64>,
    id: Option<&Json>,
) -> String {
    with_id(
        json!({"type": "value", "address": address, "value": value_to_json(value), "revision": revision}),
        id,
    )
}

/// A subscription update as the client sees it: `value` for params, `event` (with the
/// signal type) for events, stream samples, gestures and timelines.
pub fn update_message(address: &str, update: &Update) -> String {
    match update.signal {
        SignalType::Param => value_message(address, &update.value, update.revision, None),
        signal => event_message(address, &update.value, signal),
    }
}

/// `{"type":"event","address","value","signal"}`: an event, stream sample, gesture or
/// timeline.
pub fn event_message(address: &str, value: &Value, signal: SignalType) -> String {
    json!({
        "type": "event",
        "address": address,
        "value": value_to_json(value),
        "signal": signal.name(),
    })
    .to_string()
}

/// `{"type":"ack","request_type",...}` with the extra fields of the request it answers
/// (`address` and `revision` for a set, `pattern` for a subscription).
pub fn ack_message(request_type: &str, extra: Json, id: Option<&Json>) -> String {
    let mut answer = json!({"type": "ack", "request_type": request_type});
    if let (Json::Object(o), Json::Object(e)) = (&mut answer, extra) {
        o.extend(e);
    }
    with_id(answer, id)
}

/// `{"type":"error","message","request_type"}`.
pub fn error_message(message: &str, request_type: Option<&str>, id: Option<&Json>) -> String {
    with_id(
        json!({"type": "error", "message": message, "request_type": request_type}),
        id,
    )
}

/// `{"type":"snapshot","state":{address: value}}`.
pub fn snapshot_message<'a>(
    state: impl Iterator<Item = (&'a str, &'a Value)>,
    id: Option<&Json>,
) -> String {
    let state: Map<String, Json> = state
        .map(|(a, v)| (a.to_string(), value_to_json(v)))
        .collect();
    with_id(json!({"type": "snapshot", "state": state}), id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_type() {
        let e = parse(r#"{"type":"set","address":"/a","value":1,"id":7}"#).unwrap();
        assert_eq!(
            e.request,
            Request::Set {
                address: "/a".into(),
                value: Value::Int(1)
            }
        );
        assert_eq!(e.id, Some(json!(7)));
        assert!(matches!(
            parse(r#"{"type":"set","address":"/a","value":0.5}"#).unwrap().request,
            Request::Set { value: Value::Float(f), .. } if f == 0.5
        ));
        assert_eq!(
            parse(r#"{"type":"emit","address":"/e"}"#).unwrap().request,
            Request::Emit {
                address: "/e".into(),
                value: Value::Null
            }
        );
        assert_eq!(
            parse(r#"{"type":"snapshot"}"#).unwrap().request,
            Request::Snapshot { prefix: None }
        );
        assert_eq!(
            parse(r#"{"type":"unsubscribe","pattern":"/x/*"}"#)
                .unwrap()
                .request
                .kind(),
            "unsubscribe"
        );
    }

    #[test]
    fn errors_echo_type_and_id() {
        let e = parse("{}").unwrap_err();
        assert_eq!(e.request_type, None);
        assert!(e.message.contains("type"));
        let e = parse(r#"{"type":"set","address":"/a","id":"x"}"#).unwrap_err();
        assert_eq!(e.request_type.as_deref(), Some("set"));
        assert_eq!(e.id, Some(json!("x")));
        let e = parse(r#"{"type":"fly"}"#).unwrap_err();
        assert_eq!(e.request_type.as_deref(), Some("fly"));
        assert!(parse("not json").is_err());
        assert!(parse("[1]").is_err());
        assert!(parse(r#"{"type":"get","address":5}"#).is_err());
    }

    #[test]
    fn values_round_trip() {
        let j = json!({"a": [1, 2.5, "s", null, true], "b": {"c": -3}});
        assert_eq!(value_to_json(&json_to_value(&j)), j);
        assert_eq!(json_to_value(&json!(3)), Value::Int(3));
        assert_eq!(json_to_value(&json!(3.0)), Value::Float(3.0));
        assert_eq!(value_to_json(&Value::Float(f64::NAN)), Json::Null);
        assert_eq!(value_to_json(&Value::Bytes(vec![1, 2])), json!([1, 2]));
    }

    #[test]
    fn answers_carry_id() {
        let a: Json =
            serde_json::from_str(&ack_message("set", json!({"revision": 3}), Some(&json!(1))))
                .unwrap();
        assert_eq!(
            a,
            json!({"type":"ack","request_type":"set","revision":3,"id":1})
        );
        let e: Json = serde_json::from_str(&error_message("bad", Some("get"), None)).unwrap();
        assert_eq!(
            e,
            json!({"type":"error","message":"bad","request_type":"get"})
        );
    }
}
