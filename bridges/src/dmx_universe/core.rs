//! What the Art-Net and sACN bridges share between their sockets and the router: received
//! frames are merged per universe and the changes written (channel mode) or published
//! (universe mode); router changes under the namespace fill the outbound universes.

use std::collections::HashMap;
use std::fmt::Display;
use std::sync::Arc;
use std::time::{Duration, Instant};

use clasp_actors::client::{ClientError, Update};
use clasp_actors::link::{LinkSubscription, RouterLink};
use clasp_proto::{SignalType, Value};
use futures_util::future::LocalBoxFuture;
use futures_util::stream::FuturesOrdered;

use super::map::{self, DmxMode, DmxPath};
use super::merge::{Frame, MergeMode, Merger, Received, CHANNELS};
use super::refresh::{Outputs, KEEPALIVE};
use super::universes::UniverseSet;
use crate::echo::EchoFilter;
use crate::noise::BadInput;
use crate::{BridgeError, BridgeStats, Namespace};

/// Writes sent to the router and not yet answered; the socket is not read while this many
/// are outstanding, so a flood slows the sender instead of growing memory.
pub const WINDOW: usize = 1024;

type Pending = LocalBoxFuture<'static, Result<(), ClientError>>;

/// The settings both DMX-over-IP bridges have.
#[derive(Debug, Clone)]
pub struct DmxSettings {
    /// Address prefix.
    pub namespace: Namespace,
    /// Universes handled, both ways.
    pub universes: UniverseSet,
    /// Channel params or universe streams.
    pub mode: DmxMode,
    /// Levels as 0.0–1.0 instead of 0–255.
    pub normalize: bool,
    /// How equal-priority sources merge.
    pub merge: MergeMode,
    /// Silence after which a source leaves the merge.
    pub source_timeout: Duration,
    /// Most frames per second per outbound universe.
    pub refresh_hz: f64,
}

/// One received universe: its sources and what was last written for it.
struct Inbound<S> {
    merger: Merger<S>,
    written: Frame,
    /// Channels written at least once (1..=written_len).
    written_len: usize,
}

/// One run's shared state of a DMX bridge; `S` identifies a source (address or CID).
pub struct DmxCore<S> {
    link: RouterLink,
    stats: Arc<BridgeStats>,
    settings: DmxSettings,
    inbound: HashMap<u16, Inbound<S>>,
    echo: EchoFilter<()>,
    bad: BadInput,
    /// Writes in flight, answered in order.
    pub inflight: FuturesOrdered<Pending>,
    /// Outbound universes.
    pub out: Outputs,
}

impl<S: PartialEq + Clone> DmxCore<S> {
    /// State for one run of the bridge.
    pub fn new(link: RouterLink, stats: Arc<BridgeStats>, settings: DmxSettings) -> Self {
        let out = Outputs::new(settings.refresh_hz, KEEPALIVE);
        Self {
            link,
            stats,
            settings,
            inbound: HashMap::new(),
            echo: EchoFilter::default(),
            bad: BadInput::default(),
            inflight: FuturesOrdered::new(),
            out,
        }
    }

    /// The bridge's counters.
    pub fn stats(&self) -> &BridgeStats {
        &self.stats
    }

    /// Subscribes to the namespace's live changes.
    pub async fn subscribe(&self) -> Result<LinkSubscription, BridgeError> {
        Ok(self
            .link
            .subscribe_live(&self.settings.namespace.subtree())
            .await?)
    }

    /// Whether another packet may be read now.
    pub fn has_room(&self) -> bool {
        self.inflight.len() < WINDOW
    }

    /// Counts and (rate-limited) logs bad input from `peer`.
    pub fn bad_input(&mut self, peer: &str, error: &dyn Display) {
        self.bad.report(&self.stats, peer, error);
    }

    /// Whether `universe` is handled.
    pub fn handles(&self, universe: u16) -> bool {
        self.settings.universes.contains(universe)
    }

    /// Takes a frame of `universe` from `source` and writes what it changed.
    pub fn frame(
        &mut self,
        universe: u16,
        source: &S,
        priority: u8,
        seq: Option<u8>,
        data: &[u8],
        now: Instant,
    ) -> Received {
        if !self.handles(universe) {
            return Received::Taken;
        }
        let (mode, timeout) = (self.settings.merge, self.settings.source_timeout);
        let entry = self.inbound.entry(universe).or_insert_with(|| Inbound {
            merger: Merger::new(mode, timeout),
            written: [0; CHANNELS],
            written_len: 0,
        });
        let received = entry.merger.receive(source, priority, seq, data, now);
        if received == Received::Taken {
            self.emit(universe, true);
        }
        received
    }

