//! The rules file (FEATURES RU-1, RU-2): its format (JSON, or TOML for `.toml` files), read
//! by hand rather than by serde derive so that every refusal names the rule (id and position)
//! and the exact field, e.g. `rule "dim" (#2): actions[0].transform.factor: expected a
//! number`. An operator editing a show file at 3 am needs that more than a generic "invalid
//! type" from deep in an enum.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use clasp_proto::{Address, Pattern, SignalType, Value};
use serde_json::{Map, Value as Json};

use super::transform::Transform;

/// Why a rules file was refused. Startup fails with it; a reload keeps the old rules.
#[derive(Debug, thiserror::Error)]
pub enum RulesError {
    /// The file cannot be read.
    #[error("cannot read rules file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// OS error.
        source: std::io::Error,
    },
    /// The file is not JSON.
    #[error("rules file {path} is not valid JSON: {source}")]
    Json {
        /// The file.
        path: PathBuf,
        /// Parser error with line and column.
        source: serde_json::Error,
    },
    /// A `.toml` file is not valid TOML.
    #[error("rules file {path} is not valid TOML: {source}")]
    Toml {
        /// The file.
        path: PathBuf,
        /// Parser error with line and column.
        source: Box<toml::de::Error>,
    },
    /// The top level is neither `{"rules": [...]}` nor an array.
    #[error("rules file {path}: {message}")]
    Shape {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// One rule is invalid.
    #[error("rule {rule}: {field}: {message}")]
    Field {
        /// `"id" (#n)`, or `#n` when the id is missing; n counts from 0 like `actions[n]`.
        rule: String,
        /// Path of the field inside the rule, e.g. `actions[0].transform.factor`.
        field: String,
        /// What is wrong with it.
        message: String,
    },
}

/// A field-level problem before the rule it belongs to is known.
#[derive(Debug, Clone, PartialEq)]
pub struct Bad {
    /// Path inside the rule.
    pub field: String,
    /// What is wrong.
    pub message: String,
}

impl Bad {
    /// A problem at `field`.
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            message: message.into(),
        }
    }
}

/// A JSON object read field by field, remembering where it is so errors can say so.
pub struct Obj<'a> {
    path: String,
    map: &'a Map<String, Json>,
}

/// A name for the JSON type, for "expected X, found Y" messages.
fn kind(v: &Json) -> &'static str {
    match v {
        Json::Null => "null",
        Json::Bool(_) => "a boolean",
        Json::Number(_) => "a number",
        Json::String(_) => "a string",
        Json::Array(_) => "an array",
        Json::Object(_) => "an object",
    }
}

impl<'a> Obj<'a> {
    /// `v` as an object at `path`.
    pub fn new(path: impl Into<String>, v: &'a Json) -> Result<Self, Bad> {
        let path = path.into();
        match v.as_object() {
            Some(map) => Ok(Self { path, map }),
            None => Err(Bad::new(
                path,
                format!("expected an object, found {}", kind(v)),
            )),
        }
    }

    /// The path of a field of this object.
    pub fn at(&self, key: &str) -> String {
        if self.path.is_empty() {
            key.to_string()
        } else {
            format!("{}.{key}", self.path)
        }
    }

    /// Refuses fields other than `allowed`: a typo must not silently drop a setting.
    pub fn only(&self, allowed: &[&str]) -> Result<(), Bad> {
        match self.map.keys().find(|k| !allowed.contains(&k.as_str())) {
            Some(k) => Err(Bad::new(
                self.at(k),
                format!("unknown field (expected one of: {})", allowed.join(", ")),
            )),
            None => Ok(()),
        }
    }

