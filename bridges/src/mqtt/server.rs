//! Embedded MQTT broker (FEATURES MQTT-1..6): `clasp relay --mqtt-port 1883` serves plain
//! MQTT 3.1.1 and 5.0 clients. Topics are addresses under the namespace (`a/b` ↔
//! `/mqtt/a/b`); a retained PUBLISH is a Param SET, a plain one an Event; every CLASP signal
//! under the namespace reaches matching MQTT subscribers. Packets are framed and encoded by
//! rumqttc's codec; see `docs/bridges/mqtt-broker.md`.

pub mod broker;
pub mod codec;
pub mod connection;
pub mod feed;
pub mod mapping;
pub mod origin;

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use clasp_actors::link::RouterLink;
use futures_util::future::LocalBoxFuture;
use tokio::net::TcpListener;

use crate::noise::BadInput;
use crate::{Bridge, BridgeError, BridgeStats, Namespace};

/// Settings of the relay's embedded broker (`--mqtt-port`) and `[[bridge]] kind = "mqtt-server"`.
#[derive(Debug, Clone, clap::Args, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MqttServerConfig {
    /// TCP port for MQTT clients.
    #[arg(long = "mqtt-listen", default_value_t = 1883)]
    pub port: u16,
    /// Interface.
    #[arg(long = "mqtt-bind", default_value = "0.0.0.0")]
    pub bind: String,
    /// Address prefix.
    #[arg(long = "mqtt-server-namespace", default_value = "/mqtt")]
    pub namespace: Namespace,
    /// Connected MQTT clients at most; more are refused (CONNACK server unavailable).
    #[arg(long = "mqtt-max-clients", default_value_t = 10_000)]
    pub max_clients: usize,
    /// Largest packet accepted, bytes; a larger one closes that client (v5 reason 0x95).
    #[arg(long = "mqtt-max-packet", default_value_t = 1024 * 1024)]
    pub max_packet_size: usize,
    /// Packets queued to one client, and QoS 1/2 messages kept for one that is away; a
    /// connected client that falls this far behind is disconnected.
    #[arg(long = "mqtt-queue", default_value_t = 1000)]
    pub queue: usize,
    /// QoS 1/2 messages in flight to one client (also announced as receive maximum).
    #[arg(long = "mqtt-inflight", default_value_t = 32)]
    pub max_inflight: usize,
    /// Persistent sessions kept while their clients are away (oldest dropped first).
    #[arg(long = "mqtt-max-stored-sessions", default_value_t = 10_000)]
    pub max_stored_sessions: usize,
    /// Seconds a new connection has to send CONNECT.
    #[arg(long = "mqtt-connect-timeout", default_value_t = 10)]
    pub connect_timeout: u64,
}

impl Default for MqttServerConfig {
    fn default() -> Self {
        Self {
            port: 1883,
            bind: "0.0.0.0".into(),
            namespace: "/mqtt".parse().unwrap_or_default(),
            max_clients: 10_000,
            max_packet_size: 1024 * 1024,
            queue: 1000,
            max_inflight: 32,
            max_stored_sessions: 10_000,
            connect_timeout: 10,
        }
    }
}

/// The embedded broker.
pub struct MqttServerBridge {
    config: Arc<MqttServerConfig>,
}

impl MqttServerBridge {
    /// Checks the settings.
    pub fn new(config: MqttServerConfig) -> Result<Self, BridgeError> {
        if config.max_packet_size < 64 {
            return Err(BridgeError::config(
                "mqtt-max-packet",
                "must be at least 64 bytes",
            ));
        }
        if config.queue == 0 || config.max_inflight == 0 || config.max_inflight > 65_535 {
            return Err(BridgeError::config(
                "mqtt-queue / mqtt-inflight",
                "queue must be > 0 and inflight within 1..=65535",
            ));
        }
        Ok(Self {
            config: Arc::new(config),
        })
    }
}

impl Bridge for MqttServerBridge {
    fn kind(&self) -> &'static str {
        "mqtt-server"
    }

    fn name(&self) -> String {
        format!("mqtt-server:{}", self.config.port)
    }

    fn run(
        &self,
        link: RouterLink,
        stats: Arc<BridgeStats>,
    ) -> LocalBoxFuture<'static, Result<(), BridgeError>> {
        Box::pin(run(self.config.clone(), link, stats))
    }
}

/// Listens, accepts, and keeps the router feed running; returns when either fails.
async fn run(
    config: Arc<MqttServerConfig>,
    link: RouterLink,
    stats: Arc<BridgeStats>,
) -> Result<(), BridgeError> {
    let addr = format!("{}:{}", config.bind, config.port);
    let listener = TcpListener::bind(&addr)
        .await
        .map_err(|e| BridgeError::io(format!("binding MQTT on {addr}"), e))?;
    let limits = broker::Limits {
        max_clients: config.max_clients,
        queue: config.queue,
        inflight: config.max_inflight,
        max_stored_sessions: config.max_stored_sessions,
    };
    let shared = Rc::new(connection::Shared {
        broker: RefCell::new(broker::Broker::new(limits, stats.clone())),
        config,
        link,
        stats: stats.clone(),
        bad: RefCell::new(BadInput::default()),
        origins: RefCell::default(),
    });
    let mut feed = tokio::task::spawn_local(feed::run(shared.clone()));
    stats.set_up(true);
    tracing::info!(bridge = %stats.name, %addr, namespace = %shared.config.namespace, "MQTT broker listening");
    let mut sweep = tokio::time::interval(Duration::from_secs(5));
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    tokio::task::spawn_local(connection::serve(stream, peer, shared.clone()));
                }
                Err(e) => {
                    // Out of descriptors and the like: wait a little rather than spin.
                    tracing::warn!(bridge = %stats.name, error = %e, "MQTT accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            },
            ended = &mut feed => {
                let why = match ended {
                    Ok(Err(e)) => e.to_string(),
                    Ok(Ok(())) => "router feed ended".to_string(),
                    Err(e) => format!("router feed task failed: {e}"),
                };
                return Err(BridgeError::Protocol(format!("MQTT broker lost the router: {why}")));
            }
            _ = sweep.tick() => shared.broker.borrow_mut().sweep(),
        }
    }
}
