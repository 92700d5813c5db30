//! The CLASP router as actix actors: per-connection sessions, address-subtree shards that own
//! state and subscriptions, and the supervision that keeps them running. See
//! `docs/architecture.md` for the actor tree and the path of one SET.

pub mod appconfig;
pub mod auth;
pub mod client;
pub mod clock;
pub mod config;
pub mod discovery;
pub mod federation;
pub mod health;
pub mod journal;
pub mod json;
pub mod link;
mod link_frontend;
mod link_osc;
pub mod listener;
pub mod messages;
pub mod metrics;
pub mod relay;
pub mod router;
pub mod rules;
pub mod session;
pub mod sessions_api;
pub mod shard;
pub mod tls;

pub use config::{
    AuthConfig, ConflictStrategy, Eviction, JournalConfig, JournalSync, PersistConfig, RelayConfig,
    TlsFiles,
};
pub use relay::{Relay, RelayError};
