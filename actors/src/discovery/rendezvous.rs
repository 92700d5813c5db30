//! The rendezvous service (DI-3): an HTTP registry where relays (and devices) register
//! themselves and clients look them up, for networks where multicast and broadcast do not
//! reach. The registry is the [`Rendezvous`] actor's memory: bounded in entries (in total
//! and per client address) and in the size of each entry; entries expire after the TTL
//! unless refreshed.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use actix::prelude::*;
use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer};
use serde::{Deserialize, Serialize};

use super::DiscoveryStats;

/// Largest request body accepted.
pub const MAX_BODY: usize = 16 * 1024;
/// Longest name, tag, feature or endpoint key.
const MAX_LABEL: usize = 128;
/// Longest endpoint URL or public key.
const MAX_URL: usize = 512;
/// Most tags, features or endpoints in one entry.
const MAX_ITEMS: usize = 32;
/// Largest `metadata` object, serialized.
const MAX_METADATA: usize = 4096;
/// `limit` when a discover request gives none, and the most it may ask for.
const DEFAULT_LIMIT: usize = 100;
const MAX_LIMIT: usize = 1000;

/// Rendezvous settings.
#[derive(Debug, Clone)]
pub struct RendezvousConfig {
    /// HTTP port (0: any free port).
    pub port: u16,
    /// An entry not refreshed for this long is dropped.
    pub ttl: Duration,
    /// Most entries in total.
    pub max_entries: usize,
    /// Most entries registered from one client address (0: no limit).
    pub max_per_ip: usize,
}

impl Default for RendezvousConfig {
    fn default() -> Self {
        Self {
            port: super::DEFAULT_RENDEZVOUS_PORT,
            ttl: Duration::from_secs(300),
            max_entries: 10_000,
            max_per_ip: 10,
        }
    }
}

/// A registration request (`POST /api/v1/register`).
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Registration {
    /// Display name.
    pub name: String,
    /// The device's public key, if it has one.
    #[serde(default)]
    pub public_key: Option<String>,
    /// Feature names.
    #[serde(default)]
    pub features: Vec<String>,
    /// Where to reach it, by transport (`ws` → `ws://host:port`).
    #[serde(default)]
    pub endpoints: std::collections::BTreeMap<String, String>,
    /// Tags to look it up by.
    #[serde(default)]
    pub tags: Vec<String>,
    /// Anything else, as a JSON object.
    #[serde(default)]
    pub metadata: serde_json::Map<String, serde_json::Value>,
}

impl Registration {
    /// Checks the sizes, naming the field that is wrong.
    pub fn validate(&self) -> Result<(), RendezvousError> {
        let bad = |msg: String| Err(RendezvousError::Invalid(msg));
        if self.name.trim().is_empty() || self.name.len() > MAX_LABEL {
            return bad(format!("name must have 1 to {MAX_LABEL} bytes"));
        }
        if self.public_key.as_ref().is_some_and(|k| k.len() > MAX_URL) {
            return bad(format!("publicKey is longer than {MAX_URL} bytes"));
        }
        for (field, list) in [("features", &self.features), ("tags", &self.tags)] {
            if list.len() > MAX_ITEMS {
                return bad(format!("{field}: at most {MAX_ITEMS} entries"));
            }
            if list.iter().any(|s| s.is_empty() || s.len() > MAX_LABEL) {
                return bad(format!("{field}: each must have 1 to {MAX_LABEL} bytes"));
            }
        }
        if self.endpoints.len() > MAX_ITEMS {
            return bad(format!("endpoints: at most {MAX_ITEMS} entries"));
        }
        if self
            .endpoints
            .iter()
            .any(|(k, v)| k.is_empty() || k.len() > MAX_LABEL || v.len() > MAX_URL)
        {
            return bad(format!(
                "endpoints: keys of 1 to {MAX_LABEL} bytes, URLs of at most {MAX_URL}"
            ));
        }
        let meta = serde_json::to_string(&self.metadata).map_or(usize::MAX, |s| s.len());
        if meta > MAX_METADATA {
            return bad(format!("metadata is larger than {MAX_METADATA} bytes"));
        }
        Ok(())
    }
}

