//! The `Discovery` actor: makes a running relay findable (mDNS advert, broadcast responder,
//! self-registration with a rendezvous). It runs under a supervisor beside the relay's other
//! actors; nothing it does can stop the relay: a source that cannot start is logged and the
//! others go on.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix::prelude::*;
use mdns_sd::ServiceDaemon;

use super::broadcast::Responder;
use super::mdns::Advert;
use super::register::SelfEntry;
use super::rendezvous::RendezvousServer;
use super::DiscoveryConfig;
use crate::health::{ActorState, ActorTable};
use crate::metrics::{family, MetricsSource};

/// Discovery counters, shown at /metrics.
#[derive(Debug, Default)]
pub struct DiscoveryStats {
    /// HELLOs answered with a WELCOME.
    pub broadcast_answered: AtomicU64,
    /// Datagrams that were not a HELLO frame (dropped).
    pub broadcast_rejected: AtomicU64,
    /// Entries in this relay's rendezvous registry.
    pub rendezvous_entries: AtomicU64,
    /// 1 while the mDNS advert is up.
    pub mdns_advertising: AtomicU64,
}

impl MetricsSource for DiscoveryStats {
    fn render(&self, out: &mut String) {
        use std::fmt::Write as _;
        let rows = [
            (
                "clasp_discovery_broadcast_answered_total",
                "counter",
                "Broadcast HELLOs answered with a WELCOME.",
                &self.broadcast_answered,
            ),
            (
                "clasp_discovery_broadcast_rejected_total",
                "counter",
                "Datagrams on the broadcast port that were not a HELLO frame.",
                &self.broadcast_rejected,
            ),
            (
                "clasp_discovery_rendezvous_entries",
                "gauge",
                "Live entries in the rendezvous registry.",
                &self.rendezvous_entries,
            ),
            (
                "clasp_discovery_mdns_advertising",
                "gauge",
                "1 while the relay is advertised by mDNS.",
                &self.mdns_advertising,
            ),
        ];
        for (name, kind, help, value) in rows {
            family(out, name, kind, help);
            let _ = writeln!(out, "{name} {}", value.load(Ordering::Relaxed));
        }
    }
}

/// Facts about the running relay that discovery publishes.
#[derive(Debug, Clone)]
pub struct RelayFacts {
    /// Relay name.
    pub name: String,
    /// Bind host.
    pub host: String,
    /// The bound WebSocket port.
    pub ws_port: u16,
    /// Whether HELLO needs a token.
    pub auth: bool,
    /// Whether the port speaks TLS.
    pub tls: bool,
}

/// The actor that advertises, answers broadcasts and keeps the rendezvous registration.
pub struct Discovery {
    config: DiscoveryConfig,
    facts: RelayFacts,
    stats: Arc<DiscoveryStats>,
    actors: ActorTable,
    /// The bound broadcast socket, taken by the first start (later restarts rebind).
    socket: Option<tokio::net::UdpSocket>,
    mdns: Option<(ServiceDaemon, String)>,
    tasks: Vec<actix::SpawnHandle>,
    registration: Arc<Mutex<Option<String>>>,
}

impl Discovery {
    fn stop_sources(&mut self, ctx: &mut Context<Self>) {
        if let Some((daemon, fullname)) = self.mdns.take() {
            // Wait (briefly) for the goodbye to go out: at shutdown the process may exit
            // right after this, before the daemon's thread gets to the queued command.
            let wait = Duration::from_secs(1);
            if let Ok(status) = daemon.unregister(&fullname) {
                let _ = status.recv_timeout(wait);
            }
            if let Ok(status) = daemon.shutdown() {
                let _ = status.recv_timeout(wait);
            }
            self.stats.mdns_advertising.store(0, Ordering::Relaxed);
        }
        for task in self.tasks.drain(..) {
            ctx.cancel_future(task);
        }
    }
}

impl Actor for Discovery {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        self.actors.set("discovery", ActorState::Running);
        if self.config.mdns {
            let advert = Advert {
                name: self.facts.name.clone(),
                host: self.facts.host.clone(),
                ws_port: self.facts.ws_port,
                auth: self.facts.auth,
                tls: self.facts.tls,
            };
            match super::mdns::advertise(&advert) {
                Ok(daemon) => {
                    self.mdns = Some(daemon);
                    self.stats.mdns_advertising.store(1, Ordering::Relaxed);
                }
                Err(e) => {
                    tracing::warn!(error = %e, "mdns: cannot advertise; the relay runs without it")
                }
            }
        }
        if let Some(port) = self.config.broadcast_port {
            let responder = Responder {
                name: self.facts.name.clone(),
                ws_port: self.facts.ws_port,
                auth: self.facts.auth,
                tls: self.facts.tls,
            };
            let (stats, host, ready) = (
                self.stats.clone(),
                self.facts.host.clone(),
                self.socket.take(),
            );
            let task = async move {
                let socket = match ready {
                    Some(s) => s,
                    None => match super::broadcast::bind(&host, port) {
                        Ok(s) => s,
                        Err(e) => {
                            tracing::warn!(error = %e, port, "broadcast: cannot bind; the relay runs without it");
                            return;
                        }
                    },
                };
                super::broadcast::serve(socket, responder, stats).await;
            };
            self.tasks.push(ctx.spawn(task.into_actor(self)));
        }
        if let Some(register) = self.config.register.clone() {
            let entry = SelfEntry {
                name: self.facts.name.clone(),
                host: self.facts.host.clone(),
                ws_port: self.facts.ws_port,
                tls: self.facts.tls,
                auth: self.facts.auth,
            };
            let task = super::register::keep_registered(entry, register, self.registration.clone());
            self.tasks.push(ctx.spawn(task.into_actor(self)));
        }
    }

    fn stopped(&mut self, ctx: &mut Self::Context) {
        self.stop_sources(ctx);
    }
}

