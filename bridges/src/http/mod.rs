//! HTTP REST ↔ CLASP (FEATURES HTTP-*): router state over plain HTTP for scripts, dashboards
//! and anything that cannot speak WebSocket. The same routes are mounted on the relay's own
//! port (always on, in-process link, the relay's auth and CORS) and served by the standalone
//! bridge (`clasp http --port 8080 --target ws://relay`) on a port of its own over a remote
//! link. See `docs/bridges/http.md`.

mod access;
mod body;
mod errors;
mod json;
mod openapi;
mod routes;
mod sse;
mod timefmt;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use actix_web::{web, App, HttpServer};
use clasp_actors::link::RouterLink;
use clasp_actors::relay::HttpMount;
use futures_util::future::LocalBoxFuture;

pub use access::Gate;
pub use errors::ApiError;
pub use openapi::document as openapi_document;
pub use routes::Api;

use crate::{Bridge, BridgeError, BridgeStats, Namespace};

/// Largest request body accepted by default (1 MiB).
pub const DEFAULT_MAX_BODY: usize = 1 << 20;

/// Settings of `clasp http` and `[[bridge]] kind = "http"`.
#[derive(Debug, Clone, clap::Args, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HttpConfig {
    /// Port of the standalone server.
    #[arg(long, default_value_t = 8080)]
    pub port: u16,
    /// Interface, or `host:port` (which then overrides --port).
    #[arg(long, short = 'b', default_value = "0.0.0.0")]
    pub bind: String,
    /// Address prefix (none by default: `/api/v1/state/a/b` is `/a/b`).
    #[arg(long, default_value = "")]
    pub namespace: Namespace,
    /// Origins allowed to call the API from a browser (repeatable; none or `*`: any).
    /// On the relay's port the relay's own CORS setting applies.
    #[arg(long = "cors", value_name = "ORIGIN")]
    pub cors: Vec<String>,
    /// Bearer token every request must carry (standalone; on the relay's port the relay's
    /// auth applies). The global --token is what the bridge itself uses to reach the relay.
    #[arg(long, value_name = "TOKEN")]
    pub access_token: Option<String>,
    /// Largest request body in bytes (413 beyond).
    #[arg(long, default_value_t = DEFAULT_MAX_BODY)]
    pub max_body: usize,
    /// Seconds between keep-alive comments on an idle SSE stream (a client that went away
    /// is noticed, and its subscription dropped, at the next one).
    #[arg(long, default_value_t = 15, value_name = "SECS")]
    pub sse_keepalive: u64,
}

impl Default for HttpConfig {
    fn default() -> Self {
        Self {
            port: 8080,
            bind: "0.0.0.0".into(),
            namespace: Namespace::none(),
            cors: Vec::new(),
            access_token: None,
            max_body: DEFAULT_MAX_BODY,
            sse_keepalive: 15,
        }
    }
}

impl HttpConfig {
    /// `host:port` to listen on: `--bind host:port` as given, else `--bind` with `--port`.
    pub fn listen_addr(&self) -> Result<String, BridgeError> {
        let bind = self.bind.trim();
        if bind.is_empty() {
            return Err(BridgeError::config("bind", "empty"));
        }
        if let Ok(addr) = bind.parse::<SocketAddr>() {
            return Ok(addr.to_string());
        }
        if let Ok(ip) = bind.parse::<std::net::IpAddr>() {
            return Ok(SocketAddr::new(ip, self.port).to_string());
        }
        match bind.rsplit_once(':') {
            Some((host, port)) if !host.is_empty() => {
                let port: u16 = port
                    .parse()
                    .map_err(|_| BridgeError::config("bind", format!("{bind:?}: bad port")))?;
                Ok(format!("{host}:{port}"))
            }
            _ => Ok(format!("{bind}:{}", self.port)),
        }
    }
}

/// The REST API mounted on the relay's own port: one in-process link per server worker,
/// the relay's auth (CLASP bearer tokens and their scopes) and the relay's CORS.
pub fn mount(config: HttpConfig) -> HttpMount {
    let stats = Arc::new(BridgeStats::new("http", "http"));
    let config = Arc::new(config);
    Arc::new(move |cfg, router| {
        let link = RouterLink::local(router, "http");
        let api = Api {
            link: link.clone(),
            watch: link.sibling("http-sse"),
            namespace: config.namespace.clone(),
            gate: Gate::Relay,
            max_body: config.max_body,
            keepalive: Duration::from_secs(config.sse_keepalive.clamp(1, 3600)),
            stats: stats.clone(),
        };
        routes::configure(cfg, web::Data::new(api));
    })
}