    /// A field that may be absent (`null` counts as absent).
    pub fn opt(&self, key: &str) -> Option<&'a Json> {
        self.map.get(key).filter(|v| !v.is_null())
    }

    /// A required number.
    pub fn num(&self, key: &str) -> Result<f64, Bad> {
        self.opt_num(key)?
            .ok_or_else(|| Bad::new(self.at(key), "missing (expected a number)"))
    }

    /// An optional number.
    pub fn opt_num(&self, key: &str) -> Result<Option<f64>, Bad> {
        match self.opt(key) {
            None => Ok(None),
            Some(v) => v.as_f64().map(Some).ok_or_else(|| {
                Bad::new(
                    self.at(key),
                    format!("expected a number, found {}", kind(v)),
                )
            }),
        }
    }

    /// A required string.
    pub fn str(&self, key: &str) -> Result<&'a str, Bad> {
        self.opt_str(key)?
            .ok_or_else(|| Bad::new(self.at(key), "missing (expected a string)"))
    }

    /// An optional string.
    pub fn opt_str(&self, key: &str) -> Result<Option<&'a str>, Bad> {
        match self.opt(key) {
            None => Ok(None),
            Some(Json::String(s)) => Ok(Some(s)),
            Some(v) => Err(Bad::new(
                self.at(key),
                format!("expected a string, found {}", kind(v)),
            )),
        }
    }

    /// An optional boolean.
    pub fn opt_bool(&self, key: &str) -> Result<Option<bool>, Bad> {
        match self.opt(key) {
            None => Ok(None),
            Some(Json::Bool(b)) => Ok(Some(*b)),
            Some(v) => Err(Bad::new(
                self.at(key),
                format!("expected true or false, found {}", kind(v)),
            )),
        }
    }

    /// A required value of any JSON type (`null` included: `eq null` is meaningful).
    pub fn value(&self, key: &str) -> Result<Value, Bad> {
        self.map
            .get(key)
            .map(json_to_value)
            .ok_or_else(|| Bad::new(self.at(key), "missing (expected a value)"))
    }

    /// An optional array; absent is empty.
    pub fn array(&self, key: &str) -> Result<&'a [Json], Bad> {
        match self.opt(key) {
            None => Ok(&[]),
            Some(Json::Array(a)) => Ok(a),
            Some(v) => Err(Bad::new(
                self.at(key),
                format!("expected an array, found {}", kind(v)),
            )),
        }
    }

    /// The `type` tag of an internally tagged object.
    pub fn tag(&self) -> Result<&'a str, Bad> {
        self.str("type")
    }

    /// A required address (literal, no wildcards).
    pub fn address(&self, key: &str) -> Result<String, Bad> {
        let text = self.str(key)?;
        Address::parse(text)
            .map(|a| a.as_str().to_string())
            .map_err(|e| Bad::new(self.at(key), format!("invalid address {text:?}: {e}")))
    }

    /// A required pattern (a literal address is a pattern too).
    pub fn pattern(&self, key: &str) -> Result<Pattern, Bad> {
        let text = self.str(key)?;
        Pattern::compile(text)
            .map_err(|e| Bad::new(self.at(key), format!("invalid pattern {text:?}: {e}")))
    }
}

pub(crate) use crate::json::to_value as json_to_value;

/// What makes a rule fire.
#[derive(Debug, Clone)]
pub enum Trigger {
    /// An accepted SET on a matching address (params only).
    OnChange {
        /// Addresses watched.
        pattern: Pattern,
    },
    /// A numeric param crossing a threshold; fires once per crossing.
    OnThreshold {
        /// Addresses watched (each has its own armed state).
        address: Pattern,
        /// Fires when the value goes above this.
        above: Option<f64>,
        /// Fires when the value goes below this.
        below: Option<f64>,
        /// How far back past the threshold the value must go to re-arm.
        hysteresis: f64,
    },
    /// An event PUBLISH on a matching address.
    OnEvent {
        /// Addresses watched.
        pattern: Pattern,
    },
    /// A timer.
    OnInterval {
        /// Period.
        every: Duration,
    },
}

/// Comparison operator of a condition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// Equal.
    Eq,
    /// Not equal.
    Ne,
    /// Greater than.
    Gt,
    /// Greater than or equal.
    Gte,
    /// Less than.
    Lt,
    /// Less than or equal.
    Lte,
}

/// A check on current state; every condition of a rule must hold for it to fire.
#[derive(Debug, Clone)]
pub struct Condition {
    /// The param read.
    pub address: String,
    /// Comparison.
    pub op: Op,
    /// The value compared against.
    pub value: Value,
}

