//! One web client's connection: reads its JSON requests in order, answers each, and sends
//! the updates of its own subscriptions through one bounded outbound queue. A client that
//! does not read fast enough is dropped rather than let the queue grow; bad input is
//! answered with an `error` message and the connection stays open.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use actix_ws::{AggregatedMessage, CloseCode, CloseReason, ProtocolError};
use clasp_actors::auth::grant::unix_now;
use clasp_actors::auth::{Action, Grant};
use clasp_actors::client::ClientError;
use clasp_actors::link::RouterLink;
use clasp_proto::{Pattern, SignalType};
use serde_json::{json, Value as Json};
use tokio::sync::{mpsc, Notify};
use tokio::task::JoinHandle;

use super::fanout::{Fanout, Sink};
use super::protocol::{self, Request};
use super::WsJsonConfig;
use crate::noise::BadInput;
use crate::{BridgeStats, Namespace};

/// Subscriptions one client may hold, so a client cannot make the relay track unbounded
/// patterns for it.
const MAX_SUBSCRIPTIONS: usize = 256;
/// How often a token's revocation and expiry are checked between requests.
const GRANT_CHECK: Duration = Duration::from_secs(1);
/// Longest a request may wait for the router, so a lost answer never stalls a connection.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// How long queued answers may take to go out when a connection ends.
const DRAIN: Duration = Duration::from_secs(1);

/// What a connection was admitted with.
pub(crate) struct Admitted {
    /// Its own link (closed when the connection ends).
    pub link: RouterLink,
    /// Its rights; `None`: everything (open relay or static access token).
    pub grant: Option<Arc<Grant>>,
    /// For logs: remote address.
    pub peer: String,
    /// Over a shared remote link: the bridge's other clients, and this one's number there.
    pub fanout: Option<(Arc<Fanout>, u64)>,
}

/// The bounded outbound queue of one connection.
#[derive(Clone)]
struct Outbound {
    tx: mpsc::Sender<String>,
    overflow: Arc<Notify>,
}

impl Outbound {
    /// Queues a message; `false` (and the connection is dropped) when the queue is full.
    fn push(&self, text: String) -> bool {
        match self.tx.try_send(text) {
            Ok(()) => true,
            Err(mpsc::error::TrySendError::Full(_)) => {
                self.overflow.notify_one();
                false
            }
            Err(mpsc::error::TrySendError::Closed(_)) => false,
        }
    }
}

impl Sink for Outbound {
    fn deliver(&self, text: String) -> bool {
        self.push(text)
    }
}

/// Scope check of a connection: everything without a grant.
fn may(grant: Option<&Grant>, action: Action, address: &str) -> bool {
    grant.is_none_or(|g| g.scopes.allows(action, address))
}

struct Conn {
    admitted: Admitted,
    namespace: Namespace,
    stats: Arc<BridgeStats>,
    out: Outbound,
    subs: HashMap<String, (Pattern, JoinHandle<()>)>,
    bad: BadInput,
}