/// A registered device as `discover` lists it.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Entry {
    /// Registry id.
    pub id: String,
    /// Display name.
    pub name: String,
    /// Public key, when given.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub public_key: Option<String>,
    /// Feature names.
    pub features: Vec<String>,
    /// Endpoints by transport.
    pub endpoints: std::collections::BTreeMap<String, String>,
    /// Tags.
    pub tags: Vec<String>,
    /// Metadata object.
    pub metadata: serde_json::Map<String, serde_json::Value>,
    /// When it registered, ms since the Unix epoch.
    pub registered_at: u64,
    /// When it last registered or refreshed, ms since the Unix epoch.
    pub last_seen: u64,
}

/// The answer to register and refresh.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Registered {
    /// Registry id (for refresh and unregister).
    pub id: String,
    /// Server time, ms since the Unix epoch.
    pub timestamp: u64,
    /// Seconds until the entry expires unless refreshed.
    pub ttl: u64,
}

/// Why a request was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RendezvousError {
    /// The body is not a valid registration.
    #[error("{0}")]
    Invalid(String),
    /// The registry holds its maximum.
    #[error("registry full: at most {0} entries")]
    Full(usize),
    /// This client address has registered its maximum.
    #[error("too many registrations from {ip}: at most {max} per address")]
    PerIp {
        /// The client address.
        ip: IpAddr,
        /// The limit.
        max: usize,
    },
    /// No such id (never registered, unregistered, or expired).
    #[error("no registration with id {0}")]
    NotFound(String),
}

impl RendezvousError {
    fn response(&self) -> HttpResponse {
        let body = serde_json::json!({ "error": self.to_string() });
        match self {
            RendezvousError::Invalid(_) => HttpResponse::BadRequest().json(body),
            RendezvousError::Full(_) => HttpResponse::ServiceUnavailable().json(body),
            RendezvousError::PerIp { .. } => HttpResponse::TooManyRequests().json(body),
            RendezvousError::NotFound(_) => HttpResponse::NotFound().json(body),
        }
    }
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

struct Stored {
    entry: Entry,
    from: IpAddr,
}

/// The registry: entries by id, in memory, swept of expired ones every few seconds.
pub struct Rendezvous {
    config: RendezvousConfig,
    entries: HashMap<String, Stored>,
    stats: Arc<DiscoveryStats>,
}

impl Rendezvous {
    /// An empty registry.
    pub fn new(config: RendezvousConfig, stats: Arc<DiscoveryStats>) -> Self {
        Self {
            config,
            entries: HashMap::new(),
            stats,
        }
    }

    fn ttl_ms(&self) -> u64 {
        u64::try_from(self.config.ttl.as_millis()).unwrap_or(u64::MAX)
    }

    fn expired(&self, stored: &Stored, now: u64) -> bool {
        stored.entry.last_seen.saturating_add(self.ttl_ms()) <= now
    }

    fn sweep(&mut self) {
        let now = now_ms();
        let ttl = self.ttl_ms();
        self.entries
            .retain(|_, s| s.entry.last_seen.saturating_add(ttl) > now);
        self.publish_count();
    }

    fn publish_count(&self) {
        self.stats
            .rendezvous_entries
            .store(self.entries.len() as u64, Ordering::Relaxed);
    }

    fn answer(&self, id: String, now: u64) -> Registered {
        Registered {
            id,
            timestamp: now,
            ttl: self.config.ttl.as_secs(),
        }
    }

    fn register(&mut self, r: Registration, from: IpAddr) -> Result<Registered, RendezvousError> {
        r.validate()?;
        self.sweep();
        if self.entries.len() >= self.config.max_entries {
            return Err(RendezvousError::Full(self.config.max_entries));
        }
        let max = self.config.max_per_ip;
        if max > 0 && self.entries.values().filter(|s| s.from == from).count() >= max {
            return Err(RendezvousError::PerIp { ip: from, max });
        }
        let now = now_ms();
        let id = uuid::Uuid::new_v4().to_string();
        let entry = Entry {
            id: id.clone(),
            name: r.name,
            public_key: r.public_key,
            features: r.features,
            endpoints: r.endpoints,
            tags: r.tags,
            metadata: r.metadata,
            registered_at: now,
            last_seen: now,
        };
        self.entries.insert(id.clone(), Stored { entry, from });
        self.publish_count();
        Ok(self.answer(id, now))
    }
}

impl Actor for Rendezvous {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        let every =
            (self.config.ttl / 4).clamp(Duration::from_millis(200), Duration::from_secs(30));
        ctx.run_interval(every, |act, _| act.sweep());
    }
}

