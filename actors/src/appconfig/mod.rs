//! The app config (`--app-config FILE`, FEATURES AC-1..AC-6, issue 8): one JSON file that
//! constrains an application's data without code. Write rules decide who may write where
//! and what values are acceptable, per-address params set conflict strategy and lifetime,
//! transforms and visibility rules decide what each session sees, and scope templates and
//! rate limits feed the auth service. Everything is validated at load, so a mistake stops
//! the relay with an error that names the entry and field instead of misbehaving later.
//!
//! Sessions enforce it (`session::appcheck`); this module is the format, its validation and
//! the pure decisions.

pub mod checks;
pub mod path;
mod raw;
pub mod rules;
pub mod view;

use std::path::{Path, PathBuf};
use std::time::Duration;

use clasp_proto::{Pattern, Ttl, Value};
use serde::de::DeserializeOwned;
use serde_json::Value as Json;

use crate::config::{ConflictStrategy, RelayConfig};
pub use checks::{Check, State};

/// ERROR code of a write an app-config rule refused (issue 8).
pub const RULE_VIOLATION: u16 = 402;
pub use path::{Captures, Lookup, PathTemplate};
pub use rules::{Mode, ValueType, Violation, WriteRule};
pub use view::{Decision, Matcher, Transform, VisibilityRule, Visible};

/// Why an app config could not be loaded; each names where the problem is.
#[derive(Debug, thiserror::Error)]
pub enum AppConfigError {
    /// The file could not be read.
    #[error("cannot read app config {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// OS error.
        source: std::io::Error,
    },
    /// Not JSON, or the top level has an unknown key or a wrong type (serde names the line).
    #[error("app config {file}: {source}")]
    Syntax {
        /// The file (or `<inline>`).
        file: String,
        /// Parser error with line and column.
        source: serde_json::Error,
    },
    /// One entry is wrong: `write_rules[2] (/chat/room/{roomId}/meta): checks[0].lookup: ...`.
    #[error("app config {file}: {section}[{index}] ({path}): {field}: {reason}")]
    Entry {
        /// The file (or `<inline>`).
        file: String,
        /// `write_rules`, `snapshot_transforms`, `snapshot_visibility` or `params`.
        section: &'static str,
        /// Index in that list.
        index: usize,
        /// The entry's path as written (may be empty).
        path: String,
        /// The field at fault.
        field: String,
        /// What is wrong.
        reason: String,
    },
    /// A top-level setting is wrong (`scopes[1]`, `rate_limits`).
    #[error("app config {file}: {field}: {reason}")]
    Setting {
        /// The file (or `<inline>`).
        file: String,
        /// The field at fault.
        field: String,
        /// What is wrong.
        reason: String,
    },
}

/// Auth endpoint limits from `rate_limits` (FEATURES AC-6 → AU-6).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RateLimits {
    /// Failed logins per client address and per username in `login_window`.
    pub login_max_attempts: usize,
    /// Window of the login limit.
    pub login_window: Duration,
    /// Registrations and guest tokens per client address in `register_window`.
    pub register_max_attempts: usize,
    /// Window of the registration limit.
    pub register_window: Duration,
}

/// `params[i]`: a conflict strategy and/or lifetime for the params under a path.
#[derive(Debug, Clone)]
pub struct ParamRule {
    /// Where.
    pub path: PathTemplate,
    /// Conflict strategy (ST-12) for these params.
    pub strategy: Option<ConflictStrategy>,
    /// Sliding lifetime given to SETs that carry none (0: never expire).
    pub ttl_secs: Option<u32>,
}

/// A validated app config.
#[derive(Debug, Clone, Default)]
pub struct AppConfig {
    /// Scope templates for issued tokens; `{userId}` is filled in by the auth service.
    pub scopes: Vec<String>,
    /// First match decides.
    pub write_rules: Vec<WriteRule>,
    /// Every match applies.
    pub transforms: Vec<Transform>,
    /// First match decides.
    pub visibility: Vec<VisibilityRule>,
    /// Auth endpoint limits.
    pub rate_limits: Option<RateLimits>,
    /// Per-address strategy and TTL.
    pub params: Vec<ParamRule>,
}

struct Ctx<'a> {
    file: &'a str,
    section: &'static str,
    index: usize,
    path: String,
}

