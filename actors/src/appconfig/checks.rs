//! The checks a write rule runs (FEATURES AC-3). Each is evaluated against the written
//! value, the path's captures, the writer's subject and the current values of the addresses
//! it looks up, which the caller fetched beforehand ([`Check::lookups`]).

use std::collections::HashMap;

use clasp_proto::Value;
use serde_json::Value as Json;

use super::path::{Captures, Lookup, PathError, PathTemplate};
use super::raw::RawCheck;

/// Current values of looked-up addresses; an absent key is a missing param.
pub type State = HashMap<String, Value>;

/// One compiled check.
#[derive(Debug, Clone)]
pub enum Check {
    /// The map at `lookup` has `field` equal to the writer (missing state passes only with
    /// `allow_if_missing`): "only the creator may change it".
    StateFieldEqualsSession {
        /// Address template.
        lookup: Lookup,
        /// Map field holding the owner's id.
        field: String,
        /// Pass when nothing is stored yet (first creation).
        allow_if_missing: bool,
    },
    /// Something non-null is stored at `lookup`.
    StateNotNull {
        /// Address template.
        lookup: Lookup,
    },
    /// The written map's `field` is the writer: no posting in someone else's name.
    ValueFieldEqualsSession {
        /// Map field.
        field: String,
    },
    /// The path capture `segment` is the writer.
    SegmentEqualsSession {
        /// Capture name.
        segment: String,
    },
    /// Something non-null is stored at `lookup_a` or at `lookup_b`.
    EitherStateNotNull {
        /// First address template.
        lookup_a: Lookup,
        /// Second address template.
        lookup_b: Lookup,
    },
    /// The written map has `field` as a string.
    RequireValueField {
        /// Map field.
        field: String,
    },
    /// The address must also match `pattern`; else `message`.
    RejectUnlessPathMatches {
        /// The stricter template.
        pattern: PathTemplate,
        /// The refusal text.
        message: String,
    },
}

/// Why a check entry is refused at load: the field at fault and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckError {
    /// Field inside the check (`lookup`, `type`, ...).
    pub field: &'static str,
    /// What is wrong.
    pub reason: String,
}

fn need<'a>(v: &'a Option<String>, field: &'static str) -> Result<&'a str, CheckError> {
    v.as_deref().ok_or_else(|| CheckError {
        field,
        reason: "required by this check type".into(),
    })
}

fn lookup(
    v: &Option<String>,
    field: &'static str,
    path: &PathTemplate,
) -> Result<Lookup, CheckError> {
    Lookup::parse(need(v, field)?, Some(path)).map_err(|e: PathError| CheckError {
        field,
        reason: e.to_string(),
    })
}

/// The check type names, for error messages.
pub const CHECK_TYPES: &str = "state_field_equals_session, state_not_null, \
    value_field_equals_session, segment_equals_session, either_state_not_null, \
    require_value_field, reject_unless_path_matches";

impl Check {
    /// Parses one check object of a rule whose path is `path`. The kind is keyed by `type`
    /// (the schema) or `check` (the guide's spelling).
    pub fn parse(entry: &Json, path: &PathTemplate) -> Result<Self, CheckError> {
        let Json::Object(map) = entry else {
            return Err(CheckError {
                field: "type",
                reason: "a check is an object".into(),
            });
        };
        let mut map = map.clone();
        let kind = match (map.remove("type"), map.remove("check")) {
            (Some(Json::String(k)), None) | (None, Some(Json::String(k))) => k,
            (Some(_), Some(_)) => {
                return Err(CheckError {
                    field: "type",
                    reason: "give the kind as \"type\" or \"check\", not both".into(),
                })
            }
            (None, None) => {
                return Err(CheckError {
                    field: "type",
                    reason: format!("missing (one of {CHECK_TYPES})"),
                })
            }
            _ => {
                return Err(CheckError {
                    field: "type",
                    reason: "must be a string".into(),
                })
            }
        };
        let raw: RawCheck = serde_json::from_value(Json::Object(map)).map_err(|e| CheckError {
            field: "fields",
            reason: e.to_string(),
        })?;
        Ok(match kind.as_str() {
            "state_field_equals_session" => Check::StateFieldEqualsSession {
                lookup: lookup(&raw.lookup, "lookup", path)?,
                field: need(&raw.field, "field")?.into(),
                allow_if_missing: raw.allow_if_missing,
            },
            "state_not_null" => Check::StateNotNull {
                lookup: lookup(&raw.lookup, "lookup", path)?,
            },
            "value_field_equals_session" => Check::ValueFieldEqualsSession {
                field: need(&raw.field, "field")?.into(),
            },
            "segment_equals_session" => {
                let segment = need(&raw.segment, "segment")?;
                if path.capture_index(segment).is_none() {
                    return Err(CheckError {
                        field: "segment",
                        reason: format!("{{{segment}}} is not a capture of the rule's path"),
                    });
                }
                Check::SegmentEqualsSession {
                    segment: segment.into(),
                }
            }
            "either_state_not_null" => Check::EitherStateNotNull {
                lookup_a: lookup(&raw.lookup_a, "lookup_a", path)?,
                lookup_b: lookup(&raw.lookup_b, "lookup_b", path)?,
            },
            "require_value_field" => Check::RequireValueField {
                field: need(&raw.field, "field")?.into(),
            },
            "reject_unless_path_matches" => Check::RejectUnlessPathMatches {
                pattern: PathTemplate::parse(need(&raw.pattern, "pattern")?).map_err(|e| {
                    CheckError {
                        field: "pattern",
                        reason: e.to_string(),
                    }
                })?,
                message: need(&raw.message, "message")?.into(),
            },
            other => {
                return Err(CheckError {
                    field: "type",
                    reason: format!("unknown check {other:?} (one of {CHECK_TYPES})"),
                })
            }
        })
    }

