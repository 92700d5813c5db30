//! What a bridge serving many independent web clients needs from a [`RouterLink`] beyond
//! set/publish/subscribe: reads that carry the revision, a snapshot of a subtree, token
//! checks by the relay's `Auth` actor, one in-process endpoint per client (so each client
//! is its own writer and PUBLISH sender), and closing that endpoint when the client leaves.
//! Named generically: the REST bridge needs the same calls.

use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;
use clasp_proto::{Address, ParamState, Pattern};
use futures_util::future::join_all;

use crate::auth::{Denial, Grant};
use crate::client::ClientError;
use crate::link::{LinkEndpoint, RouterLink};
use crate::messages::{ShardGet, ShardSnapshot};
use crate::router::Router;

/// How long a remote snapshot waits for the relay to go quiet after its subscription.
const REMOTE_SNAPSHOT_QUIET: Duration = Duration::from_millis(150);
/// Longest a remote snapshot collects, whatever the traffic.
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

impl RouterLink {
    /// The relay's router when the link is in-process (the relay's auth, config, shards).
    pub fn local_router(&self) -> Option<&Router> {
        match self {
            RouterLink::Local(l) => Some(&l.router),
            RouterLink::Remote(_) => None,
        }
    }

    /// A link for one more peer of the same bridge. In-process it is a new endpoint named
    /// `name`, so the peer is its own writer and receives the other peers' PUBLISHes (the
    /// relay never sends a PUBLISH back to its sender). Over WebSocket it shares the
    /// connection. Release it with [`RouterLink::close`].
    pub fn fork(&self, name: &str) -> RouterLink {
        match self {
            RouterLink::Local(l) => RouterLink::local(&l.router, name),
            RouterLink::Remote(c) => RouterLink::Remote(c.clone()),
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

    /// Whether the router requires a token from clients (only known in-process).
    pub fn requires_token(&self) -> bool {
        self.local_router().is_some_and(|r| r.auth.is_some())
    }

    /// Checks a client's token with the relay's `Auth` actor: the grant to enforce, or
    /// `None` when the relay runs open (or the link is remote: the caller decides).
    pub async fn authorize(&self, token: &str) -> Result<Option<Arc<Grant>>, Denial> {
        let Some(auth) = self.local_router().and_then(|r| r.auth.clone()) else {
            return Ok(None);
        };
        let token = token.to_string();
        match auth.send(crate::auth::actor::Validate { token }).await {
            Ok(answer) => answer.map(Some),
            Err(_) => Err(Denial::Unavailable("auth service not running".into())),
        }
    }

    /// A param with its revision, `None` when it does not exist.
    pub async fn get_param(&self, address: &str) -> Result<Option<ParamState>, ClientError> {
        match self {
            RouterLink::Remote(c) => match c.get(address).await {
                Ok(p) => Ok(Some(p)),
                // The relay answers nothing for an unknown address: the client times out.
                Err(ClientError::Timeout(_)) => Ok(None),
                Err(e) => Err(e),
            },
            RouterLink::Local(l) => {
                let address = Address::parse(address)?;
                l.router
                    .shard_for(address.as_str())
                    .send(ShardGet { address })
                    .await
                    .map_err(|_| ClientError::Closed)
            }
        }
    }

    /// Every param matching `pattern`, sorted by address. In-process this asks the shards;
    /// over WebSocket it subscribes, collects the relay's SNAPSHOT until it goes quiet, and
    /// unsubscribes (a param written meanwhile may be included).
    pub async fn snapshot_params(&self, pattern: &str) -> Result<Vec<ParamState>, ClientError> {
        let mut params = match self {
            RouterLink::Local(l) => {
                let pattern = Pattern::compile(pattern)?;
                let asks = l.router.shards_for(&pattern).into_iter().map(|s| {
                    s.send(ShardSnapshot {
                        pattern: pattern.clone(),
                    })
                });
                let mut all = Vec::new();
                for answer in join_all(asks).await {
                    all.extend(answer.map_err(|_| ClientError::Closed)?);
                }
                all
            }
            RouterLink::Remote(c) => {
                let mut sub = c.subscribe(pattern).await?;
                // A round trip: the subscription has reached the relay.
                c.ping().await?;
                let deadline = tokio::time::Instant::now() + REMOTE_SNAPSHOT_MAX;
                let mut all: Vec<ParamState> = Vec::new();
                while tokio::time::Instant::now() < deadline {
                    let Some(u) = sub.next_within(REMOTE_SNAPSHOT_QUIET).await else {
                        break;
                    };
                    // Live PUBLISHes carry no revision; snapshot entries do.
                    if let Some(revision) = u.revision {
                        all.retain(|p| p.address != u.address);
                        all.push(ParamState {
                            address: u.address,
                            value: u.value,
                            revision,
                            writer: u.writer,
                            timestamp: u.timestamp,
                        });
                    }
                }
                all
            }
        };
        params.sort_by(|a, b| a.address.as_str().cmp(b.address.as_str()));
        Ok(params)
    }
}
