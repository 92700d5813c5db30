//! What the federation links of one relay share: namespace claims, the route table built
//! from them, and each link's state.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use actix::prelude::*;
use arc_swap::ArcSwap;
use clasp_proto::Pattern;

use super::peer::{CloseLink, FederationPeer, RoutesChanged};
use super::FederationConfig;

/// Identifies one link for the life of the relay.
pub type LinkKey = u64;

/// Where writes to an address go.
#[derive(Clone)]
pub enum Route {
    /// This router owns it.
    Local,
    /// Owned through this link (the owner or the next router towards it).
    Link {
        /// The link.
        key: LinkKey,
        /// Its actor.
        peer: Addr<FederationPeer>,
        /// The router at the other end.
        owner: Arc<str>,
    },
    /// Owned by a router that is not connected now: writes get ERROR 502.
    Unreachable {
        /// Its id.
        owner: Arc<str>,
    },
}

/// Owned namespaces in claim order; shards look up every SET here, so it is swapped whole
/// (`ArcSwap`) and read without a lock.
#[derive(Clone, Default)]
pub struct RouteTable {
    entries: Vec<(Pattern, Route)>,
}

impl RouteTable {
    /// Who owns `address`; `None`: nobody declared it, it stays local to this relay.
    pub fn route(&self, address: &str) -> Option<&Route> {
        self.entries
            .iter()
            .find(|(p, _)| p.matches(address))
            .map(|(_, r)| r)
    }

    /// Whether any router declared `address`: only such addresses cross links.
    pub fn is_federated(&self, address: &str) -> bool {
        self.route(address).is_some()
    }

    /// Whether writes to `address` are owned through link `key`.
    pub fn is_via(&self, address: &str, key: LinkKey) -> bool {
        matches!(self.route(address), Some(Route::Link { key: k, .. }) if *k == key)
    }

    /// True when no namespace is declared anywhere: shards skip the lookup.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

/// A link's life cycle, as /health shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LinkState {
    /// Dialling a hub.
    Connecting,
    /// Connected, namespaces being declared.
    Declaring,
    /// Declared; catching up on what changed while apart.
    Syncing,
    /// Synced; changes flow live.
    Up,
    /// Not connected (the uplink retries with backoff).
    Down,
    /// The other side refused our namespaces (overlap, scope).
    Refused,
}

/// Which end of the link this relay is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// We dialled a hub (we are its leaf).
    Uplink,
    /// A leaf dialled us.
    Downlink,
}

/// Why a namespace claim was refused (ERROR 409 to the claimant).
#[derive(Debug, Clone, thiserror::Error)]
pub enum ClaimError {
    /// The peer is this router: a loop.
    #[error("federation loop: peer id '{0}' is this router's own id")]
    SelfLoop(String),
    /// Two owners for one address.
    #[error("namespace '{claimed}' overlaps '{existing}' owned by '{owner}'")]
    Overlap {
        /// What the peer claimed.
        claimed: String,
        /// What it overlaps.
        existing: String,
        /// Whose that is.
        owner: String,
    },
}

/// Counters and timestamps of one link.
#[derive(Debug, Clone, serde::Serialize)]
pub struct LinkInfo {
    /// Router id at the other end, once known.
    pub peer: Option<String>,
    /// Our end.
    pub role: Role,
    /// Hub URL (uplink) or the leaf's session id (downlink).
    pub url: String,
    /// State.
    pub state: LinkState,
    /// Last refusal or connection error.
    pub last_error: Option<String>,
    /// Unix ms of the last completed sync.
    pub last_sync_ms: Option<u64>,
    /// Round trip of the last PING, ms: the lag a change crossing this link sees.
    pub lag_ms: Option<f64>,
    /// Param changes and events sent.
    pub sent: u64,
    /// Param changes and events received.
    pub received: u64,
    /// Writes forwarded to the owner through this link.
    pub forwarded: u64,
    /// Forwarded writes that failed (refused, timed out, link lost).
    pub forward_errors: u64,
    /// Connections made (uplink: reconnects + 1).
    pub connects: u64,
    #[serde(skip)]
    since: Option<Instant>,
    #[serde(skip)]
    actor: Option<Addr<FederationPeer>>,
}

struct Claim {
    patterns: Vec<Pattern>,
    link: Option<LinkKey>,
    role: Role,
}

#[derive(Default)]
struct State {
    links: BTreeMap<LinkKey, LinkInfo>,
    claims: BTreeMap<Arc<str>, Claim>,
    next_key: LinkKey,
}

struct Shared {
    id: Arc<str>,
    own: Vec<Pattern>,
    config: FederationConfig,
    routes: ArcSwap<RouteTable>,
    state: Mutex<State>,
}

/// The relay's federation state; cheap to clone.
#[derive(Clone)]
pub struct Federation(Arc<Shared>);