/// One step of a rule's response, run in order.
#[derive(Debug, Clone)]
pub enum Action {
    /// Write a fixed value.
    Set {
        /// Where.
        address: String,
        /// What.
        value: Value,
    },
    /// Publish a signal (an event unless `signal` says `stream`).
    Publish {
        /// Where.
        address: String,
        /// Payload.
        value: Value,
        /// Event or stream.
        signal: SignalType,
    },
    /// Write the trigger's value through a transform.
    SetFromTrigger {
        /// Where.
        address: String,
        /// How the value is changed on the way.
        transform: Transform,
    },
    /// Wait before the next action (without blocking other rules).
    Delay {
        /// How long.
        duration: Duration,
    },
}

/// One validated rule.
#[derive(Debug, Clone)]
pub struct Rule {
    /// Unique, non-empty id; its writes carry the writer id `rule:<id>`.
    pub id: String,
    /// Display name.
    pub name: Option<String>,
    /// Disabled rules are loaded and listed but never fire.
    pub enabled: bool,
    /// What makes it fire.
    pub trigger: Trigger,
    /// The trigger as written, for the HTTP listing.
    pub trigger_json: Json,
    /// All must hold.
    pub conditions: Vec<Condition>,
    /// At least one.
    pub actions: Vec<Action>,
    /// Minimum time between two firings.
    pub cooldown: Duration,
}

/// Longest delay or cooldown accepted: a day. Anything longer is a typo (ms for s).
const MAX_DURATION_SECS: f64 = 86_400.0;
/// Shortest interval accepted; a faster timer is a busy loop.
const MIN_INTERVAL_SECS: f64 = 0.01;

fn seconds(field: String, secs: f64, min: f64) -> Result<Duration, Bad> {
    if !(min..=MAX_DURATION_SECS).contains(&secs) {
        return Err(Bad::new(
            field,
            format!("expected seconds between {min} and {MAX_DURATION_SECS}, found {secs}"),
        ));
    }
    Ok(Duration::from_secs_f64(secs))
}

fn trigger(o: &Obj) -> Result<Trigger, Bad> {
    match o.tag()? {
        "on_change" => {
            o.only(&["type", "pattern"])?;
            Ok(Trigger::OnChange {
                pattern: o.pattern("pattern")?,
            })
        }
        "on_event" => {
            o.only(&["type", "pattern"])?;
            Ok(Trigger::OnEvent {
                pattern: o.pattern("pattern")?,
            })
        }
        "on_threshold" => {
            o.only(&["type", "address", "above", "below", "hysteresis"])?;
            let (above, below) = (o.opt_num("above")?, o.opt_num("below")?);
            if above.is_none() && below.is_none() {
                return Err(Bad::new(
                    o.at("above"),
                    "on_threshold needs above, below or both",
                ));
            }
            let hysteresis = o.opt_num("hysteresis")?.unwrap_or(0.0);
            if hysteresis < 0.0 {
                return Err(Bad::new(o.at("hysteresis"), "must not be negative"));
            }
            Ok(Trigger::OnThreshold {
                address: o.pattern("address")?,
                above,
                below,
                hysteresis,
            })
        }
        "on_interval" => {
            o.only(&["type", "seconds"])?;
            Ok(Trigger::OnInterval {
                every: seconds(o.at("seconds"), o.num("seconds")?, MIN_INTERVAL_SECS)?,
            })
        }
        other => Err(Bad::new(
            o.at("type"),
            format!("unknown trigger {other:?} (on_change, on_threshold, on_event, on_interval)"),
        )),
    }
}

fn condition(o: &Obj) -> Result<Condition, Bad> {
    o.only(&["address", "op", "value"])?;
    let op = match o.str("op")? {
        "eq" => Op::Eq,
        "ne" => Op::Ne,
        "gt" => Op::Gt,
        "gte" => Op::Gte,
        "lt" => Op::Lt,
        "lte" => Op::Lte,
        other => {
            return Err(Bad::new(
                o.at("op"),
                format!("unknown operator {other:?} (eq, ne, gt, gte, lt, lte)"),
            ))
        }
    };
    Ok(Condition {
        address: o.address("address")?,
        op,
        value: o.value("value")?,
    })
}

