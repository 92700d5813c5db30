//! `RouterLink`: how everything that is not a client session (bridges, rules, federation
//! peers) reaches the router. In-process it talks to the shards directly through a
//! [`LocalLink`] endpoint actor; standalone (`clasp osc --target ws://...`) it is the Rust
//! client over WebSocket. Both give the same calls, so the same bridge code runs either way.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use actix::prelude::*;
use clasp_proto::{
    decode_frame, Address, GesturePhase, Message as Wire, Pattern, Payload, Publish, Set,
    SignalType, TypeMask,
};
use tokio::sync::{mpsc, oneshot};

use crate::client::{Client, ClientError, Subscription, Update};
pub use crate::link_frontend::SessionSlot;
use crate::messages::*;
use crate::router::Router;

/// A connection to the router, in-process or remote.
#[derive(Clone)]
pub enum RouterLink {
    /// Direct to the shards of a relay in this process.
    Local(LocalLink),
    /// Over WebSocket.
    Remote(Client),
}

/// Updates from a [`RouterLink::subscribe`]; dropping it unsubscribes.
pub struct LinkSubscription {
    inner: LinkSubInner,
}

enum LinkSubInner {
    Remote(Subscription),
    Local {
        id: u32,
        updates: mpsc::Receiver<Update>,
        endpoint: Addr<LinkEndpoint>,
    },
}

impl LinkSubscription {
    /// The next update; `None` when the link is gone.
    pub async fn next(&mut self) -> Option<Update> {
        match &mut self.inner {
            LinkSubInner::Remote(s) => s.next().await,
            LinkSubInner::Local { updates, .. } => updates.recv().await,
        }
    }
}

impl Drop for LinkSubscription {
    fn drop(&mut self) {
        if let LinkSubInner::Local { id, endpoint, .. } = &self.inner {
            endpoint.do_send(LinkUnsubscribe { id: *id });
        }
    }
}

impl RouterLink {
    /// An in-process link named `name` (its writer id is `link:<name>`). Call inside the
    /// relay's actix system.
    pub fn local(router: &Router, name: &str) -> Self {
        let endpoint = LinkEndpoint {
            router: router.clone(),
            me: None,
            name: Arc::from(format!("link:{name}")),
            subs: HashMap::new(),
            next_id: 1,
            sets: HashMap::new(),
        }
        .start();
        RouterLink::Local(LocalLink {
            endpoint,
            router: router.clone(),
        })
    }

    /// A link over WebSocket through a connected client.
    pub fn remote(client: Client) -> Self {
        RouterLink::Remote(client)
    }

    /// Writes a param; the new revision.
    pub async fn set(
        &self,
        address: &str,
        value: impl Into<clasp_proto::Value>,
    ) -> Result<u64, ClientError> {
        self.write(None, address, value.into()).await
    }

    /// Writes a param recorded under the writer id `writer` instead of the link's own, so
    /// one link can act for several writers (the rules engine writes as `rule:<id>`).
    /// Over WebSocket the relay records the client's session id: `writer` is not sent.
    pub async fn set_as(
        &self,
        writer: &str,
        address: &str,
        value: impl Into<clasp_proto::Value>,
    ) -> Result<u64, ClientError> {
        self.write(Some(Arc::from(writer)), address, value.into())
            .await
    }

    async fn write(
        &self,
        writer: Option<Arc<str>>,
        address: &str,
        value: clasp_proto::Value,
    ) -> Result<u64, ClientError> {
        match self {
            RouterLink::Remote(c) => c.set(address, value).await,
            RouterLink::Local(l) => {
                let mut set = Set::new(Address::parse(address)?, value);
                if let Some(app) = l.router.app_config.load_full() {
                    check_app_config(&app, &set.address, &set.value)?;
                    set.ttl = app.ttl_for(set.address.as_str());
                }
                let (tx, rx) = oneshot::channel();
                l.endpoint
                    .send(LinkSet {
                        set,
                        writer,
                        reply: tx,
                    })
                    .await
                    .map_err(|_| ClientError::Closed)?;
                rx.await.map_err(|_| ClientError::Closed)?
            }
        }
    }

    /// The current value of a param, `None` if it does not exist.
    pub async fn get(&self, address: &str) -> Result<Option<clasp_proto::Value>, ClientError> {
        match self {
            // The relay answers nothing for an unknown address: the client times out.
            RouterLink::Remote(c) => match c.get(address).await {
                Ok(p) => Ok(Some(p.value)),
                Err(ClientError::Timeout(_)) => Ok(None),
                Err(e) => Err(e),
            },
            RouterLink::Local(l) => {
                let address = Address::parse(address)?;
                let shard = l.router.shard_for(address.as_str()).clone();
                let param = shard
                    .send(ShardGet { address })
                    .await
                    .map_err(|_| ClientError::Closed)?;
                Ok(param.map(|p| p.value))
            }
        }
    }