impl Ctx<'_> {
    fn err(&self, field: impl Into<String>, reason: impl std::fmt::Display) -> AppConfigError {
        AppConfigError::Entry {
            file: self.file.into(),
            section: self.section,
            index: self.index,
            path: self.path.clone(),
            field: field.into(),
            reason: reason.to_string(),
        }
    }

    fn parse<T: DeserializeOwned>(&self, entry: &Json) -> Result<T, AppConfigError> {
        serde_json::from_value(entry.clone()).map_err(|e| {
            let text = e.to_string();
            // serde names the field in its text: `missing field `path``, `unknown field `x``.
            let field = text
                .split('`')
                .nth(1)
                .filter(|_| text.contains("field"))
                .unwrap_or("entry")
                .to_string();
            self.err(field, text)
        })
    }

    fn template(&self, field: &str, text: &str) -> Result<PathTemplate, AppConfigError> {
        PathTemplate::parse(text).map_err(|e| self.err(field, e))
    }
}

impl AppConfig {
    /// Reads and validates a file.
    pub fn load(path: &Path) -> Result<Self, AppConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| AppConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Self::parse(&text, &path.display().to_string())
    }

    /// Validates JSON text; `file` names it in errors.
    pub fn parse(text: &str, file: &str) -> Result<Self, AppConfigError> {
        let raw: raw::RawConfig =
            serde_json::from_str(text).map_err(|source| AppConfigError::Syntax {
                file: file.into(),
                source,
            })?;
        let setting = |field: String, reason: String| AppConfigError::Setting {
            file: file.into(),
            field,
            reason,
        };
        for (i, s) in raw.scopes.iter().enumerate() {
            s.replace("{userId}", "x")
                .parse::<crate::auth::Scope>()
                .map_err(|e| setting(format!("scopes[{i}]"), e.to_string()))?;
        }
        let rate_limits = match raw.rate_limits {
            Some(r) => {
                if r.login_window_secs == 0 || r.register_window_secs == 0 {
                    return Err(setting(
                        "rate_limits".into(),
                        "windows must be at least 1 second".into(),
                    ));
                }
                Some(RateLimits {
                    login_max_attempts: r.login_max_attempts,
                    login_window: Duration::from_secs(r.login_window_secs),
                    register_max_attempts: r.register_max_attempts,
                    register_window: Duration::from_secs(r.register_window_secs),
                })
            }
            None => None,
        };
        let ctx = |section, index, entry: &Json| Ctx {
            file,
            section,
            index,
            path: raw::path_of(entry),
        };
        let mut config = AppConfig {
            scopes: raw.scopes,
            rate_limits,
            ..AppConfig::default()
        };
        for (i, entry) in raw.write_rules.iter().enumerate() {
            config
                .write_rules
                .push(write_rule(&ctx("write_rules", i, entry), entry)?);
        }
        for (i, entry) in raw.snapshot_transforms.iter().enumerate() {
            let c = ctx("snapshot_transforms", i, entry);
            let r: raw::RawTransform = c.parse(entry)?;
            config.transforms.push(Transform {
                path: c.template("path", &r.path)?,
                redact_fields: r.redact_fields,
            });
        }
        for (i, entry) in raw.snapshot_visibility.iter().enumerate() {
            config.visibility.push(visibility_rule(
                &ctx("snapshot_visibility", i, entry),
                entry,
            )?);
        }
        for (i, entry) in raw.params.iter().enumerate() {
            let c = ctx("params", i, entry);
            let r: raw::RawParam = c.parse(entry)?;
            let strategy = match r.strategy.as_deref() {
                Some(s) => Some(s.parse().map_err(|e: String| c.err("strategy", e))?),
                None => None,
            };
            if strategy.is_none() && r.ttl_secs.is_none() {
                return Err(c.err("strategy", "give a strategy, a ttl_secs, or both"));
            }
            if r.ttl_secs.is_some_and(|t| t > 0x7fff_ffff) {
                return Err(c.err("ttl_secs", "at most 2147483647"));
            }
            config.params.push(ParamRule {
                path: c.template("path", &r.path)?,
                strategy,
                ttl_secs: r.ttl_secs,
            });
        }
        Ok(config)
    }

    /// The file named by `--app-config`, else the one [`AppConfig::discover`] finds, else
    /// none. The chosen file must be valid: a broken config stops the relay.
    pub fn load_or_discover(flag: Option<&Path>) -> Result<Option<Self>, AppConfigError> {
        let Some(path) = flag.map(Path::to_path_buf).or_else(Self::discover) else {
            return Ok(None);
        };
        let config = Self::load(&path)?;
        tracing::info!(
            file = %path.display(),
            write_rules = config.write_rules.len(),
            visibility = config.visibility.len(),
            transforms = config.transforms.len(),
            params = config.params.len(),
            "app config loaded"
        );
        Ok(Some(config))
    }

    /// Applies [`AppConfig::apply_to`] (logging its warnings) and hands the rules to the
    /// relay's sessions.
    pub fn install(self, relay: &mut RelayConfig) {
        for warning in self.apply_to(relay) {
            tracing::warn!("app config: {warning}");
        }
        relay.app_config = Some(std::sync::Arc::new(self));
    }

    /// AC-1: with no `--app-config`, the only `*.json` of `/etc/clasp`, else of `./config`.
    pub fn discover() -> Option<PathBuf> {
        discover_in(&[Path::new("/etc/clasp"), Path::new("config")])
    }

    /// Puts the file's settings where the relay reads them: param strategies after those
    /// given as flags (flags are more specific to this run), scope templates and rate
    /// limits into the auth settings. Returns warnings for settings that cannot apply.
    pub fn apply_to(&self, relay: &mut RelayConfig) -> Vec<String> {
        let mut warnings = Vec::new();
        for p in &self.params {
            let Some(strategy) = p.strategy else { continue };
            match Pattern::compile(&p.path.to_pattern_text()) {
                Ok(pattern) => relay.strategies.push((pattern, strategy)),
                Err(e) => warnings.push(format!("params path {}: {e}", p.path.as_str())),
            }
        }
        match relay.auth.as_mut() {
            Some(auth) => {
                if !self.scopes.is_empty() {
                    auth.user_scopes = self.scopes.clone();
                }
                if let Some(r) = &self.rate_limits {
                    auth.login_max_attempts = r.login_max_attempts;
                    auth.register_max_attempts = r.register_max_attempts;
                    auth.rate_window = r.login_window;
                    if r.register_window != r.login_window {
                        warnings.push(format!(
                            "rate_limits: one window applies to login and register; using login_window_secs ({} s)",
                            r.login_window.as_secs()
                        ));
                    }
                }
            }
            None if !self.scopes.is_empty() || self.rate_limits.is_some() => warnings
                .push("scopes and rate_limits apply only with --auth; the relay runs open".into()),
            None => {}
        }
        warnings
    }

    /// Whether anything changes what sessions see (else deliveries take the fast path).
    pub fn filters_views(&self) -> bool {
        !self.visibility.is_empty() || self.transforms.iter().any(|t| !t.redact_fields.is_empty())
    }

    /// The rule deciding writes to `address`, with its captures.
    pub fn write_rule(&self, address: &str) -> Option<(usize, &WriteRule, Captures)> {
        self.write_rules
            .iter()
            .enumerate()
            .find_map(|(i, r)| r.path.matches(address).map(|c| (i, r, c)))
    }

    /// Addresses whose values a write needs looked up before [`AppConfig::check_write`].
    pub fn write_lookups(
        &self,
        address: &str,
        value: &Value,
        subject: Option<&str>,
    ) -> Vec<String> {
        match (self.write_rule(address), subject) {
            (Some((_, rule, captures)), Some(s)) => rule.lookups(&captures, value, s),
            _ => Vec::new(),
        }
    }

    /// Decides a write. Value validation applies to every writer; the checks only to
    /// writers with a subject (in open mode there is none, AC-3).
    pub fn check_write(
        &self,
        address: &str,
        value: &Value,
        subject: Option<&str>,
        state: &State,
    ) -> Result<(), Violation> {
        let Some((index, rule, captures)) = self.write_rule(address) else {
            return Ok(());
        };
        let result = rule
            .validate_value(address, value)
            .and_then(|()| match subject {
                Some(s) => rule.run_checks(address, value, &captures, s, state),
                None => Ok(()),
            });
        result.map_err(|text| Violation {
            rule: index,
            message: rule.message.clone().unwrap_or(text),
        })
    }

    /// The lifetime a SET to `address` gets when it carries none.
    pub fn ttl_for(&self, address: &str) -> Option<Ttl> {
        self.params
            .iter()
            .filter(|p| p.ttl_secs.is_some())
            .find(|p| p.path.matches(address).is_some())
            .and_then(|p| p.ttl_secs)
            .map(|s| if s == 0 { Ttl::Never } else { Ttl::Sliding(s) })
    }
}

