//! Patterns: the one matcher used for delivery, snapshots, scopes, QUERY and federation
//! namespaces (§9.2, §9.4 RECOMMENDED: live-delivery semantics everywhere).
//!
//! Grammar, segment by segment:
//! * a segment without `*` matches the same text exactly (`?`, `[..]`, `{..}` are literal);
//! * `*` matches exactly one segment, which may be empty (`/a/*` matches `/a/`);
//! * `**` matches zero or more segments (`/a/**` matches `/a`, `/a/b`, `/a/b/c`);
//! * a segment with `*` among other text is a glob over one segment: `*` any run of
//!   characters, `?` one character, `[abc]`/`[a-z]`/`[!a]` a class, `\x` the literal `x`.
//!
//! Patterns must be non-empty, start with `/`, and have no empty segment except the last.
//! In a pattern that contains `*`, the characters `{ } ( )` are reserved and rejected: the
//! reference router rejects such patterns too (§9.2), so no client relies on them.

use alloc::boxed::Box;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::fmt;

/// Longest pattern accepted, in segments; keeps matching cost bounded.
pub const MAX_SEGMENTS: usize = 128;

/// A compiled pattern. Compile once ([`Pattern::compile`]), match many times.
#[derive(Clone)]
pub struct Pattern {
    text: Arc<str>,
    segments: Box<[Segment]>,
}

/// Why a pattern is invalid (answered with ERROR 202 on SUBSCRIBE).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PatternError {
    /// The empty string.
    #[error("pattern is empty")]
    Empty,
    /// Patterns start with `/`.
    #[error("pattern must start with '/'")]
    NoLeadingSlash,
    /// `/a//b`: only the last segment may be empty.
    #[error("empty segment {0} (only the last segment may be empty)")]
    EmptySegment(usize),
    /// More than [`MAX_SEGMENTS`] segments.
    #[error("pattern has more than {MAX_SEGMENTS} segments")]
    TooManySegments,
    /// `{ } ( )` in a wildcard pattern.
    #[error("character {0:?} is reserved in wildcard patterns")]
    ReservedChar(char),
    /// `[` without `]`.
    #[error("unterminated character class in segment {0}")]
    UnterminatedClass(usize),
    /// A trailing `\`.
    #[error("dangling escape at the end of segment {0}")]
    DanglingEscape(usize),
    /// Longer than a wire string can carry.
    #[error("pattern is longer than 65535 bytes")]
    TooLong,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) enum Segment {
    Literal(Box<str>),
    /// `*`
    One,
    /// `**`
    Any,
    Glob(Glob),
}

/// A glob over the characters of one segment.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) struct Glob(Box<[GlobToken]>);

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
enum GlobToken {
    Char(char),
    AnyRun,
    AnyChar,
    Class {
        negated: bool,
        ranges: Box<[(char, char)]>,
    },
}

impl Pattern {
    /// Compiles `text`, reporting why it is invalid.
    pub fn compile(text: &str) -> Result<Self, PatternError> {
        if text.is_empty() {
            return Err(PatternError::Empty);
        }
        if !text.starts_with('/') {
            return Err(PatternError::NoLeadingSlash);
        }
        if text.len() > u16::MAX as usize {
            return Err(PatternError::TooLong);
        }
        let wildcard = text.contains('*');
        let raw: Vec<&str> = text[1..].split('/').collect();
        if raw.len() > MAX_SEGMENTS {
            return Err(PatternError::TooManySegments);
        }
        let mut segments = Vec::with_capacity(raw.len());
        for (i, seg) in raw.iter().enumerate() {
            if seg.is_empty() && i + 1 != raw.len() {
                return Err(PatternError::EmptySegment(i));
            }
            if wildcard {
                if let Some(c) = seg.chars().find(|c| matches!(c, '{' | '}' | '(' | ')')) {
                    return Err(PatternError::ReservedChar(c));
                }
            }
            let compiled = match *seg {
                "**" => Segment::Any,
                "*" => Segment::One,
                s if s.contains('*') => Segment::Glob(Glob::compile(s, i)?),
                s => Segment::Literal(s.into()),
            };
            // `**/**` matches exactly what `**` does; collapsing keeps matching linear.
            if compiled == Segment::Any && segments.last() == Some(&Segment::Any) {
                continue;
            }
            segments.push(compiled);
        }
        Ok(Self {
            text: Arc::from(text),
            segments: segments.into_boxed_slice(),
        })
    }

