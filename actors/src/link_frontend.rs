//! The `RouterLink` calls that request/response front ends (the REST bridge, the JSON
//! WebSocket bridge) need beyond plain set/get/publish: a param with its revision, writer
//! and timestamp; a write with an expected revision or TTL that answers the router's refusal;
//! a snapshot under a pattern; token validation against the relay's `Auth` actor. Each works
//! in-process (straight to the shards) and over WebSocket (the Rust client); an in-process
//! endpoint per web client, closed when the client leaves.

use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;
use clasp_proto::{Address, ParamState, Pattern, Set, Value};
use tokio::sync::oneshot;

use crate::auth::{Denial, Grant};
use crate::client::{ClientError, SetOptions};
use crate::link::{LinkEndpoint, LinkSet, RouterLink};
use crate::messages::{ShardGet, ShardSnapshot};
use crate::router::Router;

/// How long a remote GET waits: the relay answers nothing for an unknown address, so
/// silence this long means "unset" (a known one answers in one round trip).
const REMOTE_GET_WAIT: Duration = Duration::from_millis(750);
/// A remote snapshot is a subscription's initial burst: it is complete once no update came
/// for this long...
const REMOTE_SNAPSHOT_QUIET: Duration = Duration::from_millis(250);
/// ...or after this long in all.
const REMOTE_SNAPSHOT_MAX: Duration = Duration::from_secs(3);

/// Stops an in-process endpoint: the shards drop its subscriptions and locks.
#[derive(Message)]
#[rtype(result = "()")]
struct LinkClose;

