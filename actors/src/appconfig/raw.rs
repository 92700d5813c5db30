//! The app-config file as written (JSON), before validation. Each list entry is kept as
//! JSON until it is parsed on its own, so an error can name the entry's index and path.

use serde::Deserialize;
use serde_json::Value as Json;

/// The top level. Unknown keys are refused (a typo must not silently disable a rule), except
/// the descriptive ones listed.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    #[serde(default)]
    pub scopes: Vec<String>,
    #[serde(default)]
    pub write_rules: Vec<Json>,
    #[serde(default)]
    pub snapshot_transforms: Vec<Json>,
    #[serde(default)]
    pub snapshot_visibility: Vec<Json>,
    #[serde(default)]
    pub rate_limits: Option<RawRateLimits>,
    #[serde(default)]
    pub params: Vec<Json>,
    #[serde(default, rename = "$schema")]
    pub _schema: Option<Json>,
    #[serde(default, rename = "name")]
    pub _name: Option<Json>,
    #[serde(default, rename = "description")]
    pub _description: Option<Json>,
    #[serde(default, rename = "version")]
    pub _version: Option<Json>,
}

/// `write_rules[i]`; `checks` are parsed separately (they accept `type` or `check`).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawWriteRule {
    pub path: String,
    #[serde(default)]
    pub checks: Vec<Json>,
    #[serde(default)]
    pub pre_checks: Vec<Json>,
    #[serde(default)]
    pub mode: Option<String>,
    #[serde(default)]
    pub allow_null_write: bool,
    #[serde(default, rename = "type")]
    pub value_type: Option<String>,
    #[serde(default)]
    pub min: Option<f64>,
    #[serde(default)]
    pub max: Option<f64>,
    #[serde(default)]
    pub message: Option<String>,
}

/// One check, after its kind key (`type` or `check`) was taken out.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawCheck {
    #[serde(default)]
    pub lookup: Option<String>,
    #[serde(default)]
    pub field: Option<String>,
    #[serde(default)]
    pub allow_if_missing: bool,
    #[serde(default)]
    pub segment: Option<String>,
    #[serde(default)]
    pub lookup_a: Option<String>,
    #[serde(default)]
    pub lookup_b: Option<String>,
    #[serde(default)]
    pub pattern: Option<String>,
    #[serde(default)]
    pub message: Option<String>,
}

/// `snapshot_transforms[i]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTransform {
    pub path: String,
    #[serde(default)]
    pub redact_fields: Vec<String>,
}

/// `snapshot_visibility[i]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawVisibility {
    #[serde(default)]
    pub path_contains: Option<String>,
    #[serde(default)]
    pub path: Option<String>,
    pub visible: Json,
    #[serde(default)]
    pub owner_segment: Option<String>,
    #[serde(default)]
    pub public_sub: Option<String>,
    #[serde(default)]
    pub lookup: Option<String>,
}

/// `rate_limits`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRateLimits {
    #[serde(default = "login_max")]
    pub login_max_attempts: usize,
    #[serde(default = "window")]
    pub login_window_secs: u64,
    #[serde(default = "register_max")]
    pub register_max_attempts: usize,
    #[serde(default = "window")]
    pub register_window_secs: u64,
}

fn login_max() -> usize {
    5
}
fn register_max() -> usize {
    10
}
fn window() -> u64 {
    60
}

/// `params[i]`: per-address conflict strategy and lifetime.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawParam {
    pub path: String,
    #[serde(default)]
    pub strategy: Option<String>,
    #[serde(default)]
    pub ttl_secs: Option<u32>,
}

/// The `path` of a list entry, for error messages, if it has a string one.
pub fn path_of(entry: &Json) -> String {
    entry
        .get("path")
        .or_else(|| entry.get("path_contains"))
        .and_then(Json::as_str)
        .unwrap_or("")
        .to_string()
}