    /// Publishes an event, stream sample, gesture phase or timeline.
    pub async fn publish(
        &self,
        signal: SignalType,
        address: &str,
        value: impl Into<clasp_proto::Value>,
    ) -> Result<(), ClientError> {
        let value = value.into();
        match self {
            RouterLink::Remote(c) => match signal {
                SignalType::Stream => c.stream(address, value).await,
                SignalType::Timeline => c.timeline(address, value).await,
                SignalType::Gesture => c.gesture(address, 0, GesturePhase::Move, value).await,
                SignalType::Param | SignalType::Event => c.emit(address, value).await,
            },
            RouterLink::Local(l) => {
                let address = Address::parse(address)?;
                if let Some(app) = l.router.app_config.load_full() {
                    check_app_config(&app, &address, &value)?;
                }
                let publish = Publish {
                    signal,
                    phase: GesturePhase::Start,
                    address,
                    payload: Payload::Value(value),
                    timestamp: Some(crate::clock::now_micros()),
                    id: None,
                    rate: None,
                };
                l.endpoint
                    .send(LinkPublish { publish })
                    .await
                    .map_err(|_| ClientError::Closed)
            }
        }
    }

    /// Subscribes to everything matching `pattern` (current params first).
    pub async fn subscribe(&self, pattern: &str) -> Result<LinkSubscription, ClientError> {
        self.subscribe_with(pattern, true).await
    }

    /// Subscribes to changes only: no current params first, so every update is a live
    /// write or publish (what a reactive consumer like the rules engine needs). Over
    /// WebSocket the current params still come first.
    pub async fn subscribe_live(&self, pattern: &str) -> Result<LinkSubscription, ClientError> {
        self.subscribe_with(pattern, false).await
    }

    async fn subscribe_with(
        &self,
        pattern: &str,
        snapshot: bool,
    ) -> Result<LinkSubscription, ClientError> {
        match self {
            RouterLink::Remote(c) => Ok(LinkSubscription {
                inner: LinkSubInner::Remote(c.subscribe(pattern).await?),
            }),
            RouterLink::Local(l) => {
                let pattern = Pattern::compile(pattern)?;
                let (tx, rx) = mpsc::channel(4096);
                let id = l
                    .endpoint
                    .send(LinkSubscribe {
                        pattern,
                        sink: tx,
                        snapshot,
                    })
                    .await
                    .map_err(|_| ClientError::Closed)?;
                Ok(LinkSubscription {
                    inner: LinkSubInner::Local {
                        id,
                        updates: rx,
                        endpoint: l.endpoint.clone(),
                    },
                })
            }
        }
    }
}

/// The app config's write rules for a write through an in-process link (FEATURES BR-6):
/// bridges and rules get the same type and range validation as sessions, refused with
/// ERROR 402 and the rule's message. A link has no token subject, so per-user checks do not
/// apply (as for an open-mode session, AC-3). Over WebSocket the relay's session does this.
pub(crate) fn check_app_config(
    app: &crate::appconfig::AppConfig,
    address: &Address,
    value: &clasp_proto::Value,
) -> Result<(), ClientError> {
    app.check_write(
        address.as_str(),
        value,
        None,
        &crate::appconfig::State::new(),
    )
    .map_err(|v| ClientError::Server {
        code: crate::appconfig::RULE_VIOLATION,
        message: v.message,
        address: Some(address.to_string()),
    })
}

/// The in-process side of a [`RouterLink`].
#[derive(Clone)]
pub struct LocalLink {
    pub(crate) endpoint: Addr<LinkEndpoint>,
    pub(crate) router: Router,
}

/// The endpoint actor: to the shards it looks like a session.
pub struct LinkEndpoint {
    pub(crate) router: Router,
    pub(crate) me: Option<SessionRef>,
    name: Arc<str>,
    subs: HashMap<u32, (Pattern, mpsc::Sender<Update>)>,
    next_id: u32,
    sets: HashMap<String, VecDeque<oneshot::Sender<Result<u64, ClientError>>>>,
}

impl Actor for LinkEndpoint {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        self.me = Some(SessionRef {
            key: self.router.next_session_key(),
            id: self.name.clone(),
            recipient: ctx.address().recipient(),
        });
    }

    fn stopped(&mut self, _: &mut Context<Self>) {
        if let Some(me) = &self.me {
            for shard in self.router.shards() {
                shard.do_send(SessionGone {
                    key: me.key,
                    id: me.id.clone(),
                });
            }
        }
    }
}

