//! What a session may see of stored values (FEATURES AC-4, AC-5): fields redacted from maps
//! (every matching transform applies) and entries hidden by the first matching visibility
//! rule. Applied by sessions to snapshots, GET answers and live deliveries alike.

use clasp_proto::Value;

use super::path::{Lookup, PathTemplate};

/// `snapshot_transforms[i]`: remove fields from map values under `path`.
#[derive(Debug, Clone)]
pub struct Transform {
    /// Where.
    pub path: PathTemplate,
    /// Map keys removed before a client sees the value.
    pub redact_fields: Vec<String>,
}

/// Which addresses a visibility rule covers.
#[derive(Debug, Clone)]
pub enum Matcher {
    /// Every address containing the text.
    Contains(String),
    /// Addresses matching the template.
    Path(PathTemplate),
    /// Every address (a rule with neither `path` nor `path_contains`).
    All,
}

/// A visibility verdict as configured.
#[derive(Debug, Clone)]
pub enum Visible {
    /// `true`.
    Yes,
    /// `false`.
    No,
    /// `"owner"`: only the user named by the capture at `segment` (its index among the
    /// address segments), except below `public_sub`.
    Owner {
        /// Segment index of the owner in the address.
        segment: usize,
        /// Sub-path visible to everyone (`profile`, `a/b`).
        public_sub: Option<String>,
    },
    /// `"require_state_not_null"`: only if something non-null is stored at `lookup`.
    RequireState {
        /// Address template.
        lookup: Lookup,
    },
}

/// `snapshot_visibility[i]`.
#[derive(Debug, Clone)]
pub struct VisibilityRule {
    /// Which addresses.
    pub matcher: Matcher,
    /// What happens to them.
    pub visible: Visible,
}

/// Whether one entry reaches one session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Deliver it.
    Show,
    /// Drop it.
    Hide,
    /// Deliver it only if something non-null is stored at this address.
    IfPresent(String),
}

impl VisibilityRule {
    fn decide(&self, address: &str, subject: Option<&str>) -> Option<Decision> {
        let captures = match &self.matcher {
            Matcher::Contains(text) if !address.contains(text.as_str()) => return None,
            Matcher::Path(p) => p.matches(address)?,
            _ => Default::default(),
        };
        Some(match &self.visible {
            Visible::Yes => Decision::Show,
            Visible::No => Decision::Hide,
            Visible::Owner {
                segment,
                public_sub,
            } => {
                let parts: Vec<&str> = address.split('/').filter(|s| !s.is_empty()).collect();
                let owner = parts.get(*segment).copied();
                if owner.is_some() && owner == subject {
                    return Some(Decision::Show);
                }
                let rest = parts.get(segment + 1..).map(|r| r.join("/"));
                let public = match (public_sub, rest) {
                    (Some(sub), Some(rest)) => rest == *sub || rest.starts_with(&format!("{sub}/")),
                    _ => false,
                };
                if public {
                    Decision::Show
                } else {
                    Decision::Hide
                }
            }
            Visible::RequireState { lookup } => match lookup.resolve(&captures, subject) {
                Some(at) => Decision::IfPresent(at),
                None => Decision::Hide,
            },
        })
    }
}

/// The first matching rule's decision; visible when none matches.
pub fn decide(rules: &[VisibilityRule], address: &str, subject: Option<&str>) -> Decision {
    rules
        .iter()
        .find_map(|r| r.decide(address, subject))
        .unwrap_or(Decision::Show)
}

/// Does any transform touch `address`?
pub fn redacts(transforms: &[Transform], address: &str) -> bool {
    transforms
        .iter()
        .any(|t| !t.redact_fields.is_empty() && t.path.matches(address).is_some())
}

/// Removes every matching transform's fields from a map value; other values are untouched.
pub fn redact(transforms: &[Transform], address: &str, value: &mut Value) {
    let Value::Map(entries) = value else { return };
    for t in transforms {
        if t.path.matches(address).is_some() {
            entries.retain(|(k, _)| !t.redact_fields.iter().any(|f| f == k));
        }
    }
}
