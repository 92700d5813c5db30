//! WebSocket JSON bridge. PLACEHOLDER: the WebSocket JSON bridge fills this module in.

use std::sync::Arc;

use clasp_actors::link::RouterLink;
use clasp_actors::relay::HttpMount;
use futures_util::future::LocalBoxFuture;

use crate::{Bridge, BridgeError, BridgeStats, Namespace};

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
}

impl Default for WsJsonConfig {
    fn default() -> Self {
        Self {
            port: 9100,
            bind: "0.0.0.0".into(),
            namespace: Namespace::none(),
        }
    }
}

/// The JSON WebSocket endpoint mounted at `path` on the relay's own port.
pub fn mount(_path: String, _config: WsJsonConfig) -> HttpMount {
    Arc::new(|_cfg, _router| {})
}

/// The standalone (or own-port) JSON WebSocket bridge.
pub struct WsJsonBridge {
    config: Arc<WsJsonConfig>,
}

impl WsJsonBridge {
    /// Checks the settings.
    pub fn new(config: WsJsonConfig) -> Result<Self, BridgeError> {
        Ok(Self {
            config: Arc::new(config),
        })
    }
}

impl Bridge for WsJsonBridge {
    fn kind(&self) -> &'static str {
        "wsjson"
    }

    fn name(&self) -> String {
        format!("wsjson:{}", self.config.port)
    }

    fn run(
        &self,
        _link: RouterLink,
        _stats: Arc<BridgeStats>,
    ) -> LocalBoxFuture<'static, Result<(), BridgeError>> {
        Box::pin(std::future::pending())
    }
}