#[derive(Message)]
#[rtype(result = "()")]
pub(crate) struct LinkSet {
    pub(crate) set: Set,
    /// Writer id for this write; `None`: the link's own.
    pub(crate) writer: Option<Arc<str>>,
    pub(crate) reply: oneshot::Sender<Result<u64, ClientError>>,
}

#[derive(Message)]
#[rtype(result = "()")]
struct LinkPublish {
    publish: Publish,
}

#[derive(Message)]
#[rtype(result = "u32")]
struct LinkSubscribe {
    pattern: Pattern,
    sink: mpsc::Sender<Update>,
    snapshot: bool,
}

#[derive(Message)]
#[rtype(result = "()")]
struct LinkUnsubscribe {
    id: u32,
}

impl Handler<LinkSet> for LinkEndpoint {
    type Result = ();
    fn handle(&mut self, msg: LinkSet, _: &mut Context<Self>) {
        let Some(mut me) = self.me.clone() else {
            return;
        };
        if let Some(writer) = msg.writer {
            // Same mailbox and key: only the id the shard records as writer differs.
            me.id = writer;
        }
        self.sets
            .entry(msg.set.address.to_string())
            .or_default()
            .push_back(msg.reply);
        self.router
            .shard_for(msg.set.address.as_str())
            .do_send(ShardSet {
                origin: me,
                set: msg.set,
                ack: true,
            });
    }
}

impl Handler<LinkPublish> for LinkEndpoint {
    type Result = ();
    fn handle(&mut self, msg: LinkPublish, _: &mut Context<Self>) {
        let Some(me) = self.me.clone() else { return };
        self.router
            .shard_for(msg.publish.address.as_str())
            .do_send(ShardPublish {
                origin: me,
                publish: msg.publish,
            });
    }
}

impl Handler<LinkSubscribe> for LinkEndpoint {
    type Result = u32;
    fn handle(&mut self, msg: LinkSubscribe, _: &mut Context<Self>) -> u32 {
        let id = self.next_id;
        self.next_id += 1;
        if let Some(me) = self.me.clone() {
            for shard in self.router.shards_for(&msg.pattern) {
                shard.do_send(ShardSubscribe {
                    session: me.clone(),
                    id,
                    pattern: msg.pattern.clone(),
                    types: TypeMask::ALL,
                    snapshot: msg.snapshot,
                    history: None,
                });
            }
        }
        self.subs.insert(id, (msg.pattern, msg.sink));
        id
    }
}

impl Handler<LinkUnsubscribe> for LinkEndpoint {
    type Result = ();
    fn handle(&mut self, msg: LinkUnsubscribe, _: &mut Context<Self>) {
        if let (Some((pattern, _)), Some(me)) = (self.subs.remove(&msg.id), &self.me) {
            for shard in self.router.shards_for(&pattern) {
                shard.do_send(ShardUnsubscribe {
                    session: me.key,
                    id: msg.id,
                });
            }
        }
    }
}

impl LinkEndpoint {
    fn dispatch(&mut self, update: Update) {
        for (pattern, sink) in self.subs.values() {
            if pattern.matches(update.address.as_str()) {
                let _ = sink.try_send(update.clone());
            }
        }
    }
}

impl Handler<Deliver> for LinkEndpoint {
    type Result = ();
    fn handle(&mut self, msg: Deliver, _: &mut Context<Self>) {
        // One decode path for every frame a shard produces, as a session's peer would see it.
        let Ok(decoded) = decode_frame(&msg.delivery.frame) else {
            return;
        };
        match decoded.message {
            Wire::Set(s) => self.dispatch(Update::from_set(s)),
            Wire::Publish(p) => self.dispatch(Update::from_publish(p)),
            Wire::Snapshot(s) => {
                for p in s.params {
                    self.dispatch(Update::from_param(p));
                }
            }
            Wire::Ack(a) => {
                if let Some(reply) = a
                    .address
                    .and_then(|addr| self.sets.get_mut(&addr)?.pop_front())
                {
                    let _ = reply.send(Ok(a.revision.unwrap_or(0)));
                }
            }
            Wire::Error(e) => {
                if let Some(reply) = e
                    .address
                    .as_ref()
                    .and_then(|addr| self.sets.get_mut(addr)?.pop_front())
                {
                    let _ = reply.send(Err(ClientError::Server {
                        code: e.code,
                        message: e.message,
                        address: e.address,
                    }));
                }
            }
            _ => {}
        }
    }
}
