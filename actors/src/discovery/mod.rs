//! Discovery (FEATURES DI-*): devices find relays without typing addresses.
//!
//! The relay side is the [`Discovery`] actor (mDNS advertising, the UDP broadcast responder
//! and self-registration with another relay's rendezvous) plus the [`rendezvous`] service,
//! an HTTP registry for networks without multicast. The client side is [`discover`] (the
//! DI-5 cascade: mDNS, then broadcast, then rendezvous) and [`resolve`], which the Rust
//! client uses for `clasp://name` URLs. See `docs/discovery.md`.

pub mod actor;
pub mod broadcast;
pub mod mdns;
pub mod register;
pub mod rendezvous;

use std::net::IpAddr;
use std::time::Duration;

use serde::Serialize;

pub use actor::{Discovery, DiscoveryHandle, DiscoveryStats};
pub use mdns::{Listener as DiscoveryListener, ListenerEvent};

/// The mDNS service type relays advertise.
pub const SERVICE_TYPE: &str = "_clasp._tcp.local.";
/// Default UDP port of the broadcast responder.
pub const DEFAULT_BROADCAST_PORT: u16 = 7331;
/// Default HTTP port of the rendezvous service (when it is turned on).
pub const DEFAULT_RENDEZVOUS_PORT: u16 = 7340;
/// The signal-type letters a relay advertises (param, event, stream, gesture, timeline).
pub const FEATURE_LETTERS: &str = "pestg";

/// What the relay does to be found. `Default` turns everything off, so a relay embedded in
/// a program or a test is silent unless asked; the `clasp relay` flags turn mDNS and the
/// broadcast responder on.
#[derive(Debug, Clone, Default)]
pub struct DiscoveryConfig {
    /// Advertise `_clasp._tcp.local.` by mDNS.
    pub mdns: bool,
    /// UDP port of the broadcast responder (`None`: off).
    pub broadcast_port: Option<u16>,
    /// Serve the rendezvous registry (`None`: off).
    pub rendezvous: Option<rendezvous::RendezvousConfig>,
    /// Register this relay with another relay's rendezvous (DI-4).
    pub register: Option<register::RegisterConfig>,
}

impl DiscoveryConfig {
    /// Whether anything at all is asked for (no actor is started otherwise).
    pub fn any(&self) -> bool {
        self.mdns
            || self.broadcast_port.is_some()
            || self.rendezvous.is_some()
            || self.register.is_some()
    }
}

/// Where a relay was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Source {
    /// An mDNS answer.
    Mdns,
    /// A WELCOME answering a UDP broadcast HELLO.
    Broadcast,
    /// A rendezvous service's registry.
    Rendezvous,
}

impl std::fmt::Display for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Source::Mdns => "mdns",
            Source::Broadcast => "broadcast",
            Source::Rendezvous => "rendezvous",
        })
    }
}

/// One relay found by [`discover`]: DI-5's `{name, url, source}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Found {
    /// The relay's name (mDNS instance, WELCOME name, or registered name).
    pub name: String,
    /// Where to connect (`ws://` or `wss://`).
    pub url: String,
    /// How it was found.
    pub source: Source,
}

/// What [`discover`] and [`resolve`] look at.
#[derive(Debug, Clone)]
pub struct DiscoverOptions {
    /// How long each source is given.
    pub timeout: Duration,
    /// Browse mDNS.
    pub mdns: bool,
    /// Browse mDNS only on the interface with this address (`None`: every interface).
    pub mdns_interface: Option<IpAddr>,
    /// Where the broadcast HELLO goes (`None`: no broadcast). Usually the broadcast address
    /// of a subnet, or 255.255.255.255.
    pub broadcast_to: Option<IpAddr>,
    /// The responders' UDP port.
    pub broadcast_port: u16,
    /// Rendezvous services to ask (base URLs such as `http://host:7340`).
    pub rendezvous: Vec<String>,
    /// Only relays registered with this tag (rendezvous).
    pub tag: Option<String>,
}

impl Default for DiscoverOptions {
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(2),
            mdns: true,
            mdns_interface: None,
            broadcast_to: Some(IpAddr::from([255, 255, 255, 255])),
            broadcast_port: DEFAULT_BROADCAST_PORT,
            rendezvous: Vec::new(),
            tag: None,
        }
    }
}

