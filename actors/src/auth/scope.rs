//! Scopes (`action:pattern`, WIRE §10.4): what an authenticated session may read and write.
//!
//! One hierarchy everywhere (FEATURES AU-2 target): admin ⊇ write ⊇ read, so a write scope also
//! lets its holder read and subscribe. Patterns are the protocol crate's one matcher.

use std::fmt;
use std::str::FromStr;

use clasp_proto::{Pattern, PatternError};

/// What a scope allows, ordered so that a greater action implies every lesser one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Action {
    /// GET, SUBSCRIBE, REPLAY, and receiving values.
    Read,
    /// SET, PUBLISH, BUNDLE members; implies read.
    Write,
    /// Everything, including the relay's admin APIs when the pattern is `/**`.
    Admin,
}

impl Action {
    /// The canonical spelling used when scopes are printed or stored.
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Read => "read",
            Action::Write => "write",
            Action::Admin => "admin",
        }
    }
}

/// Why a scope string was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScopeError {
    /// No `:` between action and pattern.
    #[error("scope {0:?} is not action:pattern")]
    Syntax(String),
    /// The action is not read/r, write/w, admin/a/*.
    #[error("unknown action {0:?} in scope (read, write or admin)")]
    UnknownAction(String),
    /// The pattern does not compile.
    #[error("invalid pattern in scope {scope:?}: {source}")]
    Pattern {
        /// The scope as given.
        scope: String,
        /// Why the pattern is invalid.
        source: PatternError,
    },
}

/// One `action:pattern` grant.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Scope {
    /// The greatest action granted.
    pub action: Action,
    /// Where it is granted.
    pub pattern: Pattern,
}

impl Scope {
    /// A scope from its parts.
    pub fn new(action: Action, pattern: Pattern) -> Self {
        Self { action, pattern }
    }

    /// `admin:/**`, the grant of the admin token.
    pub fn admin_all() -> Self {
        Self::new(Action::Admin, Self::everything())
    }

    fn everything() -> Pattern {
        // `/**` is a valid pattern; compiling it cannot fail.
        Pattern::compile("/**").unwrap_or_else(|_| unreachable!("/** is a valid pattern"))
    }

    /// Does this grant contain `child` (a greater-or-equal action over a covering pattern)?
    /// Used for delegation: a child scope may only narrow its parent.
    pub fn contains(&self, child: &Scope) -> bool {
        self.action >= child.action && self.pattern.covers(&child.pattern)
    }
}

impl FromStr for Scope {
    type Err = ScopeError;

    fn from_str(text: &str) -> Result<Self, ScopeError> {
        let text = text.trim();
        let (action, pattern) = text
            .split_once(':')
            .ok_or_else(|| ScopeError::Syntax(text.to_owned()))?;
        let action = match action.to_ascii_lowercase().as_str() {
            "read" | "r" => Action::Read,
            "write" | "w" => Action::Write,
            "admin" | "a" | "*" => Action::Admin,
            other => return Err(ScopeError::UnknownAction(other.to_owned())),
        };
        let pattern = Pattern::compile(pattern).map_err(|source| ScopeError::Pattern {
            scope: text.to_owned(),
            source,
        })?;
        Ok(Self { action, pattern })
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.action.as_str(), self.pattern.as_str())
    }
}

impl serde::Serialize for Scope {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for Scope {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// The grants of one session or token.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Scopes(Vec<Scope>);

impl Scopes {
    /// A set from parsed scopes.
    pub fn new(scopes: Vec<Scope>) -> Self {
        Self(scopes)
    }

    /// Parses each string strictly: the first bad one is the error (flags, REST requests).
    pub fn parse_all<S: AsRef<str>>(texts: &[S]) -> Result<Self, ScopeError> {
        texts
            .iter()
            .map(|t| t.as_ref().parse())
            .collect::<Result<Vec<_>, _>>()
            .map(Self)
    }

    /// Parses a comma-separated list (CLI and config files).
    pub fn parse_list(text: &str) -> Result<Self, ScopeError> {
        let parts: Vec<&str> = text.split(',').filter(|s| !s.trim().is_empty()).collect();
        Self::parse_all(&parts)
    }