/// The standalone HTTP bridge (its own port).
pub struct HttpBridge {
    config: Arc<HttpConfig>,
}

impl HttpBridge {
    /// Checks the settings.
    pub fn new(config: HttpConfig) -> Result<Self, BridgeError> {
        config.listen_addr()?;
        if config.max_body == 0 {
            return Err(BridgeError::config("max-body", "must be at least 1"));
        }
        if config.sse_keepalive == 0 || config.sse_keepalive > 3600 {
            return Err(BridgeError::config(
                "sse-keepalive",
                "must be 1..=3600 seconds",
            ));
        }
        if config.access_token.as_deref() == Some("") {
            return Err(BridgeError::config("access-token", "empty"));
        }
        Ok(Self {
            config: Arc::new(config),
        })
    }
}

/// Stops the server when the bridge task ends (restart or shutdown).
struct StopOnDrop(actix_web::dev::ServerHandle);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        // The stop command is sent at once; its completion is not awaited.
        drop(self.0.stop(false));
    }
}

impl Bridge for HttpBridge {
    fn kind(&self) -> &'static str {
        "http"
    }

    fn name(&self) -> String {
        // The port actually used: `--bind host:port` overrides `--port`.
        let addr = self.config.listen_addr().unwrap_or_default();
        let port = addr.rsplit_once(':').map_or("", |(_, p)| p);
        format!("http:{port}")
    }

    fn run(
        &self,
        link: RouterLink,
        stats: Arc<BridgeStats>,
    ) -> LocalBoxFuture<'static, Result<(), BridgeError>> {
        let config = self.config.clone();
        Box::pin(async move {
            let addr = config.listen_addr()?;
            let gate = match &config.access_token {
                Some(t) => Gate::Static(Arc::from(t.as_str())),
                None => Gate::Relay,
            };
            let origins: Vec<String> = if config.cors.iter().any(|o| o == "*") {
                Vec::new()
            } else {
                config.cors.clone()
            };
            let (namespace, max_body, counters) =
                (config.namespace.clone(), config.max_body, stats.clone());
            let keepalive = Duration::from_secs(config.sse_keepalive.clamp(1, 3600));
            let watch = link.sibling("http-sse");
            let server = HttpServer::new(move || {
                let api = web::Data::new(Api {
                    link: link.clone(),
                    watch: watch.clone(),
                    namespace: namespace.clone(),
                    gate: gate.clone(),
                    max_body,
                    keepalive,
                    stats: counters.clone(),
                });
                App::new()
                    .wrap(clasp_actors::auth::http::cors(&origins))
                    .configure(|cfg| routes::configure(cfg, api))
            })
            .workers(2)
            .disable_signals()
            .shutdown_timeout(1)
            .bind(&addr)
            .map_err(|e| BridgeError::io(format!("cannot listen on {addr}"), e))?
            .run();
            let _stop = StopOnDrop(server.handle());
            stats.set_up(true);
            tracing::info!(%addr, "REST API listening");
            server
                .await
                .map_err(|e| BridgeError::io("REST API server", e))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_bind(bind: &str) -> HttpConfig {
        HttpConfig {
            bind: bind.into(),
            port: 8080,
            ..HttpConfig::default()
        }
    }

    #[test]
    fn bind_takes_a_host_or_host_and_port() {
        let addr = |b: &str| with_bind(b).listen_addr().ok();
        assert_eq!(addr("0.0.0.0").as_deref(), Some("0.0.0.0:8080"));
        assert_eq!(addr("127.0.0.1:3000").as_deref(), Some("127.0.0.1:3000"));
        assert_eq!(addr("::1").as_deref(), Some("[::1]:8080"));
        assert_eq!(addr("localhost").as_deref(), Some("localhost:8080"));
        assert_eq!(addr("localhost:81").as_deref(), Some("localhost:81"));
        assert_eq!(addr("localhost:x"), None);
        assert_eq!(addr(""), None);
    }

    #[test]
    fn name_follows_the_port_in_use() {
        let bridge = HttpBridge::new(with_bind("127.0.0.1:3000")).expect("valid");
        assert_eq!(bridge.name(), "http:3000");
    }
}
