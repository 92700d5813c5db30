//! Assembles and runs a relay: shards under supervisors on their own arbiters, the HTTP/WS
//! listener, and the SIGTERM/SIGINT drain.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::prelude::*;
use actix_web::{web, App, HttpServer};

use crate::auth::http::AuthApi;
use crate::auth::Auth;
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
    /// The TLS certificate or key is unusable.
    #[error("tls: {0}")]
    Tls(#[from] crate::tls::TlsError),
    /// The journal or snapshot file could not be opened or read.
    #[error("journal: {0}")]
    Journal(#[from] crate::journal::JournalError),
    /// Authentication could not start (database, admin token, trust anchors).
    #[error("auth: {0}")]
    Auth(#[from] crate::auth::actor::AuthStartError),
    /// The rules file is unreadable or invalid (it names the rule and field).
    #[error("{0}")]
    Rules(#[from] crate::rules::RulesError),
    /// The app config is unreadable or invalid (it names the entry and field).
    #[error(transparent)]
    AppConfig(#[from] crate::appconfig::AppConfigError),
    /// A discovery port (broadcast, rendezvous) could not be bound.
    #[error("discovery: {0}")]
    Discovery(std::io::Error),
}

/// Binds an `HttpServer` to `addr`, with TLS when a configuration is given: the relay's port
/// and the auth port bind the same way. (A macro: the server's generic bounds are long.)
macro_rules! bind_server {
    ($server:expr, $addr:expr, $tls:expr) => {
        match $tls {
            Some(tls) => $server.bind_rustls_0_23($addr, tls),
            None => $server.bind($addr),
        }
        .map_err(|source| RelayError::Bind {
            addr: $addr.to_string(),
            source,
        })
    };
}

/// Extra HTTP routes on the relay's own port, added by whoever assembles the relay (the REST
/// and JSON WebSocket bridges): the relay serves them without knowing what they are.
pub type HttpMount = Arc<dyn Fn(&mut web::ServiceConfig, &Router) + Send + Sync>;

/// A running relay.
pub struct Relay {
    router: Router,
    server: actix_web::dev::ServerHandle,
    running: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
    addrs: Vec<SocketAddr>,
    auth_addrs: Vec<SocketAddr>,
    auth_server: Option<actix_web::dev::ServerHandle>,
    arbiters: Vec<Arbiter>,
    auth_arbiter: Option<Arbiter>,
    durability: crate::journal::Durability,
    rules: Option<(Arbiter, Addr<crate::rules::Rules>)>,
    discovery: Option<crate::discovery::DiscoveryHandle>,
}

impl Relay {
    /// Starts shards and the listener. Must run inside an actix `System`.
    pub fn start(config: RelayConfig) -> Result<Self, RelayError> {
        Self::start_with(config, Vec::new())
    }

    /// Starts the relay with extra routes on its port (mounted before the WebSocket entry).
    pub fn start_with(config: RelayConfig, mounts: Vec<HttpMount>) -> Result<Self, RelayError> {
        let config = Arc::new(config);
        let actors = ActorTable::default();
        let total = Arc::new(AtomicUsize::new(0));
        let limits = StoreLimits {
            max_params: config.max_params,
            eviction: config.eviction,
            default_ttl: config.param_ttl,
            total: total.clone(),
        };
        let mut durability = crate::journal::open(&config)?;
        if durability.actor.is_some() {
            actors.set("journal", ActorState::Running);
        }
        let count = config.shards.max(1);
        let hasher = std::collections::hash_map::RandomState::new();
        let recovered = crate::router::partition_by_shard(
            &hasher,
            count,
            std::mem::take(&mut durability.recovered)
                .into_iter()
                .flatten(),
        );
        let journal = durability.actor.clone().filter(|_| durability.journaling);
        let federation =
            crate::federation::Federation::new(crate::router::federation_config(&config));
        let mut arbiters = Vec::new();
        let mut shards = Vec::new();
        for (i, restored) in recovered.into_iter().enumerate() {
            let arbiter = Arbiter::new();
            let (cfg, lim, table) = (config.clone(), limits.clone(), actors.clone());
            let journal = journal.clone();
            let fed = federation.clone();
            shards.push(Supervisor::start_in_arbiter(&arbiter.handle(), move |_| {
                Shard::new(i, cfg, lim, table)
                    .with_journal(journal)
                    .with_federation(fed)
                    .with_restored(restored)
            }));
            arbiters.push(arbiter);
        }
        let mut router = Router::new(config.clone(), shards, total, actors.clone(), hasher)
            .with_journal(journal)
            .with_federation(federation.clone());
        router.metrics.add(Arc::new(federation));
        if durability.journaling {
            router.journal_progress = Some(crate::router::JournalProgress {
                assigned: durability.assigned.clone(),
                committed: durability.committed.clone(),
            });
        }
        if let Some(j) = durability.actor.clone() {
            let (shards, assigned) = (router.shards().to_vec(), durability.assigned.clone());
            let every = durability.snapshot_every;
            actix_web::rt::spawn(async move {
                let mut tick = tokio::time::interval(every);
                tick.tick().await;
                loop {
                    tick.tick().await;
                    match crate::journal::snapshot(&j, &shards, &assigned).await {
                        Ok(n) => tracing::debug!(params = n, "snapshot written"),
                        Err(e) => tracing::warn!(error = %e, "snapshot failed"),
                    }
                }
            });
        }
        let mut auth_addrs = Vec::new();
        let mut auth_arbiter = None;
        let mut auth_server = None;
        if let Some(auth_config) = &config.auth {
            let auth = Auth::open(auth_config.clone())?;
            let arbiter = Arbiter::new();
            let started = Supervisor::start_in_arbiter(&arbiter.handle(), move |_| auth);
            auth_arbiter = Some(arbiter);
            actors.set("auth", ActorState::Running);
            router = router.with_auth(started);
            tracing::info!(db = %auth_config.db.display(), "authentication required");
        }
        let tls = match &config.tls {
            Some(files) => Some(crate::tls::server_config(&files.cert, &files.key)?),
            None => None,
        };
        let api = AuthApi(router.auth.clone());
        let rules = match &config.rules {
            Some(path) => Some(start_rules(&router, path, config.rules_max_chain)?),
            None => None,
        };
        let rules_api = crate::rules::RulesApi(rules.as_ref().map(|(_, a)| a.clone()));
        if let Some(port) = config.auth.as_ref().and_then(|a| a.auth_port) {
            let (addrs, handle) = start_auth_port(
                &config.host,
                port,
                api.clone(),
                tls.clone(),
                cors_origins(&config),
            )?;
            auth_addrs = addrs;
            auth_server = Some(handle);
        }
        let app_router = router.clone();
        let mounts: Arc<[HttpMount]> = mounts.into();
        let bind = format!("{}:{}", config.host, config.port);
        let origins = cors_origins(&config);
        let server = HttpServer::new(move || {
            App::new()
                .wrap(crate::auth::http::cors(&origins))
                .app_data(web::Data::new(app_router.clone()))
                .app_data(web::Data::new(api.clone()))
                .configure(crate::auth::http::routes)
                .app_data(web::Data::new(rules_api.clone()))
                .configure(crate::rules::http::routes)
                .configure(crate::sessions_api::routes)
                .configure(|cfg| {
                    for mount in mounts.iter() {
                        mount(cfg, &app_router);
                    }
                })
                .default_service(web::to(crate::listener::entry))
        })
        .workers(config.shards.clamp(1, 8))
        // Small frames must not wait for Nagle: routing latency is the product.
        .tcp_nodelay(true)
        .disable_signals()
        .shutdown_timeout(1);
        let server = bind_server!(server, &bind, tls)?;
        let addrs = server.addrs();
        let server = server.run();
        let handle = server.handle();
        // The server only accepts while its future is polled: run it on this arbiter.
        let running = actix_web::rt::spawn(server);
        crate::federation::start_uplink(&router);
        tracing::info!(addr = %bind, shards = config.shards, name = %config.name, "relay listening");
        let discovery = start_discovery(&config, &router, &addrs)?;
        Ok(Self {
            router,
            server: handle,
            running: Some(running),
            addrs,
            auth_addrs,
            auth_server,
            arbiters,
            auth_arbiter,
            durability,
            rules,
            discovery,
        })
    }

    /// The relay's discovery (mDNS, broadcast, rendezvous), when any of it is on.
    pub fn discovery(&self) -> Option<&crate::discovery::DiscoveryHandle> {
        self.discovery.as_ref()
    }

    /// The addresses of the separate auth API port, when `auth_port` is set.
    pub fn auth_addrs(&self) -> &[SocketAddr] {
        &self.auth_addrs
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
        let rules = self.rules.as_ref().map(|(_, a)| a.clone());
        tokio::select! {
            result = serve => { result?; }
            _ = shutdown_signal() => {
                tracing::info!("shutdown signal: draining");
                self.drain().await;
            }
            _ = reload_on_hangup(rules, self.router.clone()) => {}
        }
        Ok(())
    }

    /// Stops accepting sessions, closes the open ones after their queued frames are written,
    /// waits up to the drain timeout for them to go, then stops everything.
    pub async fn drain(&mut self) {
        self.router.draining.store(true, Ordering::Relaxed);
        if let Some(mut discovery) = self.discovery.take() {
            discovery.shutdown().await;
        }
        let open = self.router.close_all();
        let deadline = Instant::now() + self.router.config.drain_timeout;
        while self.router.session_count.load(Ordering::Relaxed) > 0 && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let left = self.router.session_count.load(Ordering::Relaxed);
        tracing::info!(closed = open - left.min(open), left, "drained");
        self.server.stop(true).await;
        if let Some(j) = self.durability.actor.clone() {
            match crate::journal::snapshot(&j, self.router.shards(), &self.durability.assigned)
                .await
            {
                Ok(n) => tracing::info!(params = n, "final snapshot written"),
                Err(e) => tracing::error!(error = %e, "final snapshot failed"),
            }
        }
        if let Some(arbiter) = self.durability.arbiter.take() {
            self.router.actors.set("journal", ActorState::Stopped);
            arbiter.stop();
        }
        if let Some(auth_server) = self.auth_server.take() {
            auth_server.stop(true).await;
        }
        if let Some((arbiter, _)) = self.rules.take() {
            self.router.actors.set("rules", ActorState::Stopped);
            arbiter.stop();
        }
        if let Some(arbiter) = self.auth_arbiter.take() {
            self.router.actors.set("auth", ActorState::Stopped);
            arbiter.stop();
        }
        for (i, arbiter) in self.arbiters.drain(..).enumerate() {
            self.router
                .actors
                .set(&format!("shard-{i}"), ActorState::Stopped);
            arbiter.stop();
        }
    }
}

/// Starts the `Discovery` actor (and the rendezvous service) when the config asks for any of
/// it, publishing the port the listener actually bound.
fn start_discovery(
    config: &RelayConfig,
    router: &Router,
    addrs: &[SocketAddr],
) -> Result<Option<crate::discovery::DiscoveryHandle>, RelayError> {
    if !config.discovery.any() {
        return Ok(None);
    }
    let facts = crate::discovery::actor::RelayFacts {
        name: config.name.clone(),
        host: config.host.clone(),
        ws_port: addrs.first().map_or(config.port, |a| a.port()),
        auth: config.auth.is_some(),
        tls: config.tls.is_some(),
    };
    let handle = crate::discovery::DiscoveryHandle::start(
        config.discovery.clone(),
        facts,
        router.actors.clone(),
    )
    .map_err(RelayError::Discovery)?;
    router.metrics.add(handle.stats.clone());
    Ok(Some(handle))
}

/// The origins allowed to call the HTTP API from a browser (empty: any).
fn cors_origins(config: &RelayConfig) -> Vec<String> {
    let origins = config
        .auth
        .as_ref()
        .map(|a| a.cors_origins.clone())
        .unwrap_or_default();
    if config.auth.is_some() && origins.is_empty() {
        tracing::warn!("no --cors-origin: any web page may call the auth API (list the console's origins to restrict it)");
    }
    origins
}

/// Serves only the auth and registry API on a port of its own (FEATURES AU-1's auth port).
fn start_auth_port(
    host: &str,
    port: u16,
    api: AuthApi,
    tls: Option<rustls::ServerConfig>,
    origins: Vec<String>,
) -> Result<(Vec<SocketAddr>, actix_web::dev::ServerHandle), RelayError> {
    let bind = format!("{host}:{port}");
    let server = HttpServer::new(move || {
        App::new()
            .wrap(crate::auth::http::cors(&origins))
            .app_data(web::Data::new(api.clone()))
            .configure(crate::auth::http::routes)
    })
    .workers(1)
    .disable_signals()
    .shutdown_timeout(1);
    let server = bind_server!(server, &bind, tls)?;
    let addrs = server.addrs();
    let server = server.run();
    let handle = server.handle();
    actix_web::rt::spawn(server);
    tracing::info!(addr = %bind, "auth API listening");
    Ok((addrs, handle))
}

/// Loads and validates the rules file, then starts the `Rules` actor under a supervisor on
/// an arbiter of its own: a bad file fails startup, and a busy rule never slows a shard.
fn start_rules(
    router: &Router,
    path: &std::path::Path,
    max_chain: usize,
) -> Result<(Arbiter, Addr<crate::rules::Rules>), RelayError> {
    let rules = crate::rules::load(path)?;
    tracing::info!(rules = rules.len(), file = %path.display(), "rules loaded");
    let (router, path) = (router.clone(), path.to_path_buf());
    let arbiter = Arbiter::new();
    let addr = Supervisor::start_in_arbiter(&arbiter.handle(), move |_| {
        crate::rules::Rules::new(router, path, rules, max_chain)
    });
    Ok((arbiter, addr))
}

/// Reloads the rules and the app config on every SIGHUP for as long as the relay runs (it
/// never returns). A bad file leaves the old one in force; the log says why.
async fn reload_on_hangup(rules: Option<Addr<crate::rules::Rules>>, router: Router) {
    #[cfg(unix)]
    match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()) {
        Ok(mut hup) => {
            while hup.recv().await.is_some() {
                reload_app_config(&router);
                match &rules {
                    Some(r) => {
                        if r.send(crate::rules::Reload).await.is_err() {
                            tracing::warn!("SIGHUP: rules engine unavailable");
                        }
                    }
                    None => tracing::info!("SIGHUP: no rules file to reload"),
                }
            }
        }
        Err(e) => tracing::warn!(error = %e, "cannot listen for SIGHUP"),
    }
    #[cfg(not(unix))]
    let _ = (rules, router);
    std::future::pending::<()>().await
}

/// Swaps in the app config file's current content: write rules, visibility and redaction
/// apply to every session's next request. (Param strategies and scope templates are read at
/// start only.)
fn reload_app_config(router: &Router) {
    let Some(path) = &router.config.app_config_path else {
        return;
    };
    match crate::appconfig::AppConfig::load(path) {
        Ok(app) => {
            router.app_config.store(Some(Arc::new(app)));
            tracing::info!(file = %path.display(), "SIGHUP: app config reloaded");
        }
        Err(e) => {
            tracing::error!(error = %e, "SIGHUP: app config not reloaded; the old one stays in force")
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