fn action(o: &Obj) -> Result<Action, Bad> {
    match o.tag()? {
        "set" => {
            o.only(&["type", "address", "value"])?;
            Ok(Action::Set {
                address: o.address("address")?,
                value: o.value("value")?,
            })
        }
        "publish" => {
            o.only(&["type", "address", "value", "signal"])?;
            let signal = match o.opt_str("signal")? {
                None | Some("event") => SignalType::Event,
                Some("stream") => SignalType::Stream,
                Some(other) => {
                    return Err(Bad::new(
                        o.at("signal"),
                        format!("unknown signal {other:?} (event, stream)"),
                    ))
                }
            };
            Ok(Action::Publish {
                address: o.address("address")?,
                value: o.opt("value").map_or(Value::Null, json_to_value),
                signal,
            })
        }
        "set_from_trigger" => {
            o.only(&["type", "address", "transform"])?;
            let transform = match o.opt("transform") {
                None => Transform::Identity,
                Some(t) => Transform::parse(&o.at("transform"), t)?,
            };
            Ok(Action::SetFromTrigger {
                address: o.address("address")?,
                transform,
            })
        }
        "delay" => {
            o.only(&["type", "milliseconds"])?;
            let ms = o.num("milliseconds")?;
            Ok(Action::Delay {
                duration: seconds(o.at("milliseconds"), ms / 1000.0, 0.0)?,
            })
        }
        other => Err(Bad::new(
            o.at("type"),
            format!("unknown action {other:?} (set, publish, set_from_trigger, delay)"),
        )),
    }
}

/// `cooldown`: seconds, or the `{"secs": n, "nanos": m}` of the legacy format.
fn cooldown(o: &Obj) -> Result<Duration, Bad> {
    match o.opt("cooldown") {
        None => Ok(Duration::ZERO),
        Some(v @ Json::Object(_)) => {
            let c = Obj::new(o.at("cooldown"), v)?;
            c.only(&["secs", "nanos"])?;
            let secs = c.num("secs")? + c.opt_num("nanos")?.unwrap_or(0.0) / 1e9;
            seconds(o.at("cooldown"), secs, 0.0)
        }
        Some(_) => seconds(o.at("cooldown"), o.num("cooldown")?, 0.0),
    }
}

fn rule(v: &Json) -> Result<Rule, Bad> {
    let o = Obj::new("", v)?;
    o.only(&[
        "id",
        "name",
        "description",
        "enabled",
        "trigger",
        "conditions",
        "actions",
        "cooldown",
    ])?;
    let id = o.str("id")?.trim().to_string();
    if id.is_empty() {
        return Err(Bad::new("id", "must not be empty"));
    }
    let trigger_json = o
        .opt("trigger")
        .cloned()
        .ok_or_else(|| Bad::new("trigger", "missing (expected an object with a type)"))?;
    let trigger = trigger(&Obj::new("trigger", &trigger_json)?)?;
    let conditions = o
        .array("conditions")?
        .iter()
        .enumerate()
        .map(|(i, c)| condition(&Obj::new(format!("conditions[{i}]"), c)?))
        .collect::<Result<Vec<_>, _>>()?;
    let actions = o
        .array("actions")?
        .iter()
        .enumerate()
        .map(|(i, a)| action(&Obj::new(format!("actions[{i}]"), a)?))
        .collect::<Result<Vec<_>, _>>()?;
    if actions.is_empty() {
        return Err(Bad::new("actions", "a rule needs at least one action"));
    }
    Ok(Rule {
        id,
        name: o.opt_str("name")?.map(str::to_string),
        enabled: o.opt_bool("enabled")?.unwrap_or(true),
        trigger,
        trigger_json,
        conditions,
        actions,
        cooldown: cooldown(&o)?,
    })
}

