//! What the embedded MQTT broker needs from a [`RouterLink`] beyond set/publish/subscribe:
//! the relay's token check for MQTT passwords (so MQTT clients get the same scopes as
//! WebSocket sessions) and the current params under a pattern (MQTT retained messages).

use std::sync::Arc;
use std::time::Duration;

use clasp_proto::{Pattern, Value};

use crate::auth::{Denial, Grant};
use crate::client::ClientError;
use crate::link::RouterLink;
use crate::messages::ShardSnapshot;
use crate::router::Router;

/// Longest wait for a remote relay's snapshot to stop arriving.
const REMOTE_SNAPSHOT_QUIET: Duration = Duration::from_millis(200);
/// Bound on a remote snapshot as a whole.
const REMOTE_SNAPSHOT_MAX: Duration = Duration::from_secs(2);

/// One of the relay's session slots (`--max-sessions`), held by a client that is not a
/// WebSocket session (an MQTT client of the embedded broker); given back on drop.
pub struct SessionSlot(Option<Router>);

impl Drop for SessionSlot {
    fn drop(&mut self) {
        if let Some(router) = self.0.take() {
            router.release();
        }
    }
}

impl RouterLink {
    /// Takes a session slot for a bridge's own client, so `--max-sessions` and shutdown
    /// draining cover it as they cover WebSocket sessions; `None` when the relay is full or
    /// draining. Over WebSocket there is no slot to take: always granted.
    pub fn admit_client(&self) -> Option<SessionSlot> {
        match self {
            RouterLink::Local(l) => l
                .router
                .admit()
                .then(|| SessionSlot(Some(l.router.clone()))),
            RouterLink::Remote(_) => Some(SessionSlot(None)),
        }
    }

    /// Whether the router requires a token from every client. Only an in-process link can
    /// tell; over WebSocket the remote relay checks the bridge's own token, not its peers'.
    pub fn auth_required(&self) -> bool {
        match self {
            RouterLink::Local(l) => l.router.auth.is_some(),
            RouterLink::Remote(_) => false,
        }
    }

    /// Checks a token (`cpsk_`, `cap_`, `ent_`) with the relay's `Auth` actor, as a HELLO
    /// is checked: `Ok(None)` when the relay runs open, the grant (scopes) when valid.
    pub async fn validate_token(&self, token: &str) -> Result<Option<Arc<Grant>>, Denial> {
        let RouterLink::Local(l) = self else {
            return Ok(None);
        };
        let Some(auth) = l.router.auth.clone() else {
            return Ok(None);
        };
        if token.is_empty() {
            return Err(Denial::Required);
        }
        auth.send(crate::auth::actor::Validate {
            token: token.to_string(),
        })
        .await
        .unwrap_or_else(|_| Err(Denial::Unavailable("auth service not running".into())))
        .map(Some)
    }

    /// Every current param matching `pattern`, as (address, value). In-process it asks the
    /// shards; over WebSocket it reads the snapshot a subscription starts with.
    pub async fn params(&self, pattern: &str) -> Result<Vec<(String, Value)>, ClientError> {
        let compiled = Pattern::compile(pattern)?;
        match self {
            RouterLink::Local(l) => {
                let mut out = Vec::new();
                for shard in l.router.shards_for(&compiled) {
                    let params = shard
                        .send(ShardSnapshot {
                            pattern: compiled.clone(),
                        })
                        .await
                        .map_err(|_| ClientError::Closed)?;
                    out.extend(
                        params
                            .into_iter()
                            .map(|p| (p.address.as_str().to_string(), p.value)),
                    );
                }
                Ok(out)
            }
            RouterLink::Remote(c) => {
                let mut sub = c.subscribe(pattern).await?;
                let mut out = Vec::new();
                let deadline = tokio::time::Instant::now() + REMOTE_SNAPSHOT_MAX;
                while tokio::time::Instant::now() < deadline {
                    match sub.next_within(REMOTE_SNAPSHOT_QUIET).await {
                        Some(u) if u.signal == clasp_proto::SignalType::Param => {
                            out.push((u.address.as_str().to_string(), u.value))
                        }
                        Some(_) => {}
                        None => break,
                    }
                }
                Ok(out)
            }
        }
    }
}