impl Federation {
    /// State for a relay with `config` (hub only when it lists no hubs).
    pub fn new(config: FederationConfig) -> Self {
        let own = config.namespaces.clone();
        let table = RouteTable {
            entries: own.iter().map(|p| (p.clone(), Route::Local)).collect(),
        };
        Federation(Arc::new(Shared {
            id: Arc::from(config.id.as_str()),
            own,
            config,
            routes: ArcSwap::from_pointee(table),
            state: Mutex::new(State {
                next_key: 1,
                ..State::default()
            }),
        }))
    }

    /// This router's id.
    pub fn id(&self) -> &Arc<str> {
        &self.0.id
    }

    /// Settings.
    pub fn config(&self) -> &FederationConfig {
        &self.0.config
    }

    /// The current route table.
    pub fn routes(&self) -> Arc<RouteTable> {
        self.0.routes.load_full()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.0.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A new link entry (state `Connecting`).
    pub fn open_link(&self, role: Role, url: &str) -> LinkKey {
        let mut s = self.lock();
        let key = s.next_key;
        s.next_key += 1;
        s.links.insert(
            key,
            LinkInfo {
                peer: None,
                role,
                url: url.to_string(),
                state: LinkState::Connecting,
                last_error: None,
                last_sync_ms: None,
                lag_ms: None,
                sent: 0,
                received: 0,
                forwarded: 0,
                forward_errors: 0,
                connects: 0,
                since: Some(Instant::now()),
                actor: None,
            },
        );
        key
    }

    /// Binds a connected link to its actor.
    pub fn attach(&self, key: LinkKey, actor: Addr<FederationPeer>) {
        if let Some(l) = self.lock().links.get_mut(&key) {
            l.actor = Some(actor);
            l.connects += 1;
            l.state = LinkState::Declaring;
            l.since = Some(Instant::now());
        }
    }

    /// Updates a link's figures.
    pub fn update(&self, key: LinkKey, f: impl FnOnce(&mut LinkInfo)) {
        if let Some(l) = self.lock().links.get_mut(&key) {
            f(l);
        }
    }

    /// The link's connection ended. Its claims stay (writes there now get 502) until the
    /// same router claims again, here or, for an uplink, through another hub.
    pub fn detach(&self, key: LinkKey, error: Option<String>) {
        {
            let mut s = self.lock();
            let keep = match s.links.get_mut(&key) {
                Some(l) if l.role == Role::Uplink => {
                    l.actor = None;
                    l.state = LinkState::Down;
                    if error.is_some() {
                        l.last_error = error;
                    }
                    true
                }
                _ => false,
            };
            if !keep {
                s.links.remove(&key);
            }
            for c in s.claims.values_mut() {
                if c.link == Some(key) {
                    c.link = None;
                }
            }
        }
        self.rebuild();
    }

    /// Records the namespaces `remote` declared over link `key`, refusing loops, a second
    /// live link from the same router, and overlaps with any other owner's namespaces.
    pub fn claim(
        &self,
        key: LinkKey,
        role: Role,
        remote: &str,
        patterns: Vec<Pattern>,
    ) -> Result<(), ClaimError> {
        if remote == &*self.0.id {
            return Err(ClaimError::SelfLoop(remote.to_string()));
        }
        {
            let mut s = self.lock();
            // The same router again over a new connection (it reconnected before the old one
            // timed out): the new link takes over, as an MQTT client id does.
            let stale = s
                .claims
                .get(remote)
                .and_then(|c| c.link.filter(|k| *k != key))
                .and_then(|k| s.links.get(&k).and_then(|l| l.actor.clone()));
            if let Some(old) = stale {
                old.do_send(CloseLink(Some(format!(
                    "router '{remote}' connected again"
                ))));
            }
            // Namespaces learned through an uplink describe the hub's side of the tree: a new
            // uplink (failover) replaces them all.
            if role == Role::Uplink {
                s.claims
                    .retain(|_, c| !(c.role == Role::Uplink && c.link != Some(key)));
            }
            let owners = std::iter::once((&self.0.id, &self.0.own)).chain(
                s.claims
                    .iter()
                    .filter(|(id, _)| &***id != remote)
                    .map(|(id, c)| (id, &c.patterns)),
            );
            for (owner, theirs) in owners {
                for mine in &patterns {
                    if let Some(existing) = theirs.iter().find(|t| t.overlaps(mine)) {
                        return Err(ClaimError::Overlap {
                            claimed: mine.to_string(),
                            existing: existing.to_string(),
                            owner: owner.to_string(),
                        });
                    }
                }
            }
            s.claims.insert(
                Arc::from(remote),
                Claim {
                    patterns,
                    link: Some(key),
                    role,
                },
            );
            if let Some(l) = s.links.get_mut(&key) {
                l.peer = Some(remote.to_string());
            }
        }
        self.rebuild();
        Ok(())
    }

    /// What to declare over link `key` to router `remote`: every namespace reachable other
    /// than through it (and never the remote's own, kept here while it was away).
    pub fn declared_to(&self, key: LinkKey, remote: Option<&str>) -> Vec<Pattern> {
        let s = self.lock();
        let upward = s.links.get(&key).is_some_and(|l| l.role == Role::Uplink);
        let mut out = self.0.own.clone();
        for (owner, c) in &s.claims {
            // Towards a hub only what lies below us: what we learned from a hub (this one or
            // one we failed over from) is the hub side's own.
            if upward && c.role == Role::Uplink {
                continue;
            }
            if c.link != Some(key) && Some(&**owner) != remote {
                out.extend(c.patterns.iter().cloned());
            }
        }
        out
    }

    /// Namespaces owned through link `key`.
    pub fn claimed_via(&self, key: LinkKey) -> Vec<Pattern> {
        let s = self.lock();
        s.claims
            .values()
            .filter(|c| c.link == Some(key))
            .flat_map(|c| c.patterns.iter().cloned())
            .collect()
    }

    fn rebuild(&self) {
        let actors: Vec<Addr<FederationPeer>>;
        {
            let s = self.lock();
            let mut entries: Vec<(Pattern, Route)> = self
                .0
                .own
                .iter()
                .map(|p| (p.clone(), Route::Local))
                .collect();
            for (owner, c) in &s.claims {
                let actor = c.link.and_then(|k| {
                    s.links
                        .get(&k)
                        .and_then(|l| l.actor.clone())
                        .map(|a| (k, a))
                });
                let route = match actor {
                    Some((key, peer)) => Route::Link {
                        key,
                        peer,
                        owner: owner.clone(),
                    },
                    None => Route::Unreachable {
                        owner: owner.clone(),
                    },
                };
                entries.extend(c.patterns.iter().map(|p| (p.clone(), route.clone())));
            }
            self.0.routes.store(Arc::new(RouteTable { entries }));
            actors = s.links.values().filter_map(|l| l.actor.clone()).collect();
        }
        for a in actors {
            a.do_send(RoutesChanged);
        }
    }

    /// Every link, for /health and the console.
    pub fn links(&self) -> Vec<LinkInfo> {
        self.lock().links.values().cloned().collect()
    }

    /// The uplinks that never completed a sync (readiness waits for them).
    pub fn unsynced_uplinks(&self) -> Vec<String> {
        self.lock()
            .links
            .values()
            .filter(|l| l.role == Role::Uplink && l.last_sync_ms.is_none())
            .map(|l| format!("federation uplink {}", l.url))
            .collect()
    }
}

/// Unix time in ms (link timestamps).
pub(crate) fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

impl crate::metrics::MetricsSource for Federation {
    fn render(&self, out: &mut String) {
        use std::fmt::Write;
        let links = self.links();
        let label = |l: &LinkInfo| {
            format!(
                "peer=\"{}\",role=\"{}\",url=\"{}\"",
                esc(l.peer.as_deref().unwrap_or("")),
                match l.role {
                    Role::Uplink => "uplink",
                    Role::Downlink => "downlink",
                },
                esc(&l.url)
            )
        };
        let mut family =
            |name: &str, kind: &str, help: &str, value: &dyn Fn(&LinkInfo) -> Option<f64>| {
                let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
                for l in &links {
                    if let Some(v) = value(l) {
                        let _ = writeln!(out, "{name}{{{}}} {v}", label(l));
                    }
                }
            };
        family(
            "clasp_federation_link_up",
            "gauge",
            "1 when the federation link is synced and live.",
            &|l| Some(f64::from(u8::from(l.state == LinkState::Up))),
        );
        family(
            "clasp_federation_link_lag_seconds",
            "gauge",
            "Round trip of the link's last PING.",
            &|l| l.lag_ms.map(|ms| ms / 1000.0),
        );
        family(
            "clasp_federation_last_sync_timestamp_seconds",
            "gauge",
            "Unix time of the link's last completed sync.",
            &|l| l.last_sync_ms.map(|ms| ms as f64 / 1000.0),
        );
        family(
            "clasp_federation_sent_total",
            "counter",
            "Param changes and events sent over the link.",
            &|l| Some(l.sent as f64),
        );
        family(
            "clasp_federation_received_total",
            "counter",
            "Param changes and events received over the link.",
            &|l| Some(l.received as f64),
        );
        family(
            "clasp_federation_forwarded_total",
            "counter",
            "Writes forwarded to their owner over the link.",
            &|l| Some(l.forwarded as f64),
        );
        family(
            "clasp_federation_forward_errors_total",
            "counter",
            "Forwarded writes that failed (refused, timed out, link lost).",
            &|l| Some(l.forward_errors as f64),
        );
        family(
            "clasp_federation_connects_total",
            "counter",
            "Connections made on the link.",
            &|l| Some(l.connects as f64),
        );
    }

    fn not_ready(&self) -> Vec<String> {
        self.unsynced_uplinks()
    }
}

fn esc(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}