/// Parses and validates rules from JSON text: `{"rules": [...]}` or a bare array.
pub fn parse(path: &Path, text: &str) -> Result<Vec<Rule>, RulesError> {
    let doc: Json = serde_json::from_str(text).map_err(|source| RulesError::Json {
        path: path.to_path_buf(),
        source,
    })?;
    from_doc(path, &doc)
}

/// Parses and validates rules from TOML text: `[[rules]]` tables with the same fields as
/// the JSON format (TOML has no null, so `eq null` is JSON-only).
pub fn parse_toml(path: &Path, text: &str) -> Result<Vec<Rule>, RulesError> {
    let doc: Json = toml::from_str(text).map_err(|source| RulesError::Toml {
        path: path.to_path_buf(),
        source: Box::new(source),
    })?;
    from_doc(path, &doc)
}

/// Validates an already parsed document, whatever syntax it came in.
fn from_doc(path: &Path, doc: &Json) -> Result<Vec<Rule>, RulesError> {
    let shape = |message: &str| RulesError::Shape {
        path: path.to_path_buf(),
        message: message.into(),
    };
    let list = match doc {
        Json::Array(a) => a,
        Json::Object(o) => match o.get("rules") {
            Some(Json::Array(a)) => a,
            Some(_) => return Err(shape("\"rules\" must be an array")),
            None => return Err(shape("expected {\"rules\": [...]} or an array of rules")),
        },
        _ => return Err(shape("expected {\"rules\": [...]} or an array of rules")),
    };
    let mut seen = HashSet::new();
    let mut rules = Vec::with_capacity(list.len());
    for (i, v) in list.iter().enumerate() {
        let label = || match v.get("id").and_then(Json::as_str) {
            Some(id) if !id.trim().is_empty() => format!("{:?} (#{i})", id.trim()),
            _ => format!("#{i}"),
        };
        let r = rule(v).map_err(|b| RulesError::Field {
            rule: label(),
            field: b.field,
            message: b.message,
        })?;
        if !seen.insert(r.id.clone()) {
            return Err(RulesError::Field {
                rule: label(),
                field: "id".into(),
                message: "duplicate id (ids must be unique)".into(),
            });
        }
        rules.push(r);
    }
    Ok(rules)
}

