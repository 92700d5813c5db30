//! JSON over WebSocket ↔ CLASP (FEATURES WSB-1..4), for web apps without a CLASP SDK.
//!
//! Server mode: web clients send JSON requests (`set`, `get`, `emit`, `stream`, `subscribe`,
//! `unsubscribe`, `snapshot`) and receive answers and the updates of their own
//! subscriptions, on a path of the relay's port ([`mount`]) or on a port of the bridge's own
//! ([`WsJsonBridge`]). Client mode: the bridge connects out to a JSON WebSocket service and
//! maps its messages to SETs, and CLASP changes back to it. See `docs/bridges/websocket.md`.

pub mod client;
mod fanout;
pub mod protocol;
mod server;
mod session;

use std::sync::atomic::AtomicU64;
use std::sync::Arc;

use actix_web::web;
use clasp_actors::health::ActorState;
use clasp_actors::link::RouterLink;
use clasp_actors::relay::HttpMount;
use futures_util::future::LocalBoxFuture;

use crate::{Bridge, BridgeError, BridgeStats, Namespace};

/// Which side of the WebSocket the bridge is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Serve web clients speaking the bridge's JSON protocol.
    #[default]
    Server,
    /// Connect out to a JSON WebSocket service (`--connect`).
    Client,
}

/// Settings of `clasp websocket` and `[[bridge]] kind = "websocket"`.
#[derive(Debug, Clone, clap::Args, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WsJsonConfig {
    /// Port of the standalone server.
    #[arg(long, default_value_t = 9100)]
    pub port: u16,
    /// Interface.
    #[arg(long, default_value = "0.0.0.0")]
    pub bind: String,
    /// Address prefix (none by default).
    #[arg(long, default_value = "")]
    pub namespace: Namespace,
    /// Serve web clients (server) or connect out to a JSON WebSocket service (client).
    #[arg(long, value_enum, default_value_t = Mode::Server)]
    pub mode: Mode,
    /// Server mode: the token web clients must send (`?token=` or `Authorization: Bearer`).
    /// Embedded in a relay with auth, clients send a CLASP token instead.
    #[arg(long, value_name = "TOKEN")]
    pub access_token: Option<String>,
    /// Largest frame a web client may send (bytes); a larger one closes it with 1009.
    #[arg(long, default_value_t = 65_536)]
    pub max_frame: usize,
    /// Messages queued for one web client before it is dropped as too slow.
    #[arg(long, default_value_t = 1024)]
    pub queue: usize,
    /// Client mode: the JSON WebSocket service to connect to (ws:// or wss://).
    #[arg(long, value_name = "URL")]
    pub connect: Option<String>,
    /// Client mode: JSON pointer of the address in the service's messages.
    #[arg(long, default_value = "/address", value_name = "POINTER")]
    pub address_field: String,
    /// Client mode: JSON pointer of the value (the whole message when it is absent).
    #[arg(long, default_value = "/value", value_name = "POINTER")]
    pub value_field: String,
    /// Client mode: build the address from the message's fields instead, e.g.
    /// `/ws/{topic}` (a `{name}` is the top-level field `name`, or a JSON pointer `{/a/b}`).
    #[arg(long, value_name = "TEMPLATE")]
    pub address_template: Option<String>,
    /// Client mode: send CLASP changes matching this pattern to the service (repeatable).
    #[arg(long = "forward", value_name = "PATTERN")]
    pub forward: Vec<String>,
}

impl Default for WsJsonConfig {
    fn default() -> Self {
        Self {
            port: 9100,
            bind: "0.0.0.0".into(),
            namespace: Namespace::none(),
            mode: Mode::Server,
            access_token: None,
            max_frame: 65_536,
            queue: 1024,
            connect: None,
            address_field: "/address".into(),
            value_field: "/value".into(),
            address_template: None,
            forward: Vec::new(),
        }
    }
}