    /// Parses what a token carries: unknown actions are dropped, as WIRE §10.3 says, so a
    /// token never gains anything from a scope this relay does not understand.
    pub fn parse_lenient<S: AsRef<str>>(texts: &[S]) -> Self {
        Self(
            texts
                .iter()
                .filter_map(|t| t.as_ref().parse().ok())
                .collect(),
        )
    }

    /// The grants.
    pub fn iter(&self) -> impl Iterator<Item = &Scope> {
        self.0.iter()
    }

    /// No grant at all.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The grants as strings, for JSON answers and storage.
    pub fn to_strings(&self) -> Vec<String> {
        self.0.iter().map(ToString::to_string).collect()
    }

    /// May the holder do `action` on `address`?
    pub fn allows(&self, action: Action, address: &str) -> bool {
        self.0
            .iter()
            .any(|s| s.action >= action && s.pattern.matches(address))
    }

    /// May the holder subscribe to (or replay) `pattern`? One scope must cover the whole
    /// pattern, so nothing the subscription could deliver is outside the grant.
    pub fn allows_pattern(&self, action: Action, pattern: &Pattern) -> bool {
        self.0
            .iter()
            .any(|s| s.action >= action && s.pattern.covers(pattern))
    }

    /// Is every grant of `child` contained in one of ours? (Delegation only narrows.)
    pub fn contains_all(&self, child: &Scopes) -> bool {
        child.0.iter().all(|c| self.0.iter().any(|p| p.contains(c)))
    }

    /// Holds `admin:/**`: may use the relay's admin APIs.
    pub fn is_admin(&self) -> bool {
        let all = Scope::everything();
        self.0
            .iter()
            .any(|s| s.action == Action::Admin && s.pattern.covers(&all))
    }
}

impl FromIterator<Scope> for Scopes {
    fn from_iter<I: IntoIterator<Item = Scope>>(iter: I) -> Self {
        Self(iter.into_iter().collect())
    }
}

impl fmt::Display for Scopes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, s) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{s}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scopes(list: &str) -> Scopes {
        Scopes::parse_list(list).expect("valid scopes")
    }

    fn pattern(p: &str) -> Pattern {
        Pattern::compile(p).expect("valid pattern")
    }

    #[test]
    fn parses_every_spelling() {
        for (text, action) in [
            ("read:/a", Action::Read),
            ("R:/a", Action::Read),
            ("w:/a", Action::Write),
            ("WRITE:/a", Action::Write),
            ("a:/a", Action::Admin),
            ("*:/a", Action::Admin),
        ] {
            assert_eq!(text.parse::<Scope>().expect(text).action, action);
        }
        assert!(matches!(
            "emit:/a".parse::<Scope>(),
            Err(ScopeError::UnknownAction(_))
        ));
        assert!(matches!(
            "read".parse::<Scope>(),
            Err(ScopeError::Syntax(_))
        ));
        assert!(matches!(
            "read:a".parse::<Scope>(),
            Err(ScopeError::Pattern { .. })
        ));
        assert_eq!(
            Scopes::parse_lenient(&["emit:/a", "read:/b"]).to_strings(),
            ["read:/b"]
        );
    }

    #[test]
    fn hierarchy_holds_everywhere() {
        let s = scopes("read:/**,write:/app/alice/**");
        assert!(s.allows(Action::Read, "/admin/x"));
        assert!(!s.allows(Action::Write, "/admin/x"));
        assert!(s.allows(Action::Write, "/app/alice/x"));
        let w = scopes("write:/a/**");
        assert!(w.allows_pattern(Action::Read, &pattern("/a/**")));
        assert!(!w.allows_pattern(Action::Read, &pattern("/**")));
        assert!(scopes("admin:/**").allows_pattern(Action::Read, &pattern("/**")));
        assert!(scopes("admin:/**").is_admin());
        assert!(!scopes("admin:/a/**").is_admin());
    }

    #[test]
    fn delegation_only_narrows() {
        let parent = scopes("write:/lights/**");
        assert!(parent.contains_all(&scopes("read:/lights/stage/*")));
        assert!(parent.contains_all(&scopes("write:/lights/a")));
        assert!(!parent.contains_all(&scopes("admin:/lights/**")));
        assert!(!parent.contains_all(&scopes("read:/**")));
        assert!(!parent.contains_all(&scopes("read:/lights/a,read:/sound/a")));
    }
}