    /// A source said it stopped sending `universe` (sACN stream terminated).
    pub fn terminated(&mut self, universe: u16, source: &S) {
        if self
            .inbound
            .get_mut(&universe)
            .is_some_and(|i| i.merger.remove(source))
        {
            self.emit(universe, false);
        }
    }

    /// Drops silent sources and writes what that changed.
    pub fn expire(&mut self, now: Instant) {
        let changed: Vec<u16> = self
            .inbound
            .iter_mut()
            .filter_map(|(u, i)| i.merger.expire(now).then_some(*u))
            .collect();
        for universe in changed {
            self.emit(universe, false);
        }
        self.inbound.retain(|_, i| i.merger.source_count() > 0);
    }

    /// Writes the merged state of `universe`: the changed channels (channel mode), or the
    /// frame (universe mode, on every received frame). With no source left the last levels
    /// are held (hold last look), nothing is written.
    fn emit(&mut self, universe: u16, received: bool) {
        let Some(inbound) = self.inbound.get_mut(&universe) else {
            return;
        };
        let (merged, len) = inbound.merger.merged();
        if len == 0 {
            return;
        }
        let ns = &self.settings.namespace;
        let mut writes: Vec<(String, Value)> = Vec::new();
        match self.settings.mode {
            DmxMode::Channel => {
                for c in 0..len.max(inbound.written_len) {
                    let (Some(new), Some(old)) = (merged.get(c), inbound.written.get_mut(c)) else {
                        continue;
                    };
                    if *new == *old && c < inbound.written_len {
                        continue;
                    }
                    *old = *new;
                    let path = map::channel_path(universe, c as u16 + 1);
                    if let Ok(address) = ns.address(&path) {
                        writes.push((
                            address.as_str().to_string(),
                            map::level_value(*new, self.settings.normalize),
                        ));
                    }
                }
                inbound.written_len = inbound.written_len.max(len);
            }
            DmxMode::Universe => {
                let changed = merged.get(..len) != inbound.written.get(..len);
                if !(received || changed) {
                    return;
                }
                inbound.written = merged;
                inbound.written_len = len;
                let Ok(address) = ns.address(&map::universe_path(universe)) else {
                    return;
                };
                let value = Value::Bytes(merged.get(..len).unwrap_or_default().to_vec());
                self.echo.inbound(address.as_str(), (), &value);
                BridgeStats::bump(&self.stats.received);
                let link = self.link.clone();
                let address = address.as_str().to_string();
                self.inflight.push_back(Box::pin(async move {
                    link.publish(SignalType::Stream, &address, value).await
                }));
                return;
            }
        }
        self.stats
            .received
            .fetch_add(writes.len() as u64, std::sync::atomic::Ordering::Relaxed);
        for (address, value) in writes {
            self.echo.inbound(&address, (), &value);
            let link = self.link.clone();
            self.inflight.push_back(Box::pin(async move {
                link.set(&address, value).await.map(drop)
            }));
        }
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

    /// Applies a router change under the namespace to the outbound universes; the universe
    /// it changed, if any. Echoes of our own writes and snapshots are skipped.
    pub fn outbound(&mut self, update: &Update) -> Option<u16> {
        if update.signal == SignalType::Param
            && (update.writer.is_some() || update.timestamp.is_some())
        {
            return None;
        }
        let address = update.address.as_str();
        let path = self.settings.namespace.strip(address)?;
        if self.echo.origin(address, &update.value).is_some() {
            return None;
        }
        let normalize = self.settings.normalize;
        let applied = map::parse_path(path).and_then(|p| match p {
            DmxPath::Channel(u, c) => {
                let level = map::value_level(&update.value, normalize)?;
                Ok((u, Some((c, level)), Vec::new()))
            }
            DmxPath::Universe(u) => Ok((u, None, map::value_frame(&update.value, normalize)?)),
        });
        match applied {
            Ok((universe, _, _)) if !self.handles(universe) => None,
            Ok((universe, Some((channel, level)), _)) => {
                self.out.set_channel(universe, channel, level);
                Some(universe)
            }
            Ok((universe, None, levels)) => {
                self.out.set_frame(universe, &levels);
                Some(universe)
            }
            Err(e) => {
                tracing::debug!(bridge = %self.stats.name, address, error = %e, "not sent as DMX");
                None
            }
        }
    }
}