impl Supervised for Discovery {
    fn restarting(&mut self, ctx: &mut Self::Context) {
        self.actors.set("discovery", ActorState::Restarting);
        self.stop_sources(ctx);
    }
}

/// Stops advertising and unregisters from the rendezvous (answers once done).
#[derive(Message)]
#[rtype(result = "()")]
pub struct Shutdown;

impl Handler<Shutdown> for Discovery {
    type Result = ResponseActFuture<Self, ()>;

    fn handle(&mut self, _: Shutdown, ctx: &mut Self::Context) -> Self::Result {
        self.stop_sources(ctx);
        self.actors.set("discovery", ActorState::Stopped);
        let id = self
            .registration
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        let url = self.config.register.as_ref().map(|r| r.url.clone());
        let fut = async move {
            if let (Some(id), Some(url)) = (id, url) {
                let done = tokio::task::spawn_blocking(move || {
                    super::register::unregister(&url, &id, Duration::from_secs(2))
                })
                .await;
                if let Ok(Err(e)) = done {
                    tracing::debug!(error = %e, "rendezvous: unregister failed");
                }
            }
        };
        Box::pin(fut.into_actor(self))
    }
}

/// A relay's running discovery: the actor and, when on, the rendezvous service.
pub struct DiscoveryHandle {
    actor: Addr<Discovery>,
    rendezvous: Option<RendezvousServer>,
    broadcast_addr: Option<SocketAddr>,
    /// Counters, also registered with /metrics.
    pub stats: Arc<DiscoveryStats>,
}

impl DiscoveryHandle {
    /// Starts what `config` asks for. The rendezvous port is bound here, so a port in use
    /// fails the relay's start with a clear error; a broadcast port in use only costs the
    /// responder (logged). Must run inside an actix system.
    pub fn start(
        mut config: DiscoveryConfig,
        facts: RelayFacts,
        actors: ActorTable,
    ) -> std::io::Result<Self> {
        let stats = Arc::new(DiscoveryStats::default());
        // Several relays on one machine cannot all answer on one UDP port: the first one
        // does, the others run without a responder (and say so).
        let socket = match config.broadcast_port {
            Some(port) => match super::broadcast::bind(&facts.host, port) {
                Ok(s) => Some(s),
                Err(e) => {
                    tracing::warn!(error = %e, port, "broadcast: cannot bind the responder's port; this relay will not answer broadcasts");
                    None
                }
            },
            None => None,
        };
        if socket.is_none() {
            config.broadcast_port = None;
        }
        let broadcast_addr = socket.as_ref().and_then(|s| s.local_addr().ok());
        let rendezvous = match config.rendezvous.clone() {
            Some(rc) => {
                let port = rc.port;
                Some(
                    super::rendezvous::start(&facts.host, rc, stats.clone()).map_err(|e| {
                        std::io::Error::new(
                            e.kind(),
                            format!("rendezvous port {}:{port}: {e}", facts.host),
                        )
                    })?,
                )
            }
            None => None,
        };
        if let Some(addr) = broadcast_addr {
            tracing::info!(%addr, "broadcast responder listening");
        }
        let (s, a) = (stats.clone(), actors.clone());
        let actor = Supervisor::start(move |_| Discovery {
            config,
            facts,
            stats: s,
            actors: a,
            socket,
            mdns: None,
            tasks: Vec::new(),
            registration: Arc::new(Mutex::new(None)),
        });
        Ok(Self {
            actor,
            rendezvous,
            broadcast_addr,
            stats,
        })
    }

    /// The rendezvous service's bound addresses (empty when it is off).
    pub fn rendezvous_addrs(&self) -> &[SocketAddr] {
        self.rendezvous.as_ref().map_or(&[], |r| &r.addrs)
    }

    /// The broadcast responder's bound address.
    pub fn broadcast_addr(&self) -> Option<SocketAddr> {
        self.broadcast_addr
    }

    /// The actor's address.
    pub fn actor(&self) -> &Addr<Discovery> {
        &self.actor
    }

    /// Stops advertising, unregisters, and stops the rendezvous service.
    pub async fn shutdown(&mut self) {
        let _ = self.actor.send(Shutdown).await;
        if let Some(r) = self.rendezvous.take() {
            r.server.stop(true).await;
        }
    }
}