/// Serves one upgraded connection until it closes. Never panics on client input.
pub(crate) async fn serve(
    session: actix_ws::Session,
    stream: actix_ws::MessageStream,
    admitted: Admitted,
    config: Arc<WsJsonConfig>,
    stats: Arc<BridgeStats>,
) {
    let (tx, mut rx) = mpsc::channel::<String>(config.queue.max(1));
    let overflow = Arc::new(Notify::new());
    let mut writer_ws = session.clone();
    let writer_stats = stats.clone();
    let mut writer = actix_web::rt::spawn(async move {
        while let Some(text) = rx.recv().await {
            if writer_ws.text(text).await.is_err() {
                break;
            }
            BridgeStats::bump(&writer_stats.sent);
        }
    });
    let peer = admitted.peer.clone();
    tracing::debug!(bridge = %stats.name, peer, "json client connected");
    let mut conn = Conn {
        admitted,
        namespace: config.namespace.clone(),
        stats: stats.clone(),
        out: Outbound {
            tx,
            overflow: overflow.clone(),
        },
        subs: HashMap::new(),
        bad: BadInput::default(),
    };
    if let Some((fanout, id)) = &conn.admitted.fanout {
        fanout.join(*id, Arc::new(conn.out.clone()), conn.admitted.grant.clone());
    }
    let mut stream = stream
        .max_frame_size(config.max_frame)
        .aggregate_continuations()
        .max_continuation_size(config.max_frame);
    let mut control = session;
    let mut tick = tokio::time::interval(GRANT_CHECK);
    let close: Option<CloseReason> = loop {
        tokio::select! {
            msg = stream.recv() => match msg {
                None => break None,
                Some(Ok(AggregatedMessage::Text(text))) => conn.request(&text).await,
                Some(Ok(AggregatedMessage::Binary(_))) => {
                    conn.reject(None, "binary frames are not supported: send JSON text".into(), None);
                }
                Some(Ok(AggregatedMessage::Ping(data))) => {
                    if control.pong(&data).await.is_err() {
                        break None;
                    }
                }
                Some(Ok(AggregatedMessage::Pong(_))) => {}
                Some(Ok(AggregatedMessage::Close(_))) => break Some(CloseReason::from(CloseCode::Normal)),
                Some(Err(ProtocolError::Overflow)) => {
                    tracing::info!(bridge = %stats.name, peer, limit = config.max_frame, "json client sent an oversized frame; closing");
                    break Some(CloseReason { code: CloseCode::Size, description: Some(format!("frame larger than {} bytes", config.max_frame)) });
                }
                Some(Err(e)) => {
                    tracing::info!(bridge = %stats.name, peer, error = %e, "json client broke the WebSocket protocol; closing");
                    break Some(CloseReason::from(CloseCode::Protocol));
                }
            },
            _ = overflow.notified() => {
                tracing::warn!(bridge = %stats.name, peer, queue = config.queue, "json client too slow (outbound queue full); dropped");
                break Some(CloseReason { code: CloseCode::Policy, description: Some("too slow: outbound queue full".into()) });
            }
            _ = tick.tick() => {
                if let Some(g) = &conn.admitted.grant {
                    if g.is_revoked() || g.is_expired(unix_now()) {
                        tracing::info!(bridge = %stats.name, peer, "json client's token revoked or expired; closing");
                        break Some(CloseReason { code: CloseCode::Policy, description: Some("token revoked or expired".into()) });
                    }
                }
            }
        }
    };
    if let Some((fanout, id)) = &conn.admitted.fanout {
        fanout.leave(*id);
    }
    for (_, (_, task)) in conn.subs.drain() {
        task.abort();
    }
    conn.admitted.link.close();
    // Answers already queued go out before the close frame, unless the client is stuck.
    drop(conn);
    if tokio::time::timeout(DRAIN, &mut writer).await.is_err() {
        writer.abort();
    }
    let _ = control.close(close).await;
    tracing::debug!(bridge = %stats.name, peer, "json client gone");
}

impl Conn {
    fn grant(&self) -> Option<&Grant> {
        self.admitted.grant.as_deref()
    }

    /// Answers a request that could not be served, and counts it.
    fn reject(&mut self, request_type: Option<&str>, message: String, id: Option<&Json>) {
        self.bad
            .report(&self.stats, &self.admitted.peer, &message.as_str());
        self.out
            .push(protocol::error_message(&message, request_type, id));
    }

    async fn request(&mut self, text: &str) {
        let envelope = match protocol::parse(text) {
            Ok(e) => e,
            Err(e) => {
                let request_type = e.request_type.clone();
                self.reject(request_type.as_deref(), e.message, e.id.as_ref());
                return;
            }
        };
        let kind = envelope.request.kind();
        let id = envelope.id;
        let answer =
            tokio::time::timeout(REQUEST_TIMEOUT, self.handle(envelope.request, id.as_ref()))
                .await
                .unwrap_or_else(|_| {
                    Err(Failure::Refused("the router did not answer in time".into()))
                });
        match answer {
            Ok(Some(answer)) => {
                self.out.push(answer);
            }
            Ok(None) => {}
            Err(Failure::Bad(message)) => self.reject(Some(kind), message, id.as_ref()),
            Err(Failure::Refused(message)) => {
                BridgeStats::bump(&self.stats.refused);
                self.out
                    .push(protocol::error_message(&message, Some(kind), id.as_ref()));
            }
        }
    }

    /// The CLASP address of a client's address, checked.
    fn address(&self, address: &str) -> Result<String, Failure> {
        if !address.starts_with('/') {
            return Err(Failure::Bad(format!(
                "invalid address {address:?}: it starts with /"
            )));
        }
        self.namespace
            .address(address)
            .map(|a| a.as_str().to_string())
            .map_err(|e| Failure::Bad(format!("invalid address {address:?}: {e}")))
    }

    fn check(&self, action: Action, address: &str) -> Result<(), Failure> {
        if may(self.grant(), action, address) {
            Ok(())
        } else {
            let verb = if action == Action::Read {
                "read"
            } else {
                "write"
            };
            Err(Failure::Refused(format!("not allowed to {verb} {address}")))
        }
    }