fn checks_of(
    c: &Ctx<'_>,
    field: &str,
    entries: &[Json],
    path: &PathTemplate,
) -> Result<Vec<Check>, AppConfigError> {
    entries
        .iter()
        .enumerate()
        .map(|(i, e)| {
            Check::parse(e, path)
                .map_err(|err| c.err(format!("{field}[{i}].{}", err.field), err.reason))
        })
        .collect()
}

fn write_rule(c: &Ctx<'_>, entry: &Json) -> Result<WriteRule, AppConfigError> {
    let r: raw::RawWriteRule = c.parse(entry)?;
    let path = c.template("path", &r.path)?;
    let mode = match r.mode.as_deref() {
        None | Some("all") => Mode::All,
        Some("any") => Mode::Any,
        Some(other) => return Err(c.err("mode", format!("{other:?} is not all or any"))),
    };
    let value_type = match r.value_type.as_deref() {
        None => None,
        Some(t) => Some(ValueType::parse(t).ok_or_else(|| {
            c.err(
                "type",
                format!("unknown type {t:?} (one of {})", ValueType::NAMES),
            )
        })?),
    };
    if let (Some(min), Some(max)) = (r.min, r.max) {
        if min > max {
            return Err(c.err("min", format!("{min} is above max {max}")));
        }
    }
    if matches!(value_type, Some(ValueType::Bool)) && (r.min.is_some() || r.max.is_some()) {
        return Err(c.err("min", "a bool has no range"));
    }
    Ok(WriteRule {
        checks: checks_of(c, "checks", &r.checks, &path)?,
        pre_checks: checks_of(c, "pre_checks", &r.pre_checks, &path)?,
        path,
        mode,
        allow_null_write: r.allow_null_write,
        value_type,
        min: r.min,
        max: r.max,
        message: r.message,
    })
}

