//! The shape every bridge has (ARCHITECTURE.md, actor tree): a [`Bridge`] is one
//! long-running task; [`spawn`] runs it as an actor on an arbiter of its own under an actix
//! `Supervisor`, which restarts it with exponential backoff (1 s doubling to 30 s) whenever
//! its socket, device or broker fails, and reports its state in the relay's actor table.

use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::prelude::*;
use clasp_actors::health::{ActorState, ActorTable};
use clasp_actors::link::RouterLink;
use clasp_actors::router::Router;
use futures_util::future::LocalBoxFuture;

use crate::{BridgeError, BridgeStats};

/// First restart delay; it doubles per failure up to [`MAX_BACKOFF`].
pub const FIRST_BACKOFF: Duration = Duration::from_secs(1);
/// Longest restart delay.
pub const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// Longest wait in [`BridgeHandle::stop`] for a bridge's task to end.
pub const STOP_WAIT: Duration = Duration::from_secs(2);
/// A run this long resets the backoff: the failure was not a crash loop.
const STABLE: Duration = Duration::from_secs(60);

/// One protocol bridge instance.
pub trait Bridge: Send + Unpin + 'static {
    /// Protocol kind (`osc`, `mqtt-client`, `mqtt-server`, `http`, `wsjson`, ...).
    fn kind(&self) -> &'static str;

    /// Instance name, unique within a relay: the /health row (`osc`, `osc:/osc/stage`).
    fn name(&self) -> String;

    /// Whether the relay should report ready only once this bridge was up. True for bridges
    /// that listen; a client of an external service that may be down says false, so the
    /// relay keeps serving its own clients.
    fn gates_readiness(&self) -> bool {
        true
    }

    /// Runs the bridge until its socket, device or broker fails (`Err`, restarted after a
    /// backoff) or it has nothing left to do (`Ok`, also restarted: a bridge is a service).
    /// Called again on each restart with a fresh link.
    fn run(
        &self,
        link: RouterLink,
        stats: Arc<BridgeStats>,
    ) -> LocalBoxFuture<'static, Result<(), BridgeError>>;
}

/// Where a bridge's [`RouterLink`] comes from.
#[derive(Clone)]
pub enum LinkSource {
    /// Embedded: an in-process link to this relay's shards (a new endpoint per restart).
    Local(Router),
    /// Standalone: a client connected to a remote relay (it reconnects by itself).
    Remote(RouterLink),
}

impl LinkSource {
    fn link(&self, name: &str) -> RouterLink {
        match self {
            LinkSource::Local(router) => RouterLink::local(router, name),
            LinkSource::Remote(link) => link.clone(),
        }
    }
}

/// A running bridge: its counters, and the arbiter it runs on (stopping it stops the bridge).
pub struct BridgeHandle {
    stats: Arc<BridgeStats>,
    name: String,
    actors: ActorTable,
    arbiter: Option<Arbiter>,
    /// The supervisor restarts the actor only while an address to it is alive.
    _addr: Box<dyn std::any::Any + Send>,
}

impl BridgeHandle {
    /// The bridge's counters.
    pub fn stats(&self) -> &Arc<BridgeStats> {
        &self.stats
    }

    /// Stops the bridge for good (shutdown), and waits (at most [`STOP_WAIT`]) until its
    /// task was dropped, so what a bridge does on the way out (sACN's stream-terminated
    /// packets) happens before the process exits.
    pub fn stop(mut self) {
        if let Some(arbiter) = self.halt() {
            let (done, wait) = std::sync::mpsc::channel();
            std::thread::spawn(move || {
                let _ = arbiter.join();
                let _ = done.send(());
            });
            let _ = wait.recv_timeout(STOP_WAIT);
        }
    }

    fn halt(&mut self) -> Option<Arbiter> {
        let arbiter = self.arbiter.take()?;
        self.actors.set(&self.name, ActorState::Stopped);
        self.stats.set_up(false);
        arbiter.stop();
        Some(arbiter)
    }
}

impl Drop for BridgeHandle {
    fn drop(&mut self) {
        let _ = self.halt();
    }
}

/// Starts `bridge` under a supervisor on a new arbiter. Must run inside an actix system.
pub fn spawn<B: Bridge>(bridge: B, source: LinkSource, actors: ActorTable) -> BridgeHandle {
    let name = bridge.name();
    let mut stats = BridgeStats::new(bridge.kind(), &name);
    stats.gates_readiness = bridge.gates_readiness();
    let stats = Arc::new(stats);
    let arbiter = Arbiter::new();
    let (table, counters) = (actors.clone(), stats.clone());
    let addr = Supervisor::start_in_arbiter(&arbiter.handle(), move |_| BridgeActor {
        bridge,
        source,
        stats: counters,
        actors: table,
        failures: 0,
    });
    tracing::info!(bridge = %name, "bridge started");
    BridgeHandle {
        stats,
        name,
        actors,
        arbiter: Some(arbiter),
        _addr: Box::new(addr),
    }
}

/// The delay before the `failures`-th restart.
pub fn backoff(failures: u32) -> Duration {
    if failures == 0 {
        return Duration::ZERO;
    }
    FIRST_BACKOFF
        .saturating_mul(1u32 << (failures - 1).min(5))
        .min(MAX_BACKOFF)
}

struct BridgeActor<B: Bridge> {
    bridge: B,
    source: LinkSource,
    stats: Arc<BridgeStats>,
    actors: ActorTable,
    failures: u32,
}

impl<B: Bridge> BridgeActor<B> {
    fn launch(&mut self, ctx: &mut Context<Self>) {
        let name = self.bridge.name();
        self.actors.set(&name, ActorState::Running);
        let started = Instant::now();
        let run = self.bridge.run(self.source.link(&name), self.stats.clone());
        ctx.spawn(run.into_actor(self).map(move |result, act, ctx| {
            if started.elapsed() >= STABLE {
                act.failures = 0;
            }
            act.failures = act.failures.saturating_add(1);
            act.stats.set_up(false);
            let delay = backoff(act.failures);
            match result {
                Ok(()) => tracing::info!(bridge = %name, ?delay, "bridge task ended; restarting"),
                Err(e) => {
                    tracing::warn!(bridge = %name, error = %e, ?delay, "bridge failed; restarting");
                    act.stats.set_error(e.to_string());
                }
            }
            ctx.stop();
        }));
    }
}

impl<B: Bridge> Actor for BridgeActor<B> {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        let delay = backoff(self.failures);
        if delay.is_zero() {
            self.launch(ctx);
        } else {
            ctx.run_later(delay, |act, ctx| act.launch(ctx));
        }
    }
}

impl<B: Bridge> Supervised for BridgeActor<B> {
    fn restarting(&mut self, _: &mut Context<Self>) {
        BridgeStats::bump(&self.stats.restarts);
        self.actors.set(&self.bridge.name(), ActorState::Restarting);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_to_thirty_seconds() {
        let secs: Vec<u64> = (0..8).map(|n| backoff(n).as_secs()).collect();
        assert_eq!(secs, [0, 1, 2, 4, 8, 16, 30, 30]);
    }
}