    async fn handle(
        &mut self,
        request: Request,
        id: Option<&Json>,
    ) -> Result<Option<String>, Failure> {
        BridgeStats::bump(&self.stats.received);
        let link = self.admitted.link.clone();
        match request {
            Request::Set { address, value } => {
                let full = self.address(&address)?;
                self.check(Action::Write, &full)?;
                let revision = link.set(&full, value).await.map_err(Failure::router)?;
                Ok(Some(protocol::ack_message(
                    "set",
                    json!({"address": address, "revision": revision}),
                    id,
                )))
            }
            Request::Get { address } => {
                let full = self.address(&address)?;
                self.check(Action::Read, &full)?;
                let param = link.get_state(&full).await.map_err(Failure::router)?;
                Ok(Some(match param {
                    Some(p) => protocol::value_message(&address, &p.value, Some(p.revision), id),
                    None => protocol::value_message(&address, &clasp_proto::Value::Null, None, id),
                }))
            }
            Request::Emit { address, value } => {
                let full = self.address(&address)?;
                self.check(Action::Write, &full)?;
                link.publish(SignalType::Event, &full, value.clone())
                    .await
                    .map_err(Failure::router)?;
                self.share_publish(&full, SignalType::Event, &value);
                Ok(Some(protocol::ack_message(
                    "emit",
                    json!({"address": address}),
                    id,
                )))
            }
            Request::Stream { address, value } => {
                let full = self.address(&address)?;
                self.check(Action::Write, &full)?;
                link.publish(SignalType::Stream, &full, value.clone())
                    .await
                    .map_err(Failure::router)?;
                self.share_publish(&full, SignalType::Stream, &value);
                Ok(id.map(|id| {
                    protocol::ack_message("stream", json!({"address": address}), Some(id))
                }))
            }
            Request::Subscribe { pattern } => self.subscribe(pattern, id).await.map(Some),
            Request::Unsubscribe { pattern } => match self.subs.remove(&pattern) {
                Some((_, task)) => {
                    task.abort();
                    self.share_patterns();
                    Ok(Some(protocol::ack_message(
                        "unsubscribe",
                        json!({"pattern": pattern}),
                        id,
                    )))
                }
                None => Err(Failure::Bad(format!("not subscribed to {pattern}"))),
            },
            Request::Snapshot { prefix } => {
                let pattern = match prefix.as_deref() {
                    None | Some("") | Some("/") => self.namespace.subtree(),
                    Some(p) => format!("{}/**", self.address(p.trim_end_matches('/'))?),
                };
                let params = link.snapshot(&pattern).await.map_err(Failure::router)?;
                let grant = self.grant();
                let visible: Vec<_> = params
                    .iter()
                    .filter(|p| may(grant, Action::Read, p.address.as_str()))
                    .filter_map(|p| Some((self.namespace.strip(p.address.as_str())?, &p.value)))
                    .collect();
                Ok(Some(protocol::snapshot_message(visible.into_iter(), id)))
            }
        }
    }

    async fn subscribe(&mut self, pattern: String, id: Option<&Json>) -> Result<String, Failure> {
        let ack = protocol::ack_message("subscribe", json!({"pattern": pattern}), id);
        if self.subs.contains_key(&pattern) {
            return Ok(ack);
        }
        if self.subs.len() >= MAX_SUBSCRIPTIONS {
            return Err(Failure::Refused(format!(
                "at most {MAX_SUBSCRIPTIONS} subscriptions per connection"
            )));
        }
        if !pattern.starts_with('/') {
            return Err(Failure::Bad(format!(
                "invalid pattern {pattern:?}: it starts with /"
            )));
        }
        let full = format!("{}{}", self.namespace.as_str(), pattern);
        let compiled = Pattern::compile(&full)
            .map_err(|e| Failure::Bad(format!("invalid pattern {pattern:?}: {e}")))?;
        let mut sub = self
            .admitted
            .link
            .subscribe(&full)
            .await
            .map_err(Failure::router)?;
        let (out, grant, namespace) = (
            self.out.clone(),
            self.admitted.grant.clone(),
            self.namespace.clone(),
        );
        let task = actix_web::rt::spawn(async move {
            while let Some(update) = sub.next().await {
                let address = update.address.as_str();
                if !may(grant.as_deref(), Action::Read, address) {
                    continue;
                }
                let Some(path) = namespace.strip(address) else {
                    continue;
                };
                if !out.push(protocol::update_message(path, &update)) {
                    break;
                }
            }
        });
        self.subs.insert(pattern, (compiled, task));
        self.share_patterns();
        Ok(ack)
    }

    /// Tells the bridge's other clients' fan-out what this one subscribes to.
    fn share_patterns(&self) {
        if let Some((fanout, id)) = &self.admitted.fanout {
            fanout.patterns(*id, self.subs.values().map(|(p, _)| p.clone()).collect());
        }
    }

    /// Hands this client's PUBLISH to the bridge's other clients (shared remote link only).
    fn share_publish(&self, full: &str, signal: SignalType, value: &clasp_proto::Value) {
        if let Some((fanout, id)) = &self.admitted.fanout {
            fanout.publish(*id, full, &self.namespace, |path| {
                protocol::event_message(path, value, signal)
            });
        }
    }
}

/// Why a request was not served.
enum Failure {
    /// The client's fault (bad address, pattern, field): counted as bad input.
    Bad(String),
    /// Refused by scopes or the router.
    Refused(String),
}

impl Failure {
    fn router(e: ClientError) -> Self {
        match e {
            ClientError::Address(_) | ClientError::Pattern(_) => Failure::Bad(e.to_string()),
            other => Failure::Refused(other.to_string()),
        }
    }
}
