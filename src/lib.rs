//! CLASP: the public facade. The protocol types come from `clasp-proto`, the relay and the
//! Rust client from `clasp-actors`.

pub use clasp_actors::client::{
    BundleItem, Client, ClientBuilder, ClientError, Listener, SetOptions, Subscription, Update,
};
pub use clasp_actors::discovery;
pub use clasp_actors::{Relay, RelayConfig};
pub use clasp_proto as proto;

/// The Rust SDK guide (`docs/sdk/rust.md`); its Rust code blocks are compiled as doctests.
#[doc = include_str!("../docs/sdk/rust.md")]
pub mod sdk_guide {}
