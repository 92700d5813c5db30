//! Protocol bridges: one module per protocol, each a supervised actor with the same shape
//! (see `docs/architecture.md`). A bridge is a [`supervise::Bridge`]: one long-running task
//! that maps its protocol to CLASP addresses and values through a `RouterLink`, so the same
//! code runs embedded in the relay or standalone against a remote one.

pub mod dmx_universe;
pub mod echo;
pub mod error;
pub mod listen;
pub mod namespace;
pub mod noise;
pub mod registry;
pub mod stats;
pub mod supervise;

pub mod artnet;
pub mod dmx;
pub mod http;
pub mod midi;
pub mod mqtt;
pub mod osc;
pub mod sacn;
pub mod wsjson;

pub use error::BridgeError;
pub use namespace::Namespace;
pub use registry::BridgeRegistry;
pub use stats::BridgeStats;
pub use supervise::{spawn, Bridge, BridgeHandle, LinkSource};
