//! HTTP REST ↔ CLASP. PLACEHOLDER: the HTTP bridge fills this module in.

use std::sync::Arc;

use clasp_actors::link::RouterLink;
use clasp_actors::relay::HttpMount;
use futures_util::future::LocalBoxFuture;

use crate::{Bridge, BridgeError, BridgeStats, Namespace};

/// Settings of `clasp http` and `[[bridge]] kind = "http"`.
#[derive(Debug, Clone, clap::Args, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HttpConfig {
    /// Port of the standalone server.
    #[arg(long, default_value_t = 8080)]
    pub port: u16,
    /// Interface.
    #[arg(long, default_value = "0.0.0.0")]
    pub bind: String,
    /// Address prefix (none by default: `/api/v1/state/a/b` is `/a/b`).
    #[arg(long, default_value = "")]
    pub namespace: Namespace,
}

impl Default for HttpConfig {
    fn default() -> Self {
        Self {
            port: 8080,
            bind: "0.0.0.0".into(),
            namespace: Namespace::none(),
        }
    }
}

/// The REST API mounted on the relay's own port.
pub fn mount(_config: HttpConfig) -> HttpMount {
    Arc::new(|_cfg, _router| {})
}

/// The standalone HTTP bridge (its own port).
pub struct HttpBridge {
    config: Arc<HttpConfig>,
}

impl HttpBridge {
    /// Checks the settings.
    pub fn new(config: HttpConfig) -> Result<Self, BridgeError> {
        Ok(Self {
            config: Arc::new(config),
        })
    }
}

impl Bridge for HttpBridge {
    fn kind(&self) -> &'static str {
        "http"
    }

    fn name(&self) -> String {
        format!("http:{}", self.config.port)
    }

    fn run(
        &self,
        _link: RouterLink,
        _stats: Arc<BridgeStats>,
    ) -> LocalBoxFuture<'static, Result<(), BridgeError>> {
        Box::pin(std::future::pending())
    }
}
