//! OSC (rosc) ↔ CLASP. PLACEHOLDER: the OSC bridge fills this module in.

use std::sync::Arc;

use clasp_actors::link::RouterLink;
use futures_util::future::LocalBoxFuture;

use crate::{Bridge, BridgeError, BridgeStats, Namespace};

/// OSC bridge settings: flags of `clasp osc`, and a `[[bridge]] kind = "osc"` table.
#[derive(Debug, Clone, clap::Args, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct OscConfig {
    /// UDP (or TCP) port to listen on.
    #[arg(long = "listen", visible_alias = "port", default_value_t = 9000)]
    pub port: u16,
    /// Interface to listen on.
    #[arg(long, default_value = "0.0.0.0")]
    pub bind: String,
    /// Address prefix of this bridge's params.
    #[arg(long, default_value = "/osc")]
    pub namespace: Namespace,
    /// Where changes under the namespace are sent (host:port, repeatable).
    #[arg(long = "send")]
    pub send: Vec<String>,
}

impl Default for OscConfig {
    fn default() -> Self {
        Self {
            port: 9000,
            bind: "0.0.0.0".into(),
            namespace: "/osc".parse().unwrap_or_default(),
            send: Vec::new(),
        }
    }
}

/// The OSC bridge.
pub struct OscBridge {
    config: Arc<OscConfig>,
}

impl OscBridge {
    /// Checks the settings.
    pub fn new(config: OscConfig) -> Result<Self, BridgeError> {
        Ok(Self {
            config: Arc::new(config),
        })
    }
}

impl Bridge for OscBridge {
    fn kind(&self) -> &'static str {
        "osc"
    }

    fn name(&self) -> String {
        format!("osc:{}", self.config.namespace)
    }

    fn run(
        &self,
        _link: RouterLink,
        _stats: Arc<BridgeStats>,
    ) -> LocalBoxFuture<'static, Result<(), BridgeError>> {
        Box::pin(std::future::pending())
    }
}
