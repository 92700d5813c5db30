//! `RouterLink` calls the OSC bridge needs beyond set/get/publish/subscribe: a bundle held
//! until a scheduled time (an OSC bundle's timetag), and the router's clock to convert that
//! timetag into. In-process the endpoint runs the bundle exactly as a session runs a BUNDLE
//! frame (`session::bundle`); over WebSocket it is the client's `bundle_at`.

use actix::prelude::*;
use clasp_proto::{Address, Message, Set};
use tokio::sync::oneshot;

use crate::client::{BundleItem, ClientError};
use crate::link::{LinkEndpoint, RouterLink};
use crate::session::bundle;

impl RouterLink {
    /// Applies SETs and events together (all or nothing), now or, with `at`, at that router
    /// time (µs since the Unix epoch, see [`RouterLink::router_time`]). Resolves when the
    /// bundle has run: the last SET's revision.
    pub async fn bundle_at(
        &self,
        items: Vec<BundleItem>,
        at: Option<u64>,
    ) -> Result<Option<u64>, ClientError> {
        match self {
            RouterLink::Remote(c) => c.bundle_at(items, at).await,
            RouterLink::Local(l) => {
                let mut messages = Vec::with_capacity(items.len());
                for item in items {
                    messages.push(match item {
                        BundleItem::Set(a, v) => Message::Set(Set::new(Address::parse(&a)?, v)),
                        BundleItem::Emit(a, v) => Message::Publish(clasp_proto::Publish {
                            signal: clasp_proto::SignalType::Event,
                            phase: clasp_proto::GesturePhase::Start,
                            address: Address::parse(&a)?,
                            payload: clasp_proto::Payload::Value(v),
                            timestamp: None,
                            id: None,
                            rate: None,
                        }),
                    });
                }
                let (tx, rx) = oneshot::channel();
                l.endpoint
                    .send(LinkBundle {
                        messages,
                        at,
                        reply: tx,
                    })
                    .await
                    .map_err(|_| ClientError::Closed)?;
                rx.await.map_err(|_| ClientError::Closed)?
            }
        }
    }

    /// The router's clock now (µs since the Unix epoch): the time base of `bundle_at`.
    /// Over WebSocket it is the client's estimate from clock sync.
    pub fn router_time(&self) -> u64 {
        match self {
            RouterLink::Remote(c) => c.time(),
            RouterLink::Local(_) => crate::clock::now_micros(),
        }
    }
}

#[derive(Message)]
#[rtype(result = "()")]
struct LinkBundle {
    messages: Vec<Message>,
    at: Option<u64>,
    reply: oneshot::Sender<Result<Option<u64>, ClientError>>,
}

impl Handler<LinkBundle> for LinkEndpoint {
    type Result = ();
    fn handle(&mut self, msg: LinkBundle, ctx: &mut Context<Self>) {
        let LinkBundle {
            messages,
            at,
            reply,
        } = msg;
        bundle::at_time(ctx, self, at, move |act, ctx| {
            let Some(me) = act.me.clone() else {
                let _ = reply.send(Err(ClientError::Closed));
                return;
            };
            // `wait`, as a session does: later writes of this link follow the bundle.
            ctx.wait(
                bundle::apply(act.router.clone(), me, messages)
                    .into_actor(act)
                    .map(move |result, _, _| {
                        let _ = reply.send(result.map_err(|(code, message, address)| {
                            ClientError::Server {
                                code,
                                message,
                                address,
                            }
                        }));
                    }),
            );
        });
    }
}