    /// The pattern as written.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// True when the pattern has no wildcard and so matches exactly one address.
    pub fn is_exact(&self) -> bool {
        self.segments
            .iter()
            .all(|s| matches!(s, Segment::Literal(_)))
    }

    /// The first segment when it is literal: such a pattern only matches addresses of that
    /// namespace, so it lives on one shard. `None` means it may match any namespace.
    pub fn namespace(&self) -> Option<&str> {
        match self.segments.first() {
            Some(Segment::Literal(s)) => Some(s),
            _ => None,
        }
    }

    pub(crate) fn segments(&self) -> &[Segment] {
        &self.segments
    }

    /// Is every address `other` matches also matched by `self`? Scopes and capability
    /// delegation need containment, not a match against one address: a `read:/a/**` scope
    /// allows subscribing `/a/x/*` but not `/**`. Sound, not complete: a glob covers another
    /// glob only when they are identical, so the answer errs towards "no".
    pub fn covers(&self, other: &Pattern) -> bool {
        let (s, o) = (&self.segments[..], &other.segments[..]);
        let width = o.len() + 1;
        // memo[i * width + j]: 0 unknown, 1 false, 2 true.
        let mut memo = alloc::vec![0u8; (s.len() + 1) * width];
        covers_from(s, o, 0, 0, width, &mut memo)
    }

    /// Could one address match both patterns? Federation refuses a namespace claim that
    /// overlaps another router's, since an address must have exactly one owner. Errs towards
    /// "yes": two globs in the same position are taken to overlap.
    pub fn overlaps(&self, other: &Pattern) -> bool {
        let (s, o) = (&self.segments[..], &other.segments[..]);
        let width = o.len() + 1;
        let mut memo = alloc::vec![0u8; (s.len() + 1) * width];
        overlaps_from(s, o, 0, 0, width, &mut memo)
    }

    /// Does `address` (any string starting with `/`) match?
    pub fn matches(&self, address: &str) -> bool {
        match address.strip_prefix('/') {
            Some(rest) => match_segments(&self.segments, rest),
            None => false,
        }
    }
}

/// Splits off the first segment of `rest` (the address after its leading `/`).
fn split_segment(rest: &str) -> (&str, Option<&str>) {
    match rest.find('/') {
        Some(i) => (&rest[..i], Some(&rest[i + 1..])),
        None => (rest, None),
    }
}

/// Segment matching with `**` as a star over segments: the classic two-pointer wildcard
/// algorithm (remember the last `**`, let it absorb one more segment on mismatch), which is
/// linear in practice and never exponential.
fn match_segments(pattern: &[Segment], address_rest: &str) -> bool {
    let mut p = 0;
    let mut rest = Some(address_rest);
    let mut star: Option<(usize, Option<&str>)> = None;
    loop {
        if let Some(Segment::Any) = pattern.get(p) {
            star = Some((p, rest));
            p += 1;
            continue;
        }
        if let (Some(seg), Some(r)) = (pattern.get(p), rest) {
            let (head, next) = split_segment(r);
            if seg.matches_one(head) {
                p += 1;
                rest = next;
                continue;
            }
        } else if p == pattern.len() && rest.is_none() {
            return true;
        } else if rest.is_none() {
            // Address exhausted: only `**` may remain, and those were skipped above.
            return false;
        }
        // Mismatch: let the last `**` absorb one more segment, if there is one.
        match star {
            Some((sp, Some(absorbed))) => {
                let (_, next) = split_segment(absorbed);
                star = Some((sp, next));
                rest = next;
                p = sp + 1;
            }
            _ => return false,
        }
    }
}

