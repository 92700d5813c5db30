//! Embedded MQTT broker. PLACEHOLDER.

use std::sync::Arc;

use clasp_actors::link::RouterLink;
use futures_util::future::LocalBoxFuture;

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
}

impl Default for MqttServerConfig {
    fn default() -> Self {
        Self {
            port: 1883,
            bind: "0.0.0.0".into(),
            namespace: "/mqtt".parse().unwrap_or_default(),
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
        _link: RouterLink,
        _stats: Arc<BridgeStats>,
    ) -> LocalBoxFuture<'static, Result<(), BridgeError>> {
        Box::pin(std::future::pending())
    }
}
