//! Which DMX universes a bridge handles (`--universes 0-15,20`): frames for any other
//! universe are ignored, and CLASP writes to one are not sent.

use std::fmt;
use std::str::FromStr;

use crate::BridgeError;

/// A set of universes as inclusive ranges, written `0-15,20,100-103`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UniverseSet(Vec<(u16, u16)>);

impl UniverseSet {
    /// The universes `first..=last`.
    pub fn range(first: u16, last: u16) -> Self {
        UniverseSet(vec![(first.min(last), first.max(last))])
    }

    /// Whether `universe` is in the set.
    pub fn contains(&self, universe: u16) -> bool {
        self.0.iter().any(|(a, b)| (*a..=*b).contains(&universe))
    }

    /// Refuses universes outside `min..=max` (the protocol's own range).
    pub fn check_within(&self, min: u16, max: u16) -> Result<(), BridgeError> {
        match self.0.iter().find(|(a, b)| *a < min || *b > max) {
            Some((a, b)) => Err(BridgeError::config(
                "universes",
                format!("{a}-{b} is outside {min}-{max}"),
            )),
            None => Ok(()),
        }
    }
}

impl FromStr for UniverseSet {
    type Err = BridgeError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = |why: String| BridgeError::config("universes", format!("{s:?}: {why}"));
        let mut ranges = Vec::new();
        for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (a, b) = part.split_once('-').unwrap_or((part, part));
            let parse = |n: &str| {
                n.trim()
                    .parse::<u16>()
                    .map_err(|e| bad(format!("{n:?}: {e}")))
            };
            let (a, b) = (parse(a)?, parse(b)?);
            if a > b {
                return Err(bad(format!("{a}-{b} runs backwards")));
            }
            ranges.push((a, b));
        }
        if ranges.is_empty() {
            return Err(bad("no universe".into()));
        }
        Ok(UniverseSet(ranges))
    }
}

impl fmt::Display for UniverseSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts: Vec<String> = self
            .0
            .iter()
            .map(|(a, b)| {
                if a == b {
                    a.to_string()
                } else {
                    format!("{a}-{b}")
                }
            })
            .collect();
        f.write_str(&parts.join(","))
    }
}

impl<'de> serde::Deserialize<'de> for UniverseSet {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_lists_of_ranges() {
        let set: UniverseSet = "0-15, 20,100-101".parse().unwrap();
        assert!(set.contains(0) && set.contains(15) && set.contains(20) && set.contains(101));
        assert!(!set.contains(16) && !set.contains(99) && !set.contains(102));
        assert_eq!(set.to_string(), "0-15,20,100-101");
        for bad in ["", "a", "5-1", "1-70000", "-"] {
            assert!(bad.parse::<UniverseSet>().is_err(), "{bad}");
        }
        assert!(set.check_within(0, 32767).is_ok());
        assert!(set.check_within(1, 63999).is_err());
    }
}