/// Does `s[i..]` cover `o[j..]`? Memoised over (i, j) so `**` chains stay polynomial.
fn covers_from(
    s: &[Segment],
    o: &[Segment],
    i: usize,
    j: usize,
    width: usize,
    memo: &mut [u8],
) -> bool {
    let slot = i * width + j;
    if memo[slot] != 0 {
        return memo[slot] == 2;
    }
    let result = match s.get(i) {
        None => j == o.len(),
        // `**` absorbs nothing more, or one more of other's segments (whatever its kind).
        Some(Segment::Any) => {
            covers_from(s, o, i + 1, j, width, memo)
                || (j < o.len() && covers_from(s, o, i, j + 1, width, memo))
        }
        Some(seg) => match o.get(j) {
            Some(other) => seg.covers_one(other) && covers_from(s, o, i + 1, j + 1, width, memo),
            None => false,
        },
    };
    memo[slot] = if result { 2 } else { 1 };
    result
}

/// Can `s[i..]` and `o[j..]` match one common rest of an address? Memoised over (i, j).
fn overlaps_from(
    s: &[Segment],
    o: &[Segment],
    i: usize,
    j: usize,
    width: usize,
    memo: &mut [u8],
) -> bool {
    let slot = i * width + j;
    if memo[slot] != 0 {
        return memo[slot] == 2;
    }
    let result = match (s.get(i), o.get(j)) {
        (None, None) => true,
        // `**` matches nothing more, or takes one more segment the other side also takes.
        (Some(Segment::Any), _) => {
            overlaps_from(s, o, i + 1, j, width, memo)
                || (j < o.len() && overlaps_from(s, o, i, j + 1, width, memo))
        }
        (_, Some(Segment::Any)) => {
            overlaps_from(s, o, i, j + 1, width, memo)
                || (i < s.len() && overlaps_from(s, o, i + 1, j, width, memo))
        }
        (Some(a), Some(b)) => a.meets_one(b) && overlaps_from(s, o, i + 1, j + 1, width, memo),
        _ => false,
    };
    memo[slot] = if result { 2 } else { 1 };
    result
}

impl Segment {
    /// Could one segment match both (neither is `**`)? Two globs are assumed to.
    fn meets_one(&self, other: &Segment) -> bool {
        match (self, other) {
            (Segment::Literal(a), Segment::Literal(b)) => a == b,
            (Segment::Glob(g), Segment::Literal(l)) | (Segment::Literal(l), Segment::Glob(g)) => {
                g.matches(l)
            }
            _ => true,
        }
    }

    /// Does this single-segment matcher accept every segment `other` accepts?
    fn covers_one(&self, other: &Segment) -> bool {
        match (self, other) {
            (_, Segment::Any) => matches!(self, Segment::Any),
            (Segment::Any | Segment::One, _) => true,
            (Segment::Literal(a), Segment::Literal(b)) => a == b,
            (Segment::Glob(g), Segment::Literal(b)) => g.matches(b),
            (Segment::Glob(a), Segment::Glob(b)) => a == b,
            _ => false,
        }
    }

    pub(crate) fn matches_one(&self, segment: &str) -> bool {
        match self {
            Segment::Literal(s) => **s == *segment,
            Segment::One | Segment::Any => true,
            Segment::Glob(g) => g.matches(segment),
        }
    }
}

impl Glob {
    fn compile(seg: &str, index: usize) -> Result<Self, PatternError> {
        let mut tokens = Vec::new();
        let mut chars = seg.chars();
        while let Some(c) = chars.next() {
            let token = match c {
                '*' => {
                    if tokens.last() == Some(&GlobToken::AnyRun) {
                        continue;
                    }
                    GlobToken::AnyRun
                }
                '?' => GlobToken::AnyChar,
                '\\' => GlobToken::Char(chars.next().ok_or(PatternError::DanglingEscape(index))?),
                '[' => {
                    let mut negated = false;
                    let mut ranges = Vec::new();
                    let mut first = true;
                    loop {
                        let c = chars.next().ok_or(PatternError::UnterminatedClass(index))?;
                        match c {
                            '!' | '^' if first => negated = true,
                            ']' if !first || !ranges.is_empty() => break,
                            _ => {
                                let lo = if c == '\\' {
                                    chars.next().ok_or(PatternError::UnterminatedClass(index))?
                                } else {
                                    c
                                };
                                let mut look = chars.clone();
                                if look.next() == Some('-')
                                    && !matches!(look.next(), Some(']') | None)
                                {
                                    chars.next();
                                    let hi = chars
                                        .next()
                                        .ok_or(PatternError::UnterminatedClass(index))?;
                                    ranges.push((lo, hi));
                                } else {
                                    ranges.push((lo, lo));
                                }
                            }
                        }
                        first = false;
                    }
                    GlobToken::Class {
                        negated,
                        ranges: ranges.into_boxed_slice(),
                    }
                }
                c => GlobToken::Char(c),
            };
            tokens.push(token);
        }
        Ok(Self(tokens.into_boxed_slice()))
    }

