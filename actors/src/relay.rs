//! Assembles and runs a relay: shards under supervisors on their own arbiters, the HTTP/WS
//! listener, and the SIGTERM/SIGINT drain.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::prelude::*;
use actix_web::{web, App, HttpServer};

use crate::config::RelayConfig;
use crate::health::{ActorState, ActorTable};
use crate::router::Router;
use crate::shard::{Shard, StoreLimits};

/// Why the relay could not start or run.
#[derive(Debug, thiserror::Error)]
pub enum RelayError {
    /// The listen address is taken or not allowed.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// host:port.
        addr: String,
        /// OS error.
        source: std::io::Error,
    },
    /// The HTTP server failed.
    #[error("server error: {0}")]
    Server(#[from] std::io::Error),
}

/// A running relay.
pub struct Relay {
    router: Router,
    server: actix_web::dev::ServerHandle,
    running: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
    addrs: Vec<SocketAddr>,
    arbiters: Vec<Arbiter>,
}

impl Relay {
    /// Starts shards and the listener. Must run inside an actix `System`.
    pub fn start(config: RelayConfig) -> Result<Self, RelayError> {
        let config = Arc::new(config);
        let actors = ActorTable::default();
        let total = Arc::new(AtomicUsize::new(0));
        let limits = StoreLimits {
            max_params: config.max_params,
            eviction: config.eviction,
            default_ttl: config.param_ttl,
            total: total.clone(),
        };
        let mut arbiters = Vec::new();
        let mut shards = Vec::new();
        for i in 0..config.shards.max(1) {
            let arbiter = Arbiter::new();
            let (cfg, lim, table) = (config.clone(), limits.clone(), actors.clone());
            shards.push(Supervisor::start_in_arbiter(&arbiter.handle(), move |_| {
                Shard::new(i, cfg, lim, table)
            }));
            arbiters.push(arbiter);
        }
        let router = Router::new(config.clone(), shards, total, actors);
        let app_router = router.clone();
        let bind = format!("{}:{}", config.host, config.port);
        let server = HttpServer::new(move || {
            App::new()
                .app_data(web::Data::new(app_router.clone()))
                .default_service(web::to(crate::listener::entry))
        })
        .workers(config.shards.clamp(1, 8))
        // Small frames must not wait for Nagle: routing latency is the product.
        .tcp_nodelay(true)
        .disable_signals()
        .shutdown_timeout(1)
        .bind(&bind)
        .map_err(|source| RelayError::Bind {
            addr: bind.clone(),
            source,
        })?;
        let addrs = server.addrs();
        let server = server.run();
        let handle = server.handle();
        // The server only accepts while its future is polled: run it on this arbiter.
        let running = actix_web::rt::spawn(server);
        tracing::info!(addr = %bind, shards = config.shards, name = %config.name, "relay listening");
        Ok(Self {
            router,
            server: handle,
            running: Some(running),
            addrs,
            arbiters,
        })
    }

    /// The bound addresses (useful with port 0).
    pub fn local_addrs(&self) -> &[SocketAddr] {
        &self.addrs
    }

    /// Shared router state (tests, embedding).
    pub fn router(&self) -> &Router {
        &self.router
    }

    /// Runs until SIGTERM or SIGINT, then drains.
    pub async fn run_until_signal(mut self) -> Result<(), RelayError> {
        let server = self.running.take();
        let serve = async move {
            match server {
                Some(s) => s.await.unwrap_or_else(|e| Err(std::io::Error::other(e))),
                None => Ok(()),
            }
        };
        tokio::select! {
            result = serve => { result?; }
            _ = shutdown_signal() => {
                tracing::info!("shutdown signal: draining");
                self.drain().await;
            }
        }
        Ok(())
    }

    /// Stops accepting sessions, closes the open ones after their queued frames are written,
    /// waits up to the drain timeout for them to go, then stops everything.
    pub async fn drain(&mut self) {
        self.router.draining.store(true, Ordering::Relaxed);
        let open = self.router.close_all();
        let deadline = Instant::now() + self.router.config.drain_timeout;
        while self.router.session_count.load(Ordering::Relaxed) > 0 && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let left = self.router.session_count.load(Ordering::Relaxed);
        tracing::info!(closed = open - left.min(open), left, "drained");
        self.server.stop(true).await;
        for (i, arbiter) in self.arbiters.drain(..).enumerate() {
            self.router
                .actors
                .set(&format!("shard-{i}"), ActorState::Stopped);
            arbiter.stop();
        }
    }
}

async fn shutdown_signal() {
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(e) => {
                    tracing::error!(error = %e, "cannot listen for SIGTERM");
                    let _ = tokio::signal::ctrl_c().await;
                    return;
                }
            };
        tokio::select! {
            _ = term.recv() => {}
            _ = tokio::signal::ctrl_c() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// Runs a relay on a fresh actix system until a shutdown signal; for the binary.
pub fn run_blocking(config: RelayConfig) -> Result<(), RelayError> {
    let system = actix::System::new();
    system.block_on(async move {
        let relay = Relay::start(config)?;
        relay.run_until_signal().await
    })
}
