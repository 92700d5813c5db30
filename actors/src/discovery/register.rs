//! The client side of a rendezvous service: a relay registering itself with another relay's
//! rendezvous and refreshing the entry (DI-4), and lookups for [`super::discover`].

use std::net::{IpAddr, UdpSocket};
use std::time::Duration;

use super::rendezvous::{Entry, Registered};
use super::{DiscoveryError, Found, Source};

/// `--rendezvous-url` settings.
#[derive(Debug, Clone)]
pub struct RegisterConfig {
    /// Base URL of the rendezvous service (`http://host:7340`).
    pub url: String,
    /// Time between refreshes (keep it below the service's TTL).
    pub refresh: Duration,
    /// Tags to register with.
    pub tags: Vec<String>,
    /// The WebSocket URL to register (`None`: `ws://<address toward the service>:<port>`).
    pub advertise_url: Option<String>,
}

/// What a relay registers about itself.
#[derive(Debug, Clone)]
pub struct SelfEntry {
    /// Relay name.
    pub name: String,
    /// Bind host.
    pub host: String,
    /// WebSocket port.
    pub ws_port: u16,
    /// Whether the port speaks TLS.
    pub tls: bool,
    /// Whether HELLO needs a token.
    pub auth: bool,
}

fn agent(timeout: Duration) -> ureq::Agent {
    ureq::AgentBuilder::new().timeout(timeout).build()
}

fn base(url: &str) -> &str {
    url.trim_end_matches('/')
}

fn failed(url: &str, reason: impl std::fmt::Display) -> DiscoveryError {
    DiscoveryError::Rendezvous {
        url: url.to_string(),
        reason: reason.to_string(),
    }
}

/// The local address packets to `url`'s host would leave from (no packet is sent: a UDP
/// `connect` only picks the route).
fn local_address_toward(url: &str) -> Option<IpAddr> {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let authority = rest.split('/').next()?;
    let target = if authority.contains(':') {
        authority.to_string()
    } else {
        format!("{authority}:80")
    };
    let socket = UdpSocket::bind("0.0.0.0:0").ok()?;
    socket.connect(target).ok()?;
    socket.local_addr().ok().map(|a| a.ip())
}

impl SelfEntry {
    /// The WebSocket URL others should use.
    fn ws_url(&self, config: &RegisterConfig) -> String {
        if let Some(url) = &config.advertise_url {
            return url.clone();
        }
        let host = match self.host.parse::<IpAddr>() {
            Ok(ip) if !ip.is_unspecified() => ip,
            _ => local_address_toward(&config.url).unwrap_or(IpAddr::from([127, 0, 0, 1])),
        };
        let host = match host {
            IpAddr::V4(v4) => v4.to_string(),
            IpAddr::V6(v6) => format!("[{v6}]"),
        };
        let scheme = if self.tls { "wss" } else { "ws" };
        format!("{scheme}://{host}:{}", self.ws_port)
    }

    fn body(&self, config: &RegisterConfig) -> serde_json::Value {
        serde_json::json!({
            "name": self.name,
            "features": ["param", "event", "stream", "gesture", "timeline"],
            "endpoints": { "ws": self.ws_url(config) },
            "tags": config.tags,
            "metadata": { "auth": self.auth, "relay": env!("CARGO_PKG_VERSION") },
        })
    }
}

/// Registers once; the id of the new entry. Blocking.
pub fn register(
    entry: &SelfEntry,
    config: &RegisterConfig,
    timeout: Duration,
) -> Result<String, DiscoveryError> {
    let url = format!("{}/api/v1/register", base(&config.url));
    let answer: Registered = agent(timeout)
        .post(&url)
        .send_json(entry.body(config))
        .map_err(|e| failed(&config.url, e))?
        .into_json()
        .map_err(|e| failed(&config.url, e))?;
    Ok(answer.id)
}

/// Refreshes an entry: `Ok(false)` when the service no longer knows it (expired or the
/// service restarted), so the caller registers again. Blocking.
pub fn refresh(url: &str, id: &str, timeout: Duration) -> Result<bool, DiscoveryError> {
    let endpoint = format!("{}/api/v1/refresh/{id}", base(url));
    match agent(timeout).post(&endpoint).call() {
        Ok(_) => Ok(true),
        Err(ureq::Error::Status(404, _)) => Ok(false),
        Err(e) => Err(failed(url, e)),
    }
}

/// Removes an entry (best effort at shutdown). Blocking.
pub fn unregister(url: &str, id: &str, timeout: Duration) -> Result<(), DiscoveryError> {
    let endpoint = format!("{}/api/v1/unregister/{id}", base(url));
    match agent(timeout).delete(&endpoint).call() {
        Ok(_) | Err(ureq::Error::Status(404, _)) => Ok(()),
        Err(e) => Err(failed(url, e)),
    }
}

/// The relays a rendezvous service lists (entries with a `ws` or `wss` endpoint). Blocking.
pub fn list(url: &str, tag: Option<&str>, timeout: Duration) -> Result<Vec<Found>, DiscoveryError> {
    let endpoint = format!("{}/api/v1/discover", base(url));
    let mut request = agent(timeout).get(&endpoint).query("limit", "1000");
    if let Some(tag) = tag {
        request = request.query("tag", tag);
    }
    let entries: Vec<Entry> = request
        .call()
        .map_err(|e| failed(url, e))?
        .into_json()
        .map_err(|e| failed(url, e))?;
    Ok(entries
        .into_iter()
        .filter_map(|e| {
            let ws = e
                .endpoints
                .get("ws")
                .or_else(|| e.endpoints.get("wss"))?
                .clone();
            Some(Found {
                name: e.name,
                url: ws,
                source: Source::Rendezvous,
            })
        })
        .collect())
}

/// Keeps this relay registered for as long as the task runs: registers, refreshes every
/// `config.refresh`, registers again when the service forgot it, retries failures after a
/// short pause. Publishes the current id through `current` so shutdown can unregister.
pub async fn keep_registered(
    entry: SelfEntry,
    config: RegisterConfig,
    current: std::sync::Arc<std::sync::Mutex<Option<String>>>,
) {
    let timeout = Duration::from_secs(5);
    let retry = config.refresh.min(Duration::from_secs(5));
    let mut id: Option<String> = None;
    loop {
        let (e, c, known) = (entry.clone(), config.clone(), id.clone());
        let step = tokio::task::spawn_blocking(move || match known {
            Some(id) => refresh(&c.url, &id, timeout).map(|live| live.then_some(id)),
            None => register(&e, &c, timeout).map(Some),
        })
        .await;
        let pause = match step {
            Ok(Ok(Some(new))) => {
                if id.as_deref() != Some(new.as_str()) {
                    tracing::info!(url = %config.url, id = %new, "registered with rendezvous");
                }
                id = Some(new);
                config.refresh
            }
            Ok(Ok(None)) => {
                tracing::info!(url = %config.url, "rendezvous forgot this relay; registering again");
                id = None;
                Duration::ZERO
            }
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "rendezvous registration failed; retrying");
                retry
            }
            Err(_) => retry,
        };
        *current.lock().unwrap_or_else(|p| p.into_inner()) = id.clone();
        tokio::time::sleep(pause).await;
    }
}
