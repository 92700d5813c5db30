//! A bridge's address prefix (`/osc`, `/osc/stage`, or none), so several instances of one
//! protocol can run side by side and each sends out only its own subtree (FEATURES BR-3).

use std::fmt;
use std::str::FromStr;

use clasp_proto::Address;

use crate::BridgeError;

/// A normalised prefix: empty (no prefix) or `/a/b` with no trailing slash.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct Namespace(String);

impl Namespace {
    /// No prefix: protocol paths are CLASP addresses as they are (HTTP, WebSocket JSON).
    pub fn none() -> Self {
        Namespace(String::new())
    }

    /// The prefix as written in addresses (`""` for none).
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The CLASP address of a protocol path: `/synth/vol` or `synth/vol` under `/osc` is
    /// `/osc/synth/vol`.
    pub fn address(&self, path: &str) -> Result<Address, clasp_proto::AddressError> {
        let path = path.strip_prefix('/').unwrap_or(path);
        Address::parse(&format!("{}/{}", self.0, path))
    }

    /// The protocol path of a CLASP address under this prefix, with its leading `/`
    /// (`/osc/synth/vol` → `/synth/vol`); `None` when the address is outside it.
    pub fn strip<'a>(&self, address: &'a str) -> Option<&'a str> {
        if self.0.is_empty() {
            return Some(address);
        }
        let rest = address.strip_prefix(self.0.as_str())?;
        rest.starts_with('/').then_some(rest)
    }

    /// The pattern that covers the whole subtree (`/osc/**`; `/**` for none).
    pub fn subtree(&self) -> String {
        format!("{}/**", self.0)
    }
}

impl FromStr for Namespace {
    type Err = BridgeError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let trimmed = s.trim_end_matches('/');
        if trimmed.is_empty() {
            return Ok(Namespace::none());
        }
        let address = Address::parse(trimmed)
            .map_err(|e| BridgeError::config("namespace", format!("{s:?}: {e}")))?;
        if address.as_str().contains(['*', '{', '}']) {
            return Err(BridgeError::config(
                "namespace",
                format!("{s:?}: a namespace is a plain address, not a pattern"),
            ));
        }
        Ok(Namespace(address.as_str().to_string()))
    }
}

impl fmt::Display for Namespace {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.0.is_empty() { "/" } else { &self.0 })
    }
}

impl<'de> serde::Deserialize<'de> for Namespace {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_both_ways() {
        let ns: Namespace = "/osc/stage/".parse().unwrap();
        assert_eq!(
            ns.address("/synth/vol").unwrap().as_str(),
            "/osc/stage/synth/vol"
        );
        assert_eq!(ns.address("a/b").unwrap().as_str(), "/osc/stage/a/b");
        assert_eq!(ns.strip("/osc/stage/synth/vol"), Some("/synth/vol"));
        assert_eq!(ns.strip("/osc/stagehand/x"), None);
        assert_eq!(ns.strip("/osc/foh/x"), None);
        assert_eq!(ns.subtree(), "/osc/stage/**");
    }

    #[test]
    fn none_is_identity() {
        let ns: Namespace = "".parse().unwrap();
        assert_eq!(ns.address("/a").unwrap().as_str(), "/a");
        assert_eq!(ns.strip("/a/b"), Some("/a/b"));
        assert_eq!(ns.subtree(), "/**");
    }

    #[test]
    fn refuses_patterns_and_garbage() {
        assert!("/osc/*".parse::<Namespace>().is_err());
        assert!("osc".parse::<Namespace>().is_err());
    }
}
