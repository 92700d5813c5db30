//! Who is calling and what they may do. On the relay's port with auth on, the bearer is a
//! CLASP token checked by the relay's `Auth` actor, and its scopes decide per address (read
//! for GET, snapshot and subscribe; write for PUT, DELETE and emit). Standalone, an optional
//! static `--access-token` guards the whole API.

use std::sync::Arc;

use actix_web::http::header;
use actix_web::HttpRequest;
use clasp_actors::auth::{Action, Denial, Grant};
use clasp_actors::link::RouterLink;

use super::errors::ApiError;

/// How requests are admitted.
#[derive(Debug, Clone)]
pub enum Gate {
    /// Whatever the relay requires: CLASP tokens when it runs with auth, nothing otherwise.
    Relay,
    /// A static bearer token (standalone `--access-token`).
    Static(Arc<str>),
    /// No check (standalone without `--access-token`).
    Open,
}

/// An admitted caller.
#[derive(Debug, Clone, Default)]
pub struct Caller {
    /// The validated CLASP token, when the relay requires one.
    pub grant: Option<Arc<Grant>>,
}

impl Caller {
    /// Whether the caller may do `action` on `address` (always, without a grant).
    pub fn may(&self, action: Action, address: &str) -> bool {
        self.grant
            .as_ref()
            .is_none_or(|g| g.scopes.allows(action, address))
    }

    /// 403 unless the caller may do `action` on `address`.
    pub fn require(&self, action: Action, address: &str) -> Result<(), ApiError> {
        if self.may(action, address) {
            Ok(())
        } else {
            Err(ApiError::Forbidden(format!(
                "{} access to {address} not granted",
                action.as_str()
            )))
        }
    }

    /// The writer id recorded for this caller's writes: `http:<token subject>`, or `None`
    /// for the link's own (`link:http`).
    pub fn writer(&self) -> Option<String> {
        self.grant.as_ref().map(|g| format!("http:{}", g.subject))
    }
}

/// The bearer token of a request: `Authorization: Bearer T`, or `?access_token=T` (browsers'
/// `EventSource` cannot set headers).
fn bearer(req: &HttpRequest) -> Option<String> {
    if let Some(value) = req.headers().get(header::AUTHORIZATION) {
        let text = value.to_str().ok()?.trim();
        let (scheme, token) = text.split_once(' ')?;
        return scheme
            .eq_ignore_ascii_case("bearer")
            .then(|| token.trim().to_string());
    }
    req.query_string()
        .split('&')
        .find_map(|kv| kv.strip_prefix("access_token="))
        .map(|t| t.to_string())
}

/// Equal without an early exit, so the time taken does not reveal a prefix of the token.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Admits or refuses a request (401 without or with a bad token; 503 when auth is down).
pub async fn admit(req: &HttpRequest, gate: &Gate, link: &RouterLink) -> Result<Caller, ApiError> {
    match gate {
        Gate::Open => Ok(Caller::default()),
        Gate::Static(expected) => match bearer(req) {
            Some(t) if same(t.as_bytes(), expected.as_bytes()) => Ok(Caller::default()),
            Some(_) => Err(ApiError::Unauthorized("Invalid token".into())),
            None => Err(ApiError::Unauthorized("Authentication required".into())),
        },
        Gate::Relay => {
            if !link.requires_token() {
                return Ok(Caller::default());
            }
            let Some(token) = bearer(req).filter(|t| !t.is_empty()) else {
                return Err(ApiError::from_denial(Denial::Required));
            };
            let grant = link
                .validate_token(&token)
                .await
                .map_err(ApiError::from_denial)?;
            Ok(Caller { grant })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compares_whole_tokens() {
        assert!(same(b"abc", b"abc"));
        assert!(!same(b"abc", b"abd"));
        assert!(!same(b"abc", b"ab"));
    }
}