/// Why a discovery source failed (the others still run).
#[derive(Debug, thiserror::Error)]
pub enum DiscoveryError {
    /// The mDNS daemon could not start or browse.
    #[error("mdns: {0}")]
    Mdns(#[from] mdns_sd::Error),
    /// A UDP socket could not be opened or used.
    #[error("broadcast: {0}")]
    Io(#[from] std::io::Error),
    /// A rendezvous service did not answer as expected.
    #[error("rendezvous {url}: {reason}")]
    Rendezvous {
        /// The service.
        url: String,
        /// What went wrong.
        reason: String,
    },
    /// A frame could not be encoded.
    #[error("encode: {0}")]
    Encode(#[from] clasp_proto::EncodeError),
}

/// Every relay the sources find, in cascade order (mDNS, broadcast, rendezvous), each
/// source given `options.timeout`; the sources run at the same time. A source that fails is
/// reported in the second list and the others still count. Blocking: call it from a
/// blocking context (`tokio::task::spawn_blocking` in async code).
pub fn discover(options: &DiscoverOptions) -> (Vec<Found>, Vec<DiscoveryError>) {
    let (mdns, broadcast, rendezvous) = std::thread::scope(|s| {
        let mdns = s.spawn(|| {
            if options.mdns {
                mdns::browse(options.timeout, options.mdns_interface, None)
            } else {
                Ok(Vec::new())
            }
        });
        let broadcast = s.spawn(|| match options.broadcast_to {
            Some(to) => broadcast::probe(to, options.broadcast_port, options.timeout, None),
            None => Ok(Vec::new()),
        });
        let rendezvous = s.spawn(|| {
            options
                .rendezvous
                .iter()
                .map(|url| register::list(url, options.tag.as_deref(), options.timeout))
                .collect::<Vec<_>>()
        });
        (
            join(mdns, "mdns"),
            join(broadcast, "broadcast"),
            rendezvous.join().unwrap_or_default(),
        )
    });
    let mut found = Vec::new();
    let mut errors = Vec::new();
    for result in [mdns, broadcast].into_iter().chain(rendezvous) {
        match result {
            Ok(list) => {
                for f in list {
                    if !found.contains(&f) {
                        found.push(f);
                    }
                }
            }
            Err(e) => errors.push(e),
        }
    }
    (found, errors)
}

/// The result of a source thread; a panic inside a dependency becomes an error, not ours.
fn join(
    handle: std::thread::ScopedJoinHandle<'_, Result<Vec<Found>, DiscoveryError>>,
    what: &str,
) -> Result<Vec<Found>, DiscoveryError> {
    handle
        .join()
        .unwrap_or_else(|_| Err(std::io::Error::other(format!("{what} browser failed")).into()))
}

/// The URL of the relay called `name`: mDNS first, then broadcast, then rendezvous, each
/// stopping at the first match. `None` if no source found it within its timeout. Blocking.
pub fn resolve(name: &str, options: &DiscoverOptions) -> Option<Found> {
    if options.mdns {
        match mdns::browse(options.timeout, options.mdns_interface, Some(name)) {
            Ok(list) => {
                if let Some(f) = list.into_iter().find(|f| f.name == name) {
                    return Some(f);
                }
            }
            Err(e) => tracing::debug!(error = %e, "mdns browse failed"),
        }
    }
    if let Some(to) = options.broadcast_to {
        match broadcast::probe(to, options.broadcast_port, options.timeout, Some(name)) {
            Ok(list) => {
                if let Some(f) = list.into_iter().find(|f| f.name == name) {
                    return Some(f);
                }
            }
            Err(e) => tracing::debug!(error = %e, "broadcast probe failed"),
        }
    }
    for url in &options.rendezvous {
        match register::list(url, options.tag.as_deref(), options.timeout) {
            Ok(list) => {
                if let Some(f) = list.into_iter().find(|f| f.name == name) {
                    return Some(f);
                }
            }
            Err(e) => tracing::debug!(error = %e, "rendezvous lookup failed"),
        }
    }
    None
}
