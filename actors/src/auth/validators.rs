//! The token validators after CPSK (WIRE §10.1 chain: CPSK → capability → entity), chosen by
//! prefix.

use super::actor::AuthStartError;
use super::grant::{Denial, Grant};
use super::store::AuthStore;
use crate::config::AuthConfig;

/// Capability and entity validation.
pub struct Validators {}

impl Validators {
    /// Loads the trust anchors.
    pub fn load(_config: &AuthConfig) -> Result<Self, AuthStartError> {
        Ok(Self {})
    }

    /// Validates a non-CPSK token; the second value is the key that revokes it, if any.
    pub fn validate(
        &self,
        _token: &str,
        _store: &AuthStore,
    ) -> Result<(Grant, Option<String>), Denial> {
        Err(Denial::Invalid("Unrecognized token format".into()))
    }
}
