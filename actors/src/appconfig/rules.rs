//! Write rules (FEATURES AC-3 plus the value validation): the first rule whose path
//! matches an address decides whether a write there is allowed.

use clasp_proto::Value;

use super::checks::{Check, State};
use super::path::{Captures, PathTemplate};

/// How a rule's `checks` combine.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Mode {
    /// Every check must pass.
    #[default]
    All,
    /// One passing check is enough.
    Any,
}

/// The kind of value a rule accepts (`type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ValueType {
    /// Int or float.
    Number,
    /// Int only.
    Int,
    /// Float (ints are accepted: clients often send 1 for 1.0).
    Float,
    /// UTF-8 string.
    String,
    /// true/false.
    Bool,
    /// Map (JSON object).
    Map,
    /// Array.
    Array,
    /// Byte string.
    Bytes,
}

impl ValueType {
    /// The accepted spellings.
    pub const NAMES: &'static str =
        "number, int, float, string, bool, map, array, bytes (object = map, boolean = bool, integer = int)";

    /// Parses a `type` field.
    pub fn parse(text: &str) -> Option<Self> {
        Some(match text {
            "number" => Self::Number,
            "int" | "integer" => Self::Int,
            "float" => Self::Float,
            "string" => Self::String,
            "bool" | "boolean" => Self::Bool,
            "map" | "object" => Self::Map,
            "array" => Self::Array,
            "bytes" => Self::Bytes,
            _ => return None,
        })
    }

    fn name(self) -> &'static str {
        match self {
            Self::Number => "a number",
            Self::Int => "an integer",
            Self::Float => "a float",
            Self::String => "a string",
            Self::Bool => "a bool",
            Self::Map => "a map",
            Self::Array => "an array",
            Self::Bytes => "bytes",
        }
    }

    fn accepts(self, v: &Value) -> bool {
        matches!(
            (self, v),
            (Self::Number | Self::Float, Value::Int(_) | Value::Float(_))
                | (Self::Int, Value::Int(_))
                | (Self::String, Value::String(_))
                | (Self::Bool, Value::Bool(_))
                | (Self::Map, Value::Map(_))
                | (Self::Array, Value::Array(_))
                | (Self::Bytes, Value::Bytes(_))
        )
    }
}

/// What `min`/`max` measure: a number's value, or the length of a string (characters), an
/// array, a map or bytes.
fn measure(v: &Value) -> Option<f64> {
    Some(match v {
        Value::Int(_) | Value::Float(_) => v.as_f64()?,
        Value::String(s) => s.chars().count() as f64,
        Value::Array(a) => a.len() as f64,
        Value::Map(m) => m.len() as f64,
        Value::Bytes(b) => b.len() as f64,
        Value::Null | Value::Bool(_) => return None,
    })
}

/// One compiled write rule.
#[derive(Debug, Clone)]
pub struct WriteRule {
    /// Which addresses it decides.
    pub path: PathTemplate,
    /// Checks combined by `mode`; skipped for null writes with `allow_null_write`.
    pub checks: Vec<Check>,
    /// Checks that always run, all of them.
    pub pre_checks: Vec<Check>,
    /// How `checks` combine.
    pub mode: Mode,
    /// Null writes (deletions) skip `checks` and the value validation.
    pub allow_null_write: bool,
    /// Accepted value kind.
    pub value_type: Option<ValueType>,
    /// Lower bound (value or length).
    pub min: Option<f64>,
    /// Upper bound (value or length).
    pub max: Option<f64>,
    /// Text sent instead of the failing check's own message.
    pub message: Option<String>,
}

/// A refused write: which rule and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct Violation {
    /// Index of the rule in `write_rules`.
    pub rule: usize,
    /// The text for the ERROR.
    pub message: String,
}

impl WriteRule {
    fn skips_checks(&self, value: &Value) -> bool {
        self.allow_null_write && matches!(value, Value::Null)
    }

    /// Addresses the rule's checks look up for this write.
    pub fn lookups(&self, captures: &Captures, value: &Value, subject: &str) -> Vec<String> {
        let checks = if self.skips_checks(value) {
            &[][..]
        } else {
            &self.checks[..]
        };
        self.pre_checks
            .iter()
            .chain(checks)
            .flat_map(|c| c.lookups(captures, subject))
            .collect()
    }

    /// Value kind and range; applies to every writer, authenticated or not.
    pub fn validate_value(&self, address: &str, value: &Value) -> Result<(), String> {
        if self.skips_checks(value) {
            return Ok(());
        }
        if let Some(t) = self.value_type {
            if !t.accepts(value) {
                return Err(format!("Value at {address} must be {}", t.name()));
            }
        }
        if self.min.is_none() && self.max.is_none() {
            return Ok(());
        }
        let Some(m) = measure(value) else {
            return Err(format!(
                "Value at {address} must be a number or have a length"
            ));
        };
        let what = if matches!(value, Value::Int(_) | Value::Float(_)) {
            "Value"
        } else {
            "Length of value"
        };
        if let Some(min) = self.min.filter(|min| m < *min) {
            return Err(format!("{what} at {address} is below the minimum {min}"));
        }
        if let Some(max) = self.max.filter(|max| m > *max) {
            return Err(format!("{what} at {address} is above the maximum {max}"));
        }
        Ok(())
    }

    /// Runs pre-checks (all) and checks (by mode) for a writer with a subject.
    pub fn run_checks(
        &self,
        address: &str,
        value: &Value,
        captures: &Captures,
        subject: &str,
        state: &State,
    ) -> Result<(), String> {
        for c in &self.pre_checks {
            c.run(address, value, captures, subject, state)?;
        }
        if self.skips_checks(value) || self.checks.is_empty() {
            return Ok(());
        }
        let mut first_error = None;
        for c in &self.checks {
            match (c.run(address, value, captures, subject, state), self.mode) {
                (Ok(()), Mode::Any) => return Ok(()),
                (Ok(()), Mode::All) => {}
                (Err(e), Mode::All) => return Err(e),
                (Err(e), Mode::Any) => {
                    first_error.get_or_insert(e);
                }
            }
        }
        first_error.map_or(Ok(()), Err)
    }
}