impl WsJsonConfig {
    /// Refuses settings that cannot work, naming the flag.
    fn check(&self) -> Result<(), BridgeError> {
        if self.max_frame < 64 {
            return Err(BridgeError::config("max-frame", "at least 64 bytes"));
        }
        if self.queue == 0 {
            return Err(BridgeError::config("queue", "at least 1"));
        }
        if self.mode == Mode::Client {
            client::Mapping::new(self)?;
            match &self.connect {
                Some(url) if url.starts_with("ws://") || url.starts_with("wss://") => {}
                Some(url) => {
                    return Err(BridgeError::config(
                        "connect",
                        format!("{url:?} is not a ws:// or wss:// URL"),
                    ))
                }
                None => {
                    return Err(BridgeError::config(
                        "connect",
                        "client mode needs the service URL",
                    ))
                }
            }
        }
        Ok(())
    }
}

/// The JSON WebSocket endpoint mounted at `path` on the relay's own port. Each connection
/// gets its own in-process link, and a CLASP token when the relay requires one.
pub fn mount(path: String, config: WsJsonConfig) -> HttpMount {
    let path = if path.starts_with('/') {
        path
    } else {
        format!("/{path}")
    };
    let name = format!("wsjson:{path}");
    let stats = Arc::new(BridgeStats::new("wsjson", &name));
    stats.set_up(true);
    let config = Arc::new(config);
    Arc::new(move |cfg, router| {
        router.actors.set(&name, ActorState::Running);
        let endpoint = web::Data::new(server::Endpoint {
            base: server::Base::Router(router.clone()),
            config: config.clone(),
            stats: stats.clone(),
            next: AtomicU64::new(1),
            fanout: Arc::default(),
        });
        cfg.service(
            web::resource(path.as_str())
                .app_data(endpoint)
                .route(web::get().to(server::upgrade)),
        );
    })
}

/// The JSON WebSocket bridge on a port of its own (embedded with `--ws-json-port`, or
/// standalone `clasp websocket`), or in client mode connected out to a service.
pub struct WsJsonBridge {
    config: Arc<WsJsonConfig>,
}

impl WsJsonBridge {
    /// Checks the settings.
    pub fn new(config: WsJsonConfig) -> Result<Self, BridgeError> {
        config.check()?;
        Ok(Self {
            config: Arc::new(config),
        })
    }
}

impl Bridge for WsJsonBridge {
    fn kind(&self) -> &'static str {
        match self.config.mode {
            Mode::Server => "wsjson",
            Mode::Client => "wsjson-client",
        }
    }

    fn name(&self) -> String {
        match (self.config.mode, &self.config.connect) {
            (Mode::Client, Some(url)) => format!("wsjson-client:{url}"),
            _ => format!("wsjson:{}", self.config.port),
        }
    }

    fn run(
        &self,
        link: RouterLink,
        stats: Arc<BridgeStats>,
    ) -> LocalBoxFuture<'static, Result<(), BridgeError>> {
        let config = self.config.clone();
        match config.mode {
            Mode::Server => Box::pin(server::run_own_port(link, config, stats)),
            Mode::Client => Box::pin(client::run(link, config, stats)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_file_keys() {
        let c: WsJsonConfig = serde_json::from_str(
            r#"{"port": 9000, "mode": "client", "connect": "ws://svc/feed",
                "address_template": "/ws/{topic}", "forward": ["/out/**"], "namespace": "/svc"}"#,
        )
        .unwrap();
        assert_eq!((c.port, c.mode), (9000, Mode::Client));
        assert_eq!(c.namespace.as_str(), "/svc");
        assert_eq!(c.queue, WsJsonConfig::default().queue);
        assert!(WsJsonBridge::new(c).is_ok());
        assert!(serde_json::from_str::<WsJsonConfig>(r#"{"prot": 1}"#).is_err());
    }

    #[test]
    fn refuses_unusable_settings() {
        let client = |connect: Option<&str>| WsJsonConfig {
            mode: Mode::Client,
            connect: connect.map(str::to_string),
            ..WsJsonConfig::default()
        };
        assert!(WsJsonBridge::new(client(None)).is_err());
        assert!(WsJsonBridge::new(client(Some("http://x"))).is_err());
        assert!(WsJsonBridge::new(client(Some("wss://x/y"))).is_ok());
        let tiny = WsJsonConfig {
            max_frame: 10,
            ..WsJsonConfig::default()
        };
        assert!(WsJsonBridge::new(tiny).is_err());
    }
}