impl Supervised for Rendezvous {}

/// Adds an entry.
#[derive(Message)]
#[rtype(result = "Result<Registered, RendezvousError>")]
pub struct Register {
    /// What to register.
    pub registration: Registration,
    /// Who asked (for the per-address limit).
    pub from: IpAddr,
}

impl Handler<Register> for Rendezvous {
    type Result = Result<Registered, RendezvousError>;
    fn handle(&mut self, msg: Register, _: &mut Self::Context) -> Self::Result {
        self.register(msg.registration, msg.from)
    }
}

/// Lists live entries, optionally those with a tag and/or a feature.
#[derive(Message, Debug, Default, Deserialize)]
#[rtype(result = "Vec<Entry>")]
pub struct Discover {
    /// Only entries with this tag.
    pub tag: Option<String>,
    /// Only entries with this feature.
    pub feature: Option<String>,
    /// At most this many (default 100, at most 1000).
    pub limit: Option<usize>,
}

impl Handler<Discover> for Rendezvous {
    type Result = Vec<Entry>;
    fn handle(&mut self, msg: Discover, _: &mut Self::Context) -> Self::Result {
        let now = now_ms();
        let limit = msg.limit.unwrap_or(DEFAULT_LIMIT).min(MAX_LIMIT);
        let mut list: Vec<Entry> = self
            .entries
            .values()
            .filter(|s| !self.expired(s, now))
            .map(|s| &s.entry)
            .filter(|e| msg.tag.as_ref().is_none_or(|t| e.tags.contains(t)))
            .filter(|e| msg.feature.as_ref().is_none_or(|f| e.features.contains(f)))
            .cloned()
            .collect();
        list.sort_by(|a, b| (a.registered_at, &a.id).cmp(&(b.registered_at, &b.id)));
        list.truncate(limit);
        list
    }
}

/// Keeps an entry alive for another TTL.
#[derive(Message)]
#[rtype(result = "Result<Registered, RendezvousError>")]
pub struct Refresh(pub String);

impl Handler<Refresh> for Rendezvous {
    type Result = Result<Registered, RendezvousError>;
    fn handle(&mut self, msg: Refresh, _: &mut Self::Context) -> Self::Result {
        let now = now_ms();
        let live = self
            .entries
            .get(&msg.0)
            .is_some_and(|s| !self.expired(s, now));
        match self.entries.get_mut(&msg.0) {
            Some(stored) if live => {
                stored.entry.last_seen = now;
                Ok(self.answer(msg.0, now))
            }
            _ => Err(RendezvousError::NotFound(msg.0)),
        }
    }
}

/// Removes an entry.
#[derive(Message)]
#[rtype(result = "Result<(), RendezvousError>")]
pub struct Unregister(pub String);

impl Handler<Unregister> for Rendezvous {
    type Result = Result<(), RendezvousError>;
    fn handle(&mut self, msg: Unregister, _: &mut Self::Context) -> Self::Result {
        let now = now_ms();
        match self.entries.remove(&msg.0) {
            Some(s) if !self.expired(&s, now) => {
                self.publish_count();
                Ok(())
            }
            _ => Err(RendezvousError::NotFound(msg.0)),
        }
    }
}

type Registry = web::Data<Addr<Rendezvous>>;

fn unavailable() -> HttpResponse {
    HttpResponse::ServiceUnavailable().json(serde_json::json!({"error": "registry unavailable"}))
}

fn client_ip(req: &HttpRequest) -> IpAddr {
    req.peer_addr()
        .map_or(IpAddr::from([0, 0, 0, 0]), |a| a.ip())
}

async fn register(req: HttpRequest, body: web::Bytes, registry: Registry) -> HttpResponse {
    let registration: Registration = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => {
            return RendezvousError::Invalid(format!("invalid registration JSON: {e}")).response()
        }
    };
    let from = client_ip(&req);
    match registry.send(Register { registration, from }).await {
        Ok(Ok(done)) => HttpResponse::Created().json(done),
        Ok(Err(e)) => e.response(),
        Err(_) => unavailable(),
    }
}

