//! Federation: relays at several sites sharing one address space (WIRE §11, FEATURES
//! FE-*). Each router owns the namespaces it declares; every other router keeps a mirror of
//! them, fed by the owner, and forwards writes there to the owner. Each link to another
//! router is a [`FederationPeer`] actor; this module keeps what they share: who owns what
//! (the [`RouteTable`] shards consult on every SET), and each link's state for /health,
//! /metrics and /ready.
//!
//! Topologies are trees (star, chain, hubs peered as leaf and hub): a change goes to every
//! link except the one towards its owner, so it never returns to its origin; a param
//! arriving with a revision the router already has is dropped, which also ends any copy
//! that takes a second path.

mod peer;
mod registry;
mod uplink;

pub use peer::{CloseLink, FederationPeer, ForwardSet, FromRemote, Wire};
pub use registry::{ClaimError, Federation, LinkKey, LinkState, Role, Route, RouteTable};
pub use uplink::start_uplink;

use std::time::Duration;

use clasp_proto::Pattern;

/// Most patterns one DeclareNamespaces or RequestSync may carry (WIRE §11.1).
pub const MAX_PATTERNS: usize = 1000;
/// Most revision-vector entries a router sends; with more it asks for everything.
pub const MAX_VECTOR: usize = 10_000;

/// `--federation-*` settings of this relay.
#[derive(Debug, Clone)]
pub struct FederationConfig {
    /// This router's id in the federation (origin of what it forwards).
    pub id: String,
    /// Hubs to connect to as a leaf, tried in order (failover); empty: hub only.
    pub hubs: Vec<String>,
    /// Namespaces this router owns.
    pub namespaces: Vec<Pattern>,
    /// Shared secret: sent as the HELLO token to hubs, and accepted from leaves.
    pub token: Option<String>,
    /// How long a write forwarded to its owner may wait for the answer (then ERROR 502).
    pub forward_timeout: Duration,
    /// CA file for `wss://` hubs with a private certificate.
    pub ca_file: Option<std::path::PathBuf>,
}

impl FederationConfig {
    /// Defaults: no hubs, no namespaces, 5 s forwarding timeout.
    pub fn new(id: impl Into<String>) -> Self {
        Self {
            id: id.into(),
            hubs: Vec::new(),
            namespaces: Vec::new(),
            token: None,
            forward_timeout: Duration::from_secs(5),
            ca_file: None,
        }
    }
}
