//! The app-config file as written (JSON), before validation. Each list entry is kept as
//! JSON until it is parsed on its own, so an error can name the entry's index and path.

use serde::Deserialize;
use serde_json::Value as Json;

/// The top level. Unknown keys are refused (a typo must not silently disable a rule), except
/// the descriptive ones listed.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    /// Scope templates for issued tokens.
    #[serde(default)]
    pub scopes: Vec<String>,
    /// Write rules, parsed one by one.
    #[serde(default)]
    pub write_rules: Vec<Json>,
    /// Redaction rules, parsed one by one.
    #[serde(default)]
    pub snapshot_transforms: Vec<Json>,
    /// Visibility rules, parsed one by one.
    #[serde(default)]
    pub snapshot_visibility: Vec<Json>,
    /// Auth endpoint limits.
    #[serde(default)]
    pub rate_limits: Option<RawRateLimits>,
    /// Per-address strategy and TTL, parsed one by one.
    #[serde(default)]
    pub params: Vec<Json>,
    /// Ignored: editors' schema hint.
    #[serde(default, rename = "$schema")]
    pub _schema: Option<Json>,
    /// Ignored: descriptive.
    #[serde(default, rename = "name")]
    pub _name: Option<Json>,
    /// Ignored: descriptive.
    #[serde(default, rename = "description")]
    pub _description: Option<Json>,
    /// Ignored: descriptive.
    #[serde(default, rename = "version")]
    pub _version: Option<Json>,
}

/// `write_rules[i]`; `checks` are parsed separately (they accept `type` or `check`).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawWriteRule {
    /// Path template.
    pub path: String,
    /// Checks combined by `mode`.
    #[serde(default)]
    pub checks: Vec<Json>,
    /// Checks that always run.
    #[serde(default)]
    pub pre_checks: Vec<Json>,
    /// `all` (default) or `any`.
    #[serde(default)]
    pub mode: Option<String>,
    /// Null writes skip `checks` and value validation.
    #[serde(default)]
    pub allow_null_write: bool,
    /// Accepted value kind.
    #[serde(default, rename = "type")]
    pub value_type: Option<String>,
    /// Lower bound (value or length).
    #[serde(default)]
    pub min: Option<f64>,
    /// Upper bound (value or length).
    #[serde(default)]
    pub max: Option<f64>,
    /// ERROR text override.
    #[serde(default)]
    pub message: Option<String>,
}

/// One check, after its kind key (`type` or `check`) was taken out.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawCheck {
    /// Address template looked up.
    #[serde(default)]
    pub lookup: Option<String>,
    /// Map field.
    #[serde(default)]
    pub field: Option<String>,
    /// Pass when nothing is stored.
    #[serde(default)]
    pub allow_if_missing: bool,
    /// Capture name.
    #[serde(default)]
    pub segment: Option<String>,
    /// First address template.
    #[serde(default)]
    pub lookup_a: Option<String>,
    /// Second address template.
    #[serde(default)]
    pub lookup_b: Option<String>,
    /// Stricter path template.
    #[serde(default)]
    pub pattern: Option<String>,
    /// ERROR text override.
    #[serde(default)]
    pub message: Option<String>,
}

/// `snapshot_transforms[i]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTransform {
    /// Path template.
    pub path: String,
    /// Map keys removed.
    #[serde(default)]
    pub redact_fields: Vec<String>,
}

/// `snapshot_visibility[i]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawVisibility {
    /// Substring matcher.
    #[serde(default)]
    pub path_contains: Option<String>,
    #[serde(default)]
    pub path: Option<String>,
    /// `true`, `false`, `"owner"` or `"require_state_not_null"`.
    pub visible: Json,
    /// Capture naming the owner.
    #[serde(default)]
    pub owner_segment: Option<String>,
    /// Sub-path everyone sees.
    #[serde(default)]
    pub public_sub: Option<String>,
    /// Address template looked up.
    #[serde(default)]
    pub lookup: Option<String>,
}

/// `rate_limits`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRateLimits {
    /// Failed logins allowed per window.
    #[serde(default = "login_max")]
    pub login_max_attempts: usize,
    /// Login window.
    #[serde(default = "window")]
    pub login_window_secs: u64,
    /// Registrations allowed per window.
    #[serde(default = "register_max")]
    pub register_max_attempts: usize,
    /// Registration window.
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
    /// Path template.
    pub path: String,
    /// Conflict strategy name.
    #[serde(default)]
    pub strategy: Option<String>,
    /// Lifetime for SETs without one.
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
