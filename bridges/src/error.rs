//! Why a bridge stopped or refused its configuration.

use clasp_actors::client::ClientError;

/// A bridge failure. Returning one from [`crate::Bridge::run`] makes the supervisor restart
/// the bridge after a backoff; the relay keeps serving.
#[derive(Debug, thiserror::Error)]
pub enum BridgeError {
    /// The socket, device or broker failed.
    #[error("{context}: {source}")]
    Io {
        /// What the bridge was doing.
        context: String,
        /// OS error.
        source: std::io::Error,
    },
    /// The router could not be reached or refused a write.
    #[error("router: {0}")]
    Link(#[from] ClientError),
    /// A setting is unusable (names the setting).
    #[error("invalid setting {setting}: {reason}")]
    Config {
        /// Flag or key name.
        setting: String,
        /// Why.
        reason: String,
    },
    /// The peer broke its protocol badly enough that the connection must be dropped.
    #[error("{0}")]
    Protocol(String),
}

impl BridgeError {
    /// An I/O error with what was being done.
    pub fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        BridgeError::Io {
            context: context.into(),
            source,
        }
    }

    /// A bad setting.
    pub fn config(setting: impl Into<String>, reason: impl Into<String>) -> Self {
        BridgeError::Config {
            setting: setting.into(),
            reason: reason.into(),
        }
    }
}