/// Reads, parses and validates a rules file: TOML when its name ends in `.toml`, else JSON.
pub fn load(path: &Path) -> Result<Vec<Rule>, RulesError> {
    let text = std::fs::read_to_string(path).map_err(|source| RulesError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    if path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("toml"))
    {
        parse_toml(path, &text)
    } else {
        parse(path, &text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(text: &str) -> String {
        match parse(Path::new("r.json"), text) {
            Ok(_) => String::from("accepted"),
            Err(e) => e.to_string(),
        }
    }

    const OK: &str = r#"{"id":"a","trigger":{"type":"on_change","pattern":"/a"},"actions":[{"type":"set","address":"/b","value":1}]}"#;

    #[test]
    fn both_document_shapes_load() {
        let wrapped = format!("{{\"rules\":[{OK}]}}");
        let bare = format!("[{OK}]");
        for text in [wrapped, bare] {
            let rules = parse(Path::new("r.json"), &text).expect("valid");
            assert_eq!(rules.len(), 1);
            assert!(rules[0].enabled, "enabled defaults to true");
            assert_eq!(rules[0].cooldown, Duration::ZERO);
        }
    }

    #[test]
    fn errors_name_the_rule_and_the_field() {
        let dim = r#"[{"id":"a","trigger":{"type":"on_change","pattern":"/a"},"actions":[{"type":"set","address":"/b","value":1}]},
            {"id":"b","trigger":{"type":"on_change","pattern":"/a"},"actions":[{"type":"set","address":"/b","value":1}]},
            {"id":"dim","trigger":{"type":"on_change","pattern":"/a"},"actions":[{"type":"set_from_trigger","address":"/b","transform":{"type":"scale","factor":"x"}}]}]"#;
        assert_eq!(
            err(dim),
            r#"rule "dim" (#2): actions[0].transform.factor: expected a number, found a string"#
        );
        assert_eq!(
            err(r#"[{"id":"x","trigger":{"type":"on_change","pattern":"/a"},"actions":[]}]"#),
            r#"rule "x" (#0): actions: a rule needs at least one action"#
        );
        assert_eq!(
            err(
                r#"[{"id":" ","trigger":{"type":"on_change","pattern":"/a"},"actions":[{"type":"set","address":"/b","value":1}]}]"#
            ),
            "rule #0: id: must not be empty"
        );
        assert_eq!(
            err(&format!("[{OK},{OK}]")),
            r#"rule "a" (#1): id: duplicate id (ids must be unique)"#
        );
        assert!(err(r#"[{"id":"p","trigger":{"type":"on_change","pattern":"no-slash"},"actions":[{"type":"set","address":"/b","value":1}]}]"#)
            .starts_with(r#"rule "p" (#0): trigger.pattern: invalid pattern"#));
        assert!(err(r#"[{"id":"q","trigger":{"type":"on_tick"},"actions":[{"type":"set","address":"/b","value":1}]}]"#)
            .starts_with(r#"rule "q" (#0): trigger.type: unknown trigger "on_tick""#));
        assert!(err(r#"[{"id":"c","trigger":{"type":"on_change","pattern":"/a"},"conditions":[{"address":"/m","op":"like","value":1}],"actions":[{"type":"set","address":"/b","value":1}]}]"#)
            .starts_with(r#"rule "c" (#0): conditions[0].op: unknown operator"#));
        assert!(err(r#"[{"id":"t","trigger":{"type":"on_change","pattern":"/a"},"actions":[{"type":"set","adress":"/b","value":1}]}]"#)
            .starts_with(r#"rule "t" (#0): actions[0].adress: unknown field"#));
        assert!(err(r#"[{"id":"h","trigger":{"type":"on_threshold","address":"/t"},"actions":[{"type":"set","address":"/b","value":1}]}]"#)
            .contains("needs above, below or both"));
        assert!(err(r#"{"rules":{}}"#).contains("\"rules\" must be an array"));
        assert!(err("{").contains("not valid JSON"));
    }

    #[test]
    fn toml_files_use_the_same_format() {
        let text = r#"
[[rules]]
id = "dim"
cooldown = 0.5
trigger = { type = "on_change", pattern = "/a" }
conditions = [{ address = "/mode", op = "eq", value = "live" }]

[[rules.actions]]
type = "set_from_trigger"
address = "/b"
transform = [{ type = "scale", factor = 0.5 }, { type = "round", decimals = 2 }]
"#;
        let rules = parse_toml(Path::new("r.toml"), text).expect("valid TOML rules");
        assert_eq!(rules[0].id, "dim");
        assert_eq!(rules[0].cooldown, Duration::from_millis(500));
        assert_eq!(rules[0].conditions[0].value, Value::from("live"));
        let bad = text.replace("factor = 0.5", "factor = \"x\"");
        assert_eq!(
            parse_toml(Path::new("r.toml"), &bad).err().map(|e| e.to_string()),
            Some(
                r#"rule "dim" (#0): actions[0].transform[0].factor: expected a number, found a string"#
                    .into()
            )
        );
        assert!(matches!(
            parse_toml(Path::new("r.toml"), "[[rules]"),
            Err(RulesError::Toml { .. })
        ));
    }

    #[test]
    fn cooldown_accepts_seconds_and_the_legacy_struct() {
        let with = |c: &str| {
            let text = OK.replace("\"id\":\"a\"", &format!("\"id\":\"a\",\"cooldown\":{c}"));
            parse(Path::new("r.json"), &format!("[{text}]"))
                .map(|r| r[0].cooldown)
                .map_err(|e| e.to_string())
        };
        assert_eq!(with("1.5"), Ok(Duration::from_millis(1500)));
        assert_eq!(
            with(r#"{"secs":2,"nanos":500000000}"#).ok(),
            Some(Duration::from_millis(2500))
        );
        assert!(with("-1").is_err());
    }
}