    /// Two-pointer wildcard match over the characters of one segment.
    pub(crate) fn matches(&self, segment: &str) -> bool {
        let tokens = &self.0;
        let text: &str = segment;
        let mut t = 0usize; // token index
        let mut s = 0usize; // byte offset into text
        let mut star: Option<(usize, usize)> = None;
        loop {
            if let Some(GlobToken::AnyRun) = tokens.get(t) {
                star = Some((t, s));
                t += 1;
                continue;
            }
            let next_char = text[s..].chars().next();
            if let (Some(tok), Some(c)) = (tokens.get(t), next_char) {
                if tok.matches_char(c) {
                    t += 1;
                    s += c.len_utf8();
                    continue;
                }
            } else if t == tokens.len() && next_char.is_none() {
                return true;
            } else if next_char.is_none() {
                return false;
            }
            match star {
                Some((st, ss)) => match text[ss..].chars().next() {
                    Some(c) => {
                        star = Some((st, ss + c.len_utf8()));
                        s = ss + c.len_utf8();
                        t = st + 1;
                    }
                    None => return false,
                },
                None => return false,
            }
        }
    }
}

impl GlobToken {
    fn matches_char(&self, c: char) -> bool {
        match self {
            GlobToken::Char(x) => *x == c,
            GlobToken::AnyChar => true,
            GlobToken::AnyRun => true,
            GlobToken::Class { negated, ranges } => {
                ranges.iter().any(|(lo, hi)| (*lo..=*hi).contains(&c)) != *negated
            }
        }
    }
}

impl PartialEq for Pattern {
    fn eq(&self, other: &Self) -> bool {
        self.text == other.text
    }
}
impl Eq for Pattern {}

impl core::hash::Hash for Pattern {
    fn hash<H: core::hash::Hasher>(&self, state: &mut H) {
        self.text.hash(state)
    }
}

impl fmt::Debug for Pattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Pattern({:?})", &*self.text)
    }
}

