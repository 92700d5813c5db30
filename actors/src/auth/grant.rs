//! What a session was granted at HELLO, and why a token was refused.

use std::sync::atomic::{AtomicBool, Ordering};

use super::scope::Scopes;

/// Which validator accepted the token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenKind {
    /// A `cpsk_` pre-shared key (users, guests, the admin token).
    PreShared,
    /// A `cap_` Ed25519 capability chain.
    Capability,
    /// An `ent_` token of a registered entity.
    Entity,
}

/// The rights of one authenticated session. Shared with the `Auth` actor, which flips
/// `revoked` when the token or entity is revoked so the session ends within a second.
#[derive(Debug)]
pub struct Grant {
    /// Who: user id, entity id, or the capability leaf's public key (hex).
    pub subject: String,
    /// Validator that accepted it.
    pub kind: TokenKind,
    /// What it may do.
    pub scopes: Scopes,
    /// Unix seconds after which the session ends with ERROR 302.
    pub expires_at: Option<u64>,
    revoked: AtomicBool,
}

impl Grant {
    /// A live grant.
    pub fn new(subject: String, kind: TokenKind, scopes: Scopes, expires_at: Option<u64>) -> Self {
        Self {
            subject,
            kind,
            scopes,
            expires_at,
            revoked: AtomicBool::new(false),
        }
    }

    /// Marks the grant revoked; its session closes at its next check.
    pub fn revoke(&self) {
        self.revoked.store(true, Ordering::Relaxed);
    }

    /// Has it been revoked?
    pub fn is_revoked(&self) -> bool {
        self.revoked.load(Ordering::Relaxed)
    }

    /// Has it expired at `now` (unix seconds)?
    pub fn is_expired(&self, now: u64) -> bool {
        self.expires_at.is_some_and(|e| now > e)
    }
}

/// Why a HELLO token was refused; each maps to the ERROR code of WIRE §10.1.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Denial {
    /// No token, and the relay requires one.
    #[error("Authentication required")]
    Required,
    /// Unknown, malformed, forged or revoked.
    #[error("Invalid token: {0}")]
    Invalid(String),
    /// Valid once, expired now.
    #[error("Token expired")]
    Expired,
    /// The auth service could not answer (database failure); fail closed.
    #[error("Authentication unavailable: {0}")]
    Unavailable(String),
}

impl Denial {
    /// The ERROR code sent before the connection is closed.
    pub fn code(&self) -> u16 {
        match self {
            Denial::Expired => 302,
            _ => 300,
        }
    }
}

/// Current unix time in seconds.
pub fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}
