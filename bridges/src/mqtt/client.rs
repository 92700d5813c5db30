//! MQTT client bridge (paho-mqtt). PLACEHOLDER.

use std::sync::Arc;

use clasp_actors::link::RouterLink;
use futures_util::future::LocalBoxFuture;

use crate::{Bridge, BridgeError, BridgeStats, Namespace};

/// Settings of `clasp mqtt` and `[[bridge]] kind = "mqtt"`.
#[derive(Debug, Clone, clap::Args, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MqttClientConfig {
    /// Broker URL (`mqtt://host:1883`, `mqtts://host:8883`).
    #[arg(long, default_value = "mqtt://127.0.0.1:1883")]
    pub broker: String,
    /// Address prefix.
    #[arg(long, default_value = "/mqtt")]
    pub namespace: Namespace,
}

impl Default for MqttClientConfig {
    fn default() -> Self {
        Self {
            broker: "mqtt://127.0.0.1:1883".into(),
            namespace: "/mqtt".parse().unwrap_or_default(),
        }
    }
}

/// The MQTT client bridge.
pub struct MqttClientBridge {
    config: Arc<MqttClientConfig>,
}

impl MqttClientBridge {
    /// Checks the settings.
    pub fn new(config: MqttClientConfig) -> Result<Self, BridgeError> {
        Ok(Self {
            config: Arc::new(config),
        })
    }
}

impl Bridge for MqttClientBridge {
    fn kind(&self) -> &'static str {
        "mqtt-client"
    }

    fn name(&self) -> String {
        format!("mqtt-client:{}", self.config.namespace)
    }

    fn run(
        &self,
        _link: RouterLink,
        _stats: Arc<BridgeStats>,
    ) -> LocalBoxFuture<'static, Result<(), BridgeError>> {
        Box::pin(std::future::pending())
    }
}