fn visibility_rule(c: &Ctx<'_>, entry: &Json) -> Result<VisibilityRule, AppConfigError> {
    let r: raw::RawVisibility = c.parse(entry)?;
    let template = match &r.path {
        Some(p) => Some(c.template("path", p)?),
        None => None,
    };
    let matcher = match (&r.path_contains, &template) {
        (Some(_), Some(_)) => {
            return Err(c.err("path_contains", "give path or path_contains, not both"))
        }
        (Some(text), None) => Matcher::Contains(text.clone()),
        (None, Some(t)) => Matcher::Path(t.clone()),
        (None, None) => Matcher::All,
    };
    let visible = match &r.visible {
        Json::Bool(true) => Visible::Yes,
        Json::Bool(false) => Visible::No,
        Json::String(s) if s == "owner" => {
            let (Some(t), Some(seg)) = (&template, &r.owner_segment) else {
                return Err(c.err(
                    "owner_segment",
                    "\"owner\" needs a path and an owner_segment",
                ));
            };
            let Some(index) = t.capture_index(seg) else {
                return Err(c.err(
                    "owner_segment",
                    format!("{{{seg}}} is not a capture of path"),
                ));
            };
            if t.to_pattern_text()
                .split('/')
                .skip(1)
                .take(index)
                .any(|s| s == "**")
            {
                return Err(c.err("owner_segment", "must come before any '**' in path"));
            }
            Visible::Owner {
                segment: index,
                public_sub: r.public_sub.clone(),
            }
        }
        Json::String(s) if s == "require_state_not_null" => {
            let Some(lookup) = &r.lookup else {
                return Err(c.err("lookup", "\"require_state_not_null\" needs a lookup"));
            };
            Visible::RequireState {
                lookup: Lookup::parse(lookup, template.as_ref()).map_err(|e| c.err("lookup", e))?,
            }
        }
        other => {
            return Err(c.err(
                "visible",
                format!("{other} is not true, false, \"owner\" or \"require_state_not_null\""),
            ))
        }
    };
    Ok(VisibilityRule { matcher, visible })
}

/// The first directory holding any `*.json` decides: exactly one is loaded; more than one
/// is ambiguous and none is (logged).
pub fn discover_in(dirs: &[&Path]) -> Option<PathBuf> {
    for dir in dirs {
        let Ok(entries) = std::fs::read_dir(dir) else {
            continue;
        };
        let mut found: Vec<PathBuf> = entries
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| p.is_file() && p.extension().is_some_and(|x| x == "json"))
            .collect();
        match found.len() {
            0 => continue,
            1 => return found.pop(),
            n => {
                tracing::warn!(dir = %dir.display(), files = n, "several app configs found; none loaded (use --app-config)");
                return None;
            }
        }
    }
    None
}

#[cfg(test)]
mod tests;