impl fmt::Display for Pattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl core::str::FromStr for Pattern {
    type Err = PatternError;
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Self::compile(text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(p: &str, a: &str) -> bool {
        Pattern::compile(p).expect("valid pattern").matches(a)
    }

    #[test]
    fn globstar_zero_or_more() {
        assert!(m("/a/**", "/a"));
        assert!(m("/a/**/c", "/a/c"));
        assert!(m("/a/**/c", "/a/b/d/c"));
        assert!(!m("/a/**/c", "/a/b/c/d"));
        assert!(m("/**", "/"));
        assert!(m("/a/**/b/**", "/a/x/b/y"));
    }

    #[test]
    fn many_globstars_stay_fast() {
        let p = Pattern::compile("/**/a/**/a/**/a/**/a/**/a/**/b").expect("valid");
        let addr: alloc::string::String = std::iter::repeat_n("/a", 120).collect();
        assert!(!p.matches(&addr));
    }

    #[test]
    fn glob_segments() {
        assert!(m("/a/[bc]*", "/a/c"));
        assert!(m("/a/\\*", "/a/*"));
        assert!(!m("/a/\\*", "/a/x"));
        assert!(m("/a/x?z*", "/a/xyz"));
        assert!(m("/a/[!b]*", "/a/c"));
        assert!(!m("/a/[!b]*", "/a/b"));
        assert!(m("/a/[a-c]1*", "/a/b1"));
    }

    #[test]
    fn errors() {
        assert_eq!(Pattern::compile("").unwrap_err(), PatternError::Empty);
        assert_eq!(
            Pattern::compile("nope").unwrap_err(),
            PatternError::NoLeadingSlash
        );
        assert_eq!(
            Pattern::compile("/a//b").unwrap_err(),
            PatternError::EmptySegment(1)
        );
        assert_eq!(
            Pattern::compile("/a/[b*").unwrap_err(),
            PatternError::UnterminatedClass(1)
        );
        assert_eq!(
            Pattern::compile("/a/b*\\").unwrap_err(),
            PatternError::DanglingEscape(1)
        );
        assert_eq!(
            Pattern::compile("/a/{b,c}/*").unwrap_err(),
            PatternError::ReservedChar('{')
        );
    }

    fn overlap(a: &str, b: &str) -> bool {
        let (a, b) = (
            Pattern::compile(a).expect("valid"),
            Pattern::compile(b).expect("valid"),
        );
        let both = a.overlaps(&b);
        assert_eq!(both, b.overlaps(&a), "overlap is symmetric");
        both
    }

    #[test]
    fn overlap_is_whether_one_address_can_match_both() {
        assert!(overlap("/site-a/**", "/site-a/**"));
        assert!(overlap("/**", "/site-a/x"));
        assert!(overlap("/site-a/**", "/site-a"));
        assert!(overlap("/site-a/**", "/*/x"));
        assert!(overlap("/a/*/c", "/a/b/*"));
        assert!(overlap("/a/**/z", "/a/b/**"));
        assert!(overlap("/a/lig*", "/a/light"));
        assert!(overlap("/a/x*", "/a/*y"), "two globs are assumed to meet");
        assert!(!overlap("/site-a/**", "/site-b/**"));
        assert!(!overlap("/site-a/x", "/site-a/y"));
        assert!(!overlap("/a/*", "/a/b/c"));
        assert!(!overlap("/a/lig*", "/a/dimmer"));
        assert!(!overlap("/a/**/z", "/a/b/y"));
    }

    fn covers(parent: &str, child: &str) -> bool {
        let p = Pattern::compile(parent).expect("valid parent");
        p.covers(&Pattern::compile(child).expect("valid child"))
    }

    #[test]
    fn containment_is_segment_wise() {
        assert!(covers("/**", "/**"));
        assert!(covers("/**", "/a/*/b"));
        assert!(covers("/a/**", "/a/**"));
        assert!(covers("/a/**", "/a"));
        assert!(covers("/a/**", "/a/x/*"));
        assert!(covers("/a/*", "/a/x"));
        assert!(covers("/a/*", "/a/*"));
        assert!(covers("/a/*/c", "/a/b/c"));
        assert!(covers("/a/b*", "/a/bcd"));
        assert!(covers("/a/b*", "/a/b*"));
        assert!(covers("/**/c", "/a/b/c"));
        assert!(!covers("/a/**", "/**"));
        assert!(!covers("/a/**", "/b"));
        assert!(!covers("/a/*", "/a/**"));
        assert!(!covers("/a/*", "/a/b/c"));
        assert!(!covers("/a/x", "/a/*"));
        assert!(!covers("/a/b*", "/a/*"));
        assert!(!covers("/a/b*", "/a/c*"));
        assert!(!covers("/**/c", "/a/**"));
        assert!(!covers("/a", "/a/b"));
    }

    #[test]
    fn containment_agrees_with_matching() {
        // Wherever `covers` says yes, every sample address the child matches, the parent matches.
        let patterns = [
            "/**", "/a/**", "/a/*", "/a/*/c", "/a/b", "/a/b*", "/*/b/**", "/a/**/c", "/a/",
        ];
        let addresses = [
            "/a", "/a/b", "/a/b/c", "/a/bc", "/x/b/y", "/a/", "/a/x/y/c", "/b",
        ];
        for parent in patterns {
            for child in patterns {
                if covers(parent, child) {
                    for addr in addresses {
                        if m(child, addr) {
                            assert!(m(parent, addr), "{parent} covers {child} but not {addr}");
                        }
                    }
                }
            }
        }
    }
}
