//! The token validators after CPSK (WIRE §10.1 chain: CPSK → capability → entity), chosen by
//! prefix: `cap_` chains checked against the trust anchors, `ent_` tokens against the entity
//! registry.

use super::actor::AuthStartError;
use super::cap::{CapToken, CapValidator};
use super::entity_token::EntityToken;
use super::grant::{unix_now, Denial, Grant, TokenKind};
use super::keys::{parse_trust_anchor_arg, public_key_hex};
use super::scope::{Action, Scope, Scopes};
use super::store::{AuthStore, EntityRecord, EntityStatus};
use crate::config::AuthConfig;

/// Capability and entity validation.
pub struct Validators {
    caps: Option<CapValidator>,
    /// Entity tokens older than this many seconds are expired (`None`: they never expire).
    entity_max_age: Option<u64>,
}

/// The keys under which a grant is filed for early revocation: `cap:<nonce>` of the token and
/// of each ancestor (revoking a parent revokes its whole subtree), or the entity id.
pub type RevocationKeys = Vec<String>;

impl Validators {
    /// Loads the trust anchors (files or hex keys); capability tokens are refused without any.
    pub fn load(config: &AuthConfig) -> Result<Self, AuthStartError> {
        let mut anchors = Vec::new();
        for arg in &config.trust_anchors {
            let (key, kind) = parse_trust_anchor_arg(arg)
                .map_err(|e| AuthStartError::TrustAnchor(format!("{arg}: {e}")))?;
            tracing::info!(anchor = %public_key_hex(&key), kind = kind.describe(), "trust anchor loaded");
            anchors.push(key);
        }
        let caps = (!anchors.is_empty())
            .then(|| CapValidator::new(anchors).with_max_depth(config.cap_max_depth));
        Ok(Self {
            caps,
            entity_max_age: config.entity_token_max_age.map(|d| d.as_secs()),
        })
    }

    /// The public keys capability chains must start at.
    pub fn anchors(&self) -> Vec<String> {
        self.caps
            .as_ref()
            .map(|c| c.anchors.iter().map(public_key_hex).collect())
            .unwrap_or_default()
    }

    /// Validates a non-CPSK token.
    pub fn validate(
        &self,
        token: &str,
        store: &AuthStore,
    ) -> Result<(Grant, RevocationKeys), Denial> {
        if token.starts_with("cap_") {
            let caps = self.caps.as_ref().ok_or_else(|| {
                Denial::Invalid("capability tokens are not accepted (no --trust-anchor)".into())
            })?;
            let grant = caps.validate(token, unix_now()).map_err(|e| {
                if e.is_expired() {
                    Denial::Expired
                } else {
                    Denial::Invalid(e.to_string())
                }
            })?;
            let decoded = CapToken::decode(token).map_err(|e| Denial::Invalid(e.to_string()))?;
            let nonces: Vec<&str> = std::iter::once(decoded.nonce.as_str())
                .chain(decoded.proofs.iter().filter_map(|p| p.nonce.as_deref()))
                .collect();
            if let Some(n) = store
                .revoked_nonce(&nonces)
                .map_err(|e| Denial::Unavailable(e.to_string()))?
            {
                let whose = if n == decoded.nonce {
                    "this token"
                } else {
                    "an ancestor"
                };
                return Err(Denial::Invalid(format!("capability revoked ({whose})")));
            }
            let keys = nonces.iter().map(|n| format!("cap:{n}")).collect();
            let grant = Grant::new(
                grant.subject,
                TokenKind::Capability,
                grant.scopes,
                Some(grant.expires_at),
            );
            return Ok((grant, keys));
        }
        if token.starts_with("ent_") {
            let parsed = EntityToken::parse(token).map_err(|e| Denial::Invalid(e.to_string()))?;
            let entity = store
                .entity(&parsed.entity_id)
                .map_err(|e| Denial::Unavailable(e.to_string()))?
                .ok_or_else(|| {
                    Denial::Invalid(format!("entity {} is not registered", parsed.entity_id))
                })?;
            if entity.status != EntityStatus::Active {
                return Err(Denial::Invalid(format!(
                    "entity {} is {}",
                    entity.id,
                    status_name(entity.status)
                )));
            }
            let key = ed25519_dalek::VerifyingKey::from_bytes(&entity.public_key)
                .map_err(|_| Denial::Invalid(format!("entity {} has an invalid key", entity.id)))?;
            parsed
                .verify(&key)
                .map_err(|e| Denial::Invalid(e.to_string()))?;
            if let Some(max) = self.entity_max_age {
                if unix_now().saturating_sub(parsed.timestamp) > max {
                    return Err(Denial::Expired);
                }
            }
            let grant = Grant::new(
                entity.id.clone(),
                TokenKind::Entity,
                entity_scopes(&entity),
                None,
            );
            return Ok((grant, vec![entity.id]));
        }
        Err(Denial::Invalid("no validator accepted the token".into()))
    }
}

/// An entity's grant: its scopes, or admin over each of its namespaces when it has none.
pub fn entity_scopes(entity: &EntityRecord) -> Scopes {
    if !entity.scopes.is_empty() {
        return Scopes::parse_lenient(&entity.scopes);
    }
    entity
        .namespaces
        .iter()
        .filter_map(|ns| {
            let ns = ns.trim_end_matches('/').trim_end_matches("/**");
            clasp_proto::Pattern::compile(&format!("{ns}/**")).ok()
        })
        .map(|p| Scope::new(Action::Admin, p))
        .collect()
}

/// Lower-case status name, as the REST API spells it.
pub fn status_name(status: EntityStatus) -> &'static str {
    match status {
        EntityStatus::Active => "active",
        EntityStatus::Inactive => "inactive",
        EntityStatus::Revoked => "revoked",
    }
}