async fn discover(req: HttpRequest, registry: Registry) -> HttpResponse {
    let query = match web::Query::<Discover>::from_query(req.query_string()) {
        Ok(q) => q.into_inner(),
        Err(e) => return RendezvousError::Invalid(format!("invalid query: {e}")).response(),
    };
    match registry.send(query).await {
        Ok(list) => HttpResponse::Ok().json(list),
        Err(_) => unavailable(),
    }
}

async fn refresh(id: web::Path<String>, registry: Registry) -> HttpResponse {
    match registry.send(Refresh(id.into_inner())).await {
        Ok(Ok(done)) => HttpResponse::Ok().json(done),
        Ok(Err(e)) => e.response(),
        Err(_) => unavailable(),
    }
}

async fn unregister(id: web::Path<String>, registry: Registry) -> HttpResponse {
    match registry.send(Unregister(id.into_inner())).await {
        Ok(Ok(())) => HttpResponse::NoContent().finish(),
        Ok(Err(e)) => e.response(),
        Err(_) => unavailable(),
    }
}

async fn health() -> HttpResponse {
    HttpResponse::Ok().content_type("text/plain").body("OK")
}

/// The rendezvous routes under `/api/v1`.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.app_data(web::PayloadConfig::new(MAX_BODY)).service(
        web::scope("/api/v1")
            .route("/register", web::post().to(register))
            .route("/discover", web::get().to(discover))
            .route("/refresh/{id}", web::post().to(refresh))
            .route("/unregister/{id}", web::delete().to(unregister))
            .route("/health", web::get().to(health)),
    );
}

/// A running rendezvous service.
pub struct RendezvousServer {
    /// The registry actor.
    pub registry: Addr<Rendezvous>,
    /// Bound addresses (useful with port 0).
    pub addrs: Vec<SocketAddr>,
    /// Stops the HTTP server.
    pub server: actix_web::dev::ServerHandle,
}

/// Starts the registry actor (supervised) and its HTTP server on `host:config.port`, with
/// CORS open to any origin. Must run inside an actix system.
pub fn start(
    host: &str,
    config: RendezvousConfig,
    stats: Arc<DiscoveryStats>,
) -> std::io::Result<RendezvousServer> {
    let port = config.port;
    let registry = Supervisor::start(move |_| Rendezvous::new(config, stats));
    let data = web::Data::new(registry.clone());
    let server = HttpServer::new(move || {
        App::new()
            .wrap(actix_cors::Cors::permissive())
            .app_data(data.clone())
            .configure(routes)
    })
    .workers(1)
    .disable_signals()
    .shutdown_timeout(1)
    .bind((host, port))?;
    let addrs = server.addrs();
    let server = server.run();
    let handle = server.handle();
    actix_web::rt::spawn(server);
    tracing::info!(addr = ?addrs, "rendezvous listening");
    Ok(RendezvousServer {
        registry,
        addrs,
        server: handle,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn registry(max_entries: usize, max_per_ip: usize) -> Rendezvous {
        Rendezvous::new(
            RendezvousConfig {
                port: 0,
                ttl: Duration::from_secs(60),
                max_entries,
                max_per_ip,
            },
            Arc::default(),
        )
    }

    fn named(name: &str) -> Registration {
        Registration {
            name: name.into(),
            public_key: None,
            features: Vec::new(),
            endpoints: Default::default(),
            tags: Vec::new(),
            metadata: Default::default(),
        }
    }

    #[test]
    fn limits_per_address_and_in_total() {
        let (a, b) = (IpAddr::from([10, 0, 0, 1]), IpAddr::from([10, 0, 0, 2]));
        let mut r = registry(3, 2);
        assert!(r.register(named("1"), a).is_ok());
        assert!(r.register(named("2"), a).is_ok());
        assert_eq!(
            r.register(named("3"), a).err(),
            Some(RendezvousError::PerIp { ip: a, max: 2 })
        );
        assert!(r.register(named("3"), b).is_ok());
        assert_eq!(
            r.register(named("4"), b).err(),
            Some(RendezvousError::Full(3))
        );
    }

    #[test]
    fn oversized_fields_are_named_in_the_error() {
        let mut big = named("x");
        big.tags = (0..40).map(|i| i.to_string()).collect();
        let err = big
            .validate()
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(err.contains("tags"), "{err}");
        let mut blank = named(" ");
        assert!(blank.validate().is_err());
        blank.name = "y".repeat(129);
        assert!(blank.validate().is_err());
    }
}
