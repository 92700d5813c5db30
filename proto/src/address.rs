//! Addresses: where a param lives or a signal is sent (§9.1).

use alloc::sync::Arc;
use core::borrow::Borrow;
use core::fmt;

/// A validated address such as `/lights/zone1/brightness`.
///
/// Upstream routes any string; we require what every official client sends and what the
/// segment matcher needs: a leading `/`. Everything else upstream accepts is kept (case,
/// trailing `/`, empty segments, any UTF-8). Cloning is a reference-count bump, because an
/// address is copied into state, indexes and every delivery.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Address(Arc<str>);

/// Why a string is not an [`Address`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AddressError {
    /// The empty string.
    #[error("address is empty")]
    Empty,
    /// Addresses start with `/`.
    #[error("address must start with '/'")]
    NoLeadingSlash,
    /// Longer than a wire string can carry.
    #[error("address is {0} bytes long (max 65535)")]
    TooLong(usize),
}

impl Address {
    /// Validates and wraps `text`.
    pub fn parse(text: &str) -> Result<Self, AddressError> {
        Self::check(text)?;
        Ok(Self(Arc::from(text)))
    }

    /// Validates and wraps an already shared string without copying it (recovery decodes
    /// a million of them straight into `Arc<str>`).
    pub fn from_shared(text: Arc<str>) -> Result<Self, AddressError> {
        Self::check(&text)?;
        Ok(Self(text))
    }

    pub(crate) fn check(text: &str) -> Result<(), AddressError> {
        if text.is_empty() {
            Err(AddressError::Empty)
        } else if !text.starts_with('/') {
            Err(AddressError::NoLeadingSlash)
        } else if text.len() > u16::MAX as usize {
            Err(AddressError::TooLong(text.len()))
        } else {
            Ok(())
        }
    }

    /// The shared text, for keeping the address elsewhere without copying it.
    pub fn shared(&self) -> Arc<str> {
        self.0.clone()
    }

    /// The address text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The segments after the leading `/` (`/a/b` gives `a`, `b`; `/` gives one empty segment).
    pub fn segments(&self) -> core::str::Split<'_, char> {
        self.0[1..].split('/')
    }

    /// The first segment: the namespace that decides which shard owns the address.
    pub fn namespace(&self) -> &str {
        let rest = &self.0[1..];
        rest.split('/').next().unwrap_or(rest)
    }
}

impl fmt::Display for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&*self.0, f)
    }
}

impl Borrow<str> for Address {
    fn borrow(&self) -> &str {
        &self.0
    }
}

impl AsRef<str> for Address {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl TryFrom<&str> for Address {
    type Error = AddressError;
    fn try_from(text: &str) -> Result<Self, Self::Error> {
        Self::parse(text)
    }
}

impl core::str::FromStr for Address {
    type Err = AddressError;
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Self::parse(text)
    }
}
