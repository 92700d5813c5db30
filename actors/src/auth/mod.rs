//! Authentication and authorisation: scopes, CPSK tokens, capability chains (Ed25519) and the
//! entity registry, all owned by the `Auth` actor and stored in redb (WIRE §10, FEATURES §3).

pub mod actor;
pub mod cap;
pub mod entities_http;
pub mod entity_token;
pub mod grant;
pub mod http;
pub mod keys;
pub mod ratelimit;
pub mod registry;
pub mod scope;
pub mod secret;
pub mod store;
pub mod validators;

pub use actor::Auth;
pub use cap::{CapError, CapGrant, CapToken, CapValidator, ProofLink};
pub use entity_token::{entity_id_for, EntityToken, EntityTokenError};
pub use grant::{Denial, Grant, TokenKind};
pub use scope::{Action, Scope, ScopeError, Scopes};
