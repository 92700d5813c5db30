//! What both transports share: an inbound packet to router writes (pipelined, in order,
//! with echo bookkeeping), and a router update to the outbound packet plus the peer it must
//! not go back to.

use std::net::SocketAddr;
use std::sync::Arc;

use clasp_actors::client::{BundleItem, ClientError, Update};
use clasp_actors::clock::now_micros;
use clasp_actors::link::{LinkSubscription, RouterLink};
use clasp_proto::SignalType;
use futures_util::future::LocalBoxFuture;
use futures_util::stream::FuturesOrdered;

use super::map;
use crate::echo::EchoFilter;
use crate::noise::BadInput;
use crate::{BridgeError, BridgeStats, Namespace};

/// Writes sent to the router and not yet answered; the socket is not read while this many
/// are outstanding, so a flood slows the sender instead of growing memory.
pub const WINDOW: usize = 256;

type Pending = LocalBoxFuture<'static, Result<(), ClientError>>;

/// One run's shared state.
pub struct Core {
    link: RouterLink,
    stats: Arc<BridgeStats>,
    ns: Namespace,
    echo: EchoFilter<SocketAddr>,
    bad: BadInput,
    /// Writes in flight, answered in order.
    pub inflight: FuturesOrdered<Pending>,
}

impl Core {
    /// State for one run of the bridge.
    pub fn new(link: RouterLink, stats: Arc<BridgeStats>, ns: Namespace) -> Self {
        Self {
            link,
            stats,
            ns,
            echo: EchoFilter::default(),
            bad: BadInput::default(),
            inflight: FuturesOrdered::new(),
        }
    }

    /// The bridge's counters.
    pub fn stats(&self) -> &BridgeStats {
        &self.stats
    }

    /// Subscribes to the namespace's live changes.
    pub async fn subscribe(&self) -> Result<LinkSubscription, BridgeError> {
        Ok(self.link.subscribe_live(&self.ns.subtree()).await?)
    }

    /// Whether another packet may be read now.
    pub fn has_room(&self) -> bool {
        self.inflight.len() < WINDOW
    }

    /// Counts and (rate-limited) logs bad input from `peer`.
    pub fn bad_input(&mut self, peer: SocketAddr, error: &dyn std::fmt::Display) {
        self.bad.report(&self.stats, &peer.to_string(), error);
    }

    /// Maps one packet from `peer` to router writes. False when it was bad input.
    pub fn inbound(&mut self, peer: SocketAddr, bytes: &[u8]) -> bool {
        let now = now_micros();
        let writes = match map::decode(bytes, &self.ns, now) {
            Ok(w) => w,
            Err(e) => {
                self.bad_input(peer, &e);
                return false;
            }
        };
        for (address, value) in &writes.items {
            self.echo.inbound(address, peer, value);
        }
        self.stats.received.fetch_add(
            writes.items.len() as u64,
            std::sync::atomic::Ordering::Relaxed,
        );
        match writes.bundle {
            None => {
                for (address, value) in writes.items {
                    let link = self.link.clone();
                    self.inflight.push_back(Box::pin(async move {
                        link.set(&address, value).await.map(drop)
                    }));
                }
            }
            Some(_) if writes.items.is_empty() => {}
            Some(at) => {
                // The timetag is on this host's clock; the router's may differ (standalone).
                let router_now = self.link.router_time();
                let at = at.map(|t| t.saturating_add(router_now).saturating_sub(now));
                let items = writes
                    .items
                    .into_iter()
                    .map(|(a, v)| BundleItem::Set(a, v))
                    .collect();
                let link = self.link.clone();
                let bundle = async move { link.bundle_at(items, at).await.map(drop) };
                if at.is_some_and(|t| t > router_now) {
                    // Held by the router until its time: later packets must not wait for it.
                    let stats = self.stats.clone();
                    actix::spawn(async move {
                        if let Err(e) = bundle.await {
                            BridgeStats::bump(&stats.refused);
                            tracing::debug!(bridge = %stats.name, error = %e, "scheduled bundle refused");
                        }
                    });
                } else {
                    self.inflight.push_back(Box::pin(bundle));
                }
            }
        }
        true
    }

    /// The outcome of one write: refusals are counted; a closed link ends the run.
    pub fn settle(&self, result: Result<(), ClientError>) -> Result<(), BridgeError> {
        match result {
            Ok(()) => Ok(()),
            Err(ClientError::Closed) => Err(BridgeError::Link(ClientError::Closed)),
            Err(e) => {
                BridgeStats::bump(&self.stats.refused);
                tracing::debug!(bridge = %self.stats.name, error = %e, "write refused");
                Ok(())
            }
        }
    }

    /// The OSC packet for a router update under the namespace, and the peer it came from
    /// (which must not get it back). `None` for what does not go out.
    pub fn outbound(&mut self, update: &Update) -> Option<(Vec<u8>, Option<SocketAddr>)> {
        // Over WebSocket the subscription starts with a SNAPSHOT (entries carry the
        // writer or the write time, live SETs neither): only live changes go out.
        if update.signal == SignalType::Param
            && (update.writer.is_some() || update.timestamp.is_some())
        {
            return None;
        }
        let address = update.address.as_str();
        let path = self.ns.strip(address)?;
        let origin = self.echo.origin(address, &update.value);
        match map::encode(path, &update.value) {
            Ok(packet) => Some((packet, origin)),
            Err(e) => {
                tracing::debug!(bridge = %self.stats.name, address, error = %e, "not sent as OSC");
                None
            }
        }
    }
}
