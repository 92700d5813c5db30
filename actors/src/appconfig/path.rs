//! App-config path templates: `/chat/room/{roomId}/meta`, with `*` (one segment) and `**`
//! (any number of segments, also none). They differ from protocol patterns in the named
//! captures, which rules reuse in lookups (`/chat/room/{roomId}/admin/{session}`).

use std::collections::HashMap;

/// Named segments captured when a template matched an address.
pub type Captures = HashMap<String, String>;

/// Why a path template or lookup template is refused at load.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PathError {
    /// Templates are absolute, like addresses.
    #[error("must start with '/'")]
    NotAbsolute,
    /// `{` without a matching `}` filling the whole segment, or an empty name.
    #[error("segment {0:?}: a capture is a whole segment `{{name}}` with a name of letters, digits or '_'")]
    BadCapture(String),
    /// `*` inside a segment (`/a*`): only whole-segment wildcards are supported.
    #[error("segment {0:?}: '*' and '**' must be whole segments")]
    BadWildcard(String),
    /// The same name captured twice.
    #[error("capture {{{0}}} appears twice")]
    DuplicateCapture(String),
    /// A lookup uses a name the rule's path does not capture.
    #[error("{{{0}}} is neither {{session}} nor a capture of the rule's path")]
    UnknownCapture(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    Literal(String),
    Capture(String),
    One,
    Any,
}

/// A compiled path template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PathTemplate {
    text: String,
    segments: Vec<Segment>,
}

fn capture_name(segment: &str) -> Option<&str> {
    let name = segment.strip_prefix('{')?.strip_suffix('}')?;
    let ok = !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    ok.then_some(name)
}

impl PathTemplate {
    /// Compiles `text`, refusing malformed captures and partial wildcards.
    pub fn parse(text: &str) -> Result<Self, PathError> {
        let rest = text.strip_prefix('/').ok_or(PathError::NotAbsolute)?;
        let mut segments = Vec::new();
        let mut names: Vec<&str> = Vec::new();
        for s in rest.split('/').filter(|s| !s.is_empty()) {
            let segment = match s {
                "*" => Segment::One,
                "**" => Segment::Any,
                _ if s.contains('{') || s.contains('}') => {
                    let name = capture_name(s).ok_or_else(|| PathError::BadCapture(s.into()))?;
                    if names.contains(&name) {
                        return Err(PathError::DuplicateCapture(name.into()));
                    }
                    names.push(name);
                    Segment::Capture(name.into())
                }
                _ if s.contains('*') => return Err(PathError::BadWildcard(s.into())),
                _ => Segment::Literal(s.into()),
            };
            segments.push(segment);
        }
        Ok(Self {
            text: text.into(),
            segments,
        })
    }

    /// The template as written.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The names this template captures.
    pub fn capture_names(&self) -> impl Iterator<Item = &str> {
        self.segments.iter().filter_map(|s| match s {
            Segment::Capture(n) => Some(n.as_str()),
            _ => None,
        })
    }

    /// Index of the segment capturing `name`.
    pub fn capture_index(&self, name: &str) -> Option<usize> {
        self.segments
            .iter()
            .position(|s| matches!(s, Segment::Capture(n) if n == name))
    }

    /// The equivalent protocol pattern (captures become `*`), for settings keyed by
    /// patterns such as conflict strategies.
    pub fn to_pattern_text(&self) -> String {
        let mut out = String::new();
        for s in &self.segments {
            out.push('/');
            out.push_str(match s {
                Segment::Literal(l) => l,
                Segment::Capture(_) | Segment::One => "*",
                Segment::Any => "**",
            });
        }
        if out.is_empty() {
            out.push('/');
        }
        out
    }

    /// The captures if `address` matches.
    pub fn matches(&self, address: &str) -> Option<Captures> {
        let parts: Vec<&str> = address.split('/').filter(|s| !s.is_empty()).collect();
        let mut captures = Captures::new();
        match_from(&self.segments, &parts, &mut captures).then_some(captures)
    }
}