impl Handler<LinkClose> for LinkEndpoint {
    type Result = ();
    fn handle(&mut self, _: LinkClose, ctx: &mut Context<Self>) {
        ctx.stop();
    }
}

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

    /// The relay's router when the link is in-process (the relay's auth, config, shards).
    pub fn local_router(&self) -> Option<&Router> {
        match self {
            RouterLink::Local(l) => Some(&l.router),
            RouterLink::Remote(_) => None,
        }
    }

    /// Ends an in-process endpoint (its subscriptions go with it); nothing over WebSocket,
    /// where the connection is shared. An endpoint is never stopped implicitly: it holds its
    /// own mailbox address for the shards.
    pub fn close(&self) {
        if let RouterLink::Local(l) = self {
            l.endpoint.do_send(LinkClose);
        }
    }

    /// Whether the router can be reached right now (in-process: always). A front end answers
    /// "bad gateway" at once instead of queueing a request behind a reconnect.
    pub fn is_up(&self) -> bool {
        match self {
            RouterLink::Local(_) => true,
            RouterLink::Remote(c) => c.connected(),
        }
    }

    /// Another link to the same router with its own endpoint named `name` (over WebSocket:
    /// the same connection), so each web client is its own writer and PUBLISH sender: the
    /// router never echoes a PUBLISH to its sender, so a front end that both emits and streams
    /// events subscribes through a sibling. Release it with [`RouterLink::close`]. Call
    /// inside the relay's actix system.
    pub fn sibling(&self, name: &str) -> RouterLink {
        match self {
            RouterLink::Local(l) => RouterLink::local(&l.router, name),
            RouterLink::Remote(_) => self.clone(),
        }
    }

    /// Whether the relay requires tokens of the clients a front end serves (in-process with
    /// `--auth`). Over WebSocket the remote relay checks the link's own token instead.
    pub fn requires_token(&self) -> bool {
        matches!(self, RouterLink::Local(l) if l.router.auth.is_some())
    }

    /// Validates a client's CLASP token with the relay's `Auth` actor, as a HELLO would be:
    /// `Ok(None)` when the relay runs open (or the link is remote), the grant (subject and
    /// scopes) otherwise. An empty token is refused with `Denial::Required` when auth is on.
    pub async fn validate_token(&self, token: &str) -> Result<Option<Arc<Grant>>, Denial> {
        let RouterLink::Local(l) = self else {
            return Ok(None);
        };
        let Some(auth) = &l.router.auth else {
            return Ok(None);
        };
        if token.is_empty() {
            return Err(Denial::Required);
        }
        auth.send(crate::auth::actor::Validate {
            token: token.to_string(),
        })
        .await
        .map_err(|_| Denial::Unavailable("auth service not running".into()))?
        .map(Some)
    }

    /// A param with its revision, last writer and timestamp; `None` if it does not exist.
    pub async fn get_state(&self, address: &str) -> Result<Option<ParamState>, ClientError> {
        let address = Address::parse(address)?;
        match self {
            RouterLink::Local(l) => l
                .router
                .shard_for(address.as_str())
                .send(ShardGet { address })
                .await
                .map_err(|_| ClientError::Closed),
            RouterLink::Remote(c) => {
                if !c.connected() {
                    return Err(ClientError::Closed);
                }
                match tokio::time::timeout(REMOTE_GET_WAIT, c.get(address.as_str())).await {
                    Ok(Ok(p)) => Ok(Some(p)),
                    Ok(Err(ClientError::Timeout(_))) | Err(_) => Ok(None),
                    Ok(Err(e)) => Err(e),
                }
            }
        }
    }

    /// Writes a param with options (expected revision, TTL, lock) and answers the new
    /// revision, or the router's refusal as `ClientError::Server` with the ERROR code
    /// (400 `RevisionConflict ...`, 401 lock held, 301 scope). In-process the write is
    /// recorded under `writer` when given (e.g. `http:<token subject>`); over WebSocket the
    /// relay records the link's session id.
    pub async fn set_with_options(
        &self,
        writer: Option<&str>,
        address: &str,
        value: Value,
        options: SetOptions,
    ) -> Result<u64, ClientError> {
        let mut set = Set {
            address: Address::parse(address)?,
            value,
            revision: options.revision,
            lock: options.lock,
            unlock: options.unlock,
            ttl: options.ttl,
        };
        match self {
            RouterLink::Remote(c) => {
                if !c.connected() {
                    return Err(ClientError::Closed);
                }
                c.set_with(set.address.as_str(), set.value, options).await
            }
            RouterLink::Local(l) => {
                if let Some(app) = l.router.app_config.load_full() {
                    crate::link::check_app_config(&app, &set.address, &set.value)?;
                    if set.ttl.is_none() {
                        set.ttl = app.ttl_for(set.address.as_str());
                    }
                }
                let (tx, rx) = oneshot::channel();
                l.endpoint
                    .send(LinkSet {
                        set,
                        writer: writer.map(Arc::from),
                        reply: tx,
                    })
                    .await
                    .map_err(|_| ClientError::Closed)?;
                rx.await.map_err(|_| ClientError::Closed)?
            }
        }
    }

    /// Every param matching `pattern`, sorted by address. Over WebSocket it is the initial
    /// burst of a subscription, complete after a short quiet period.
    pub async fn snapshot(&self, pattern: &str) -> Result<Vec<ParamState>, ClientError> {
        let compiled = Pattern::compile(pattern)?;
        let mut params = match self {
            RouterLink::Local(l) => {
                let mut all = Vec::new();
                for shard in l.router.shards_for(&compiled) {
                    let part = shard
                        .send(ShardSnapshot {
                            pattern: compiled.clone(),
                        })
                        .await
                        .map_err(|_| ClientError::Closed)?;
                    all.extend(part);
                }
                all
            }
            RouterLink::Remote(c) => {
                if !c.connected() {
                    return Err(ClientError::Closed);
                }
                let mut sub = c.subscribe(pattern).await?;
                let deadline = tokio::time::Instant::now() + REMOTE_SNAPSHOT_MAX;
                let mut seen = std::collections::BTreeMap::new();
                while tokio::time::Instant::now() < deadline {
                    match sub.next_within(REMOTE_SNAPSHOT_QUIET).await {
                        Some(u) if u.signal == clasp_proto::SignalType::Param => {
                            seen.insert(
                                u.address.to_string(),
                                ParamState {
                                    address: u.address,
                                    value: u.value,
                                    revision: u.revision.unwrap_or(0),
                                    writer: u.writer,
                                    timestamp: u.timestamp,
                                },
                            );
                        }
                        Some(_) => {}
                        None => break,
                    }
                }
                seen.into_values().collect()
            }
        };
        params.sort_by(|a, b| a.address.as_str().cmp(b.address.as_str()));
        Ok(params)
    }
}