    /// Addresses whose current values this check needs.
    pub fn lookups(&self, captures: &Captures, subject: &str) -> Vec<String> {
        let resolve = |l: &Lookup| l.resolve(captures, Some(subject));
        match self {
            Check::StateFieldEqualsSession { lookup, .. } | Check::StateNotNull { lookup } => {
                resolve(lookup).into_iter().collect()
            }
            Check::EitherStateNotNull { lookup_a, lookup_b } => {
                [resolve(lookup_a), resolve(lookup_b)]
                    .into_iter()
                    .flatten()
                    .collect()
            }
            _ => Vec::new(),
        }
    }

    /// Runs the check; `Err` carries the refusal text.
    pub fn run(
        &self,
        address: &str,
        value: &Value,
        captures: &Captures,
        subject: &str,
        state: &State,
    ) -> Result<(), String> {
        let present = |a: &str| state.get(a).is_some_and(|v| !matches!(v, Value::Null));
        let resolve = |l: &Lookup| l.resolve(captures, Some(subject)).unwrap_or_default();
        match self {
            Check::StateFieldEqualsSession {
                lookup,
                field,
                allow_if_missing,
            } => {
                let at = resolve(lookup);
                match state.get(&at).filter(|v| !matches!(v, Value::Null)) {
                    None if *allow_if_missing => Ok(()),
                    None => Err(format!("No state at {at}")),
                    Some(v) if v.get(field).and_then(Value::as_str) == Some(subject) => Ok(()),
                    Some(_) => Err(format!("Field {field} at {at} does not name you")),
                }
            }
            Check::StateNotNull { lookup } => {
                let at = resolve(lookup);
                if present(&at) {
                    Ok(())
                } else {
                    Err(format!("No state at {at}"))
                }
            }
            Check::ValueFieldEqualsSession { field } => {
                match value.get(field).and_then(Value::as_str) {
                    Some(v) if v == subject => Ok(()),
                    Some(v) => Err(format!("Field {field} is {v:?}, not you ({subject:?})")),
                    None => Err(format!("Value must include a string field {field}")),
                }
            }
            Check::SegmentEqualsSession { segment } => match captures.get(segment) {
                Some(v) if v == subject => Ok(()),
                Some(v) => Err(format!(
                    "Path segment {{{segment}}} is {v:?}, not you ({subject:?})"
                )),
                None => Err(format!("Path segment {{{segment}}} not captured")),
            },
            Check::EitherStateNotNull { lookup_a, lookup_b } => {
                let (a, b) = (resolve(lookup_a), resolve(lookup_b));
                if present(&a) || present(&b) {
                    Ok(())
                } else {
                    Err(format!("No state at {a} or {b}"))
                }
            }
            Check::RequireValueField { field } => {
                if value.get(field).and_then(Value::as_str).is_some() {
                    Ok(())
                } else {
                    Err(format!("Value must include a string field {field}"))
                }
            }
            Check::RejectUnlessPathMatches { pattern, message } => {
                if pattern.matches(address).is_some() {
                    Ok(())
                } else {
                    Err(message.clone())
                }
            }
        }
    }
}