fn match_from(pattern: &[Segment], parts: &[&str], captures: &mut Captures) -> bool {
    let Some((first, rest)) = pattern.split_first() else {
        return parts.is_empty();
    };
    match first {
        Segment::Any => (0..=parts.len()).any(|skip| {
            let mut trial = captures.clone();
            let ok = match_from(rest, &parts[skip..], &mut trial);
            if ok {
                *captures = trial;
            }
            ok
        }),
        _ => {
            let Some((part, others)) = parts.split_first() else {
                return false;
            };
            match first {
                Segment::Literal(l) if l != part => return false,
                Segment::Capture(name) => {
                    captures.insert(name.clone(), (*part).to_string());
                }
                _ => {}
            }
            match_from(rest, others, captures)
        }
    }
}

/// A template for another address (`lookup`), checked at load to use only `{session}` and
/// captures its rule defines.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lookup(String);

impl Lookup {
    /// Checks `text` against the names `path` captures (`None`: no captures available).
    pub fn parse(text: &str, path: Option<&PathTemplate>) -> Result<Self, PathError> {
        if !text.starts_with('/') {
            return Err(PathError::NotAbsolute);
        }
        for s in text
            .split('/')
            .filter(|s| s.contains('{') || s.contains('}'))
        {
            let name = capture_name(s).ok_or_else(|| PathError::BadCapture(s.into()))?;
            let known = name == "session" || path.is_some_and(|p| p.capture_index(name).is_some());
            if !known {
                return Err(PathError::UnknownCapture(name.into()));
            }
        }
        Ok(Self(text.into()))
    }

    /// The address for this write: `{session}` first, then the captures. `None` when the
    /// template needs a subject and there is none.
    pub fn resolve(&self, captures: &Captures, subject: Option<&str>) -> Option<String> {
        let mut out = self.0.clone();
        if out.contains("{session}") {
            out = out.replace("{session}", subject?);
        }
        for (name, value) in captures {
            out = out.replace(&format!("{{{name}}}"), value);
        }
        Some(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn captures_wildcards_and_globstar() {
        let t = PathTemplate::parse("/chat/room/{roomId}/admin/{targetId}").expect("parses");
        let c = t.matches("/chat/room/r1/admin/bob").expect("matches");
        assert_eq!(c["roomId"], "r1");
        assert_eq!(c["targetId"], "bob");
        assert!(t.matches("/chat/room/r1/admin").is_none());
        assert!(t.matches("/chat/room/r1/admin/bob/x").is_none());
        let g = PathTemplate::parse("/chat/{u}/**/end").expect("parses");
        assert!(g.matches("/chat/a/end").is_some());
        assert!(g.matches("/chat/a/b/c/end").is_some());
        assert!(g.matches("/chat/a/b/c").is_none());
        assert!(PathTemplate::parse("/chat/**")
            .expect("parses")
            .matches("/chat")
            .is_some());
        assert!(PathTemplate::parse("/a/*/c")
            .expect("parses")
            .matches("/a/b/c")
            .is_some());
    }

    #[test]
    fn malformed_templates_are_refused() {
        assert_eq!(PathTemplate::parse("a/b"), Err(PathError::NotAbsolute));
        assert!(matches!(
            PathTemplate::parse("/a/{x"),
            Err(PathError::BadCapture(_))
        ));
        assert!(matches!(
            PathTemplate::parse("/a/x*"),
            Err(PathError::BadWildcard(_))
        ));
        assert!(matches!(
            PathTemplate::parse("/{x}/{x}"),
            Err(PathError::DuplicateCapture(_))
        ));
    }

    #[test]
    fn lookups_substitute_session_then_captures() {
        let t = PathTemplate::parse("/u/{targetId}/dms").expect("parses");
        let l = Lookup::parse("/u/{session}/friends/{targetId}", Some(&t)).expect("parses");
        let c = t.matches("/u/bob/dms").expect("matches");
        assert_eq!(
            l.resolve(&c, Some("alice")).as_deref(),
            Some("/u/alice/friends/bob")
        );
        assert_eq!(l.resolve(&c, None), None);
        assert_eq!(
            Lookup::parse("/u/{other}", Some(&t)),
            Err(PathError::UnknownCapture("other".into()))
        );
        assert_eq!(t.to_pattern_text(), "/u/*/dms");
    }
}
