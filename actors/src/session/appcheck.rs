//! The session side of the app config (issue 8, FEATURES AC-3..AC-5): write rules run on
//! SET, PUBLISH and each bundle member after the scope check, and what a session receives
//! (initial and subscription snapshots, GET answers, live deliveries) passes its visibility
//! rules and redaction. Checks that need another address's value ask its shard first, under
//! `ctx.wait`, so the session's requests stay in order. Without an app config, or for an
//! address no rule names, every path here returns at once and frames are not touched.

use std::sync::Arc;

use actix::prelude::*;
use bytes::Bytes;
use clasp_proto::{
    code, decode_frame, encode_frame, Address, Bundle, FrameHeader, Message, ParamState, Payload,
    Publish, QoS, Set, Value,
};
use futures_util::future::join_all;

use super::Session;
use crate::appconfig::{view, AppConfig, Decision, State, Violation};
use crate::messages::{Deliver, Delivery, ShardGet};
use crate::router::Router;

use crate::appconfig::RULE_VIOLATION;

/// Current values of `addresses` (absent when not stored or not an address), from their
/// shards.
async fn fetch(router: &Router, addresses: Vec<String>) -> State {
    let asks = addresses
        .iter()
        .filter_map(|a| Address::parse(a).ok())
        .map(|address| {
            let shard = router.shard_for(address.as_str()).clone();
            async move { shard.send(ShardGet { address }).await.ok().flatten() }
        });
    join_all(asks)
        .await
        .into_iter()
        .flatten()
        .map(|p| (p.address.to_string(), p.value))
        .collect()
}

fn present(state: &State, at: &str) -> bool {
    state.get(at).is_some_and(|v| !matches!(v, Value::Null))
}

/// The value a PUBLISH carries, as rules see it.
fn payload_value(p: &Payload) -> Value {
    match p {
        Payload::None => Value::Null,
        Payload::Value(v) => v.clone(),
        Payload::Samples(s) => Value::Array(s.iter().map(|f| Value::Float(*f)).collect()),
    }
}

/// What one session may see, carried into the futures that gather snapshots and GETs.
pub(super) struct View {
    app: Arc<AppConfig>,
    subject: Option<String>,
    router: Router,
}

/// Drops the params `view` hides and redacts the rest (no-op without a view).
pub(super) async fn view_params(view: Option<View>, params: Vec<ParamState>) -> Vec<ParamState> {
    let Some(view) = view else { return params };
    let subject = view.subject.as_deref();
    let decisions: Vec<Decision> = params
        .iter()
        .map(|p| view::decide(&view.app.visibility, p.address.as_str(), subject))
        .collect();
    let mut needed: Vec<String> = decisions
        .iter()
        .filter_map(|d| match d {
            Decision::IfPresent(at) => Some(at.clone()),
            _ => None,
        })
        .collect();
    needed.sort();
    needed.dedup();
    let state = if needed.is_empty() {
        State::new()
    } else {
        fetch(&view.router, needed).await
    };
    params
        .into_iter()
        .zip(decisions)
        .filter(|(_, d)| match d {
            Decision::Show => true,
            Decision::Hide => false,
            Decision::IfPresent(at) => present(&state, at),
        })
        .map(|(mut p, _)| {
            view::redact(&view.app.transforms, p.address.as_str(), &mut p.value);
            p
        })
        .collect()
}

/// Redacts the values of an encoded SET, PUBLISH or SNAPSHOT for one session; `None` if
/// the frame does not decode (dropped rather than leaked).
fn redact_frame(app: &AppConfig, frame: &[u8]) -> Option<Bytes> {
    let mut decoded = decode_frame(frame).ok()?;
    match &mut decoded.message {
        Message::Set(s) => view::redact(&app.transforms, s.address.as_str(), &mut s.value),
        Message::Publish(p) => {
            if let Payload::Value(v) = &mut p.payload {
                view::redact(&app.transforms, p.address.as_str(), v);
            }
        }
        Message::Snapshot(snap) => {
            for p in &mut snap.params {
                view::redact(&app.transforms, p.address.as_str(), &mut p.value);
            }
        }
        _ => {}
    }
    encode_frame(&decoded.header, &decoded.message)
        .ok()
        .map(Bytes::from)
}

/// The same delivery with another frame (for this session only).
fn with_frame(msg: &Deliver, frame: Bytes) -> Deliver {
    let d = &msg.delivery;
    Deliver {
        delivery: Arc::new(Delivery {
            frame,
            class: d.class,
            address: d.address.clone(),
            numeric: d.numeric,
            created: d.created,
        }),
        subs: msg.subs.clone(),
    }
}

/// Is this frame a SNAPSHOT (the only address-less frame that carries values)?
fn is_snapshot(frame: &[u8]) -> bool {
    FrameHeader::split(frame).is_ok_and(|(_, payload, _)| payload.first() == Some(&code::SNAPSHOT))
}

impl Session {
    fn app(&self) -> Option<Arc<AppConfig>> {
        self.router.app_config.load_full()
    }

    fn subject(&self) -> Option<String> {
        self.grant.as_ref().map(|g| g.subject.clone())
    }

    /// The view for snapshot and GET futures; `None` when nothing filters what sessions see.
    pub(super) fn app_view(&self) -> Option<View> {
        let app = self.app().filter(|a| a.filters_views())?;
        Some(View {
            app,
            subject: self.subject(),
            router: self.router.clone(),
        })
    }

    /// SET after its scope check: the params' TTL, then the write rules.
    pub(super) fn app_set(&mut self, mut set: Set, qos: QoS, ctx: &mut Context<Self>) {
        let Some(app) = self.app() else {
            return self.set(set, qos);
        };
        if set.ttl.is_none() {
            set.ttl = app.ttl_for(set.address.as_str());
        }
        if app.write_rule(set.address.as_str()).is_none() {
            return self.set(set, qos);
        }
        let writes = vec![(set.address.to_string(), set.value.clone())];
        self.app_guard(app, writes, false, ctx, move |act, _| act.set(set, qos));
    }

    /// PUBLISH after its scope check.
    pub(super) fn app_publish(&mut self, p: Publish, ctx: &mut Context<Self>) {
        let Some(app) = self
            .app()
            .filter(|a| a.write_rule(p.address.as_str()).is_some())
        else {
            return self.publish(p, ctx);
        };
        let writes = vec![(p.address.to_string(), payload_value(&p.payload))];
        self.app_guard(app, writes, false, ctx, move |act, ctx| act.publish(p, ctx));
    }

    /// BUNDLE after its scope check: every member passes the rules or nothing is applied.
    pub(super) fn app_bundle(&mut self, mut b: Bundle, qos: QoS, ctx: &mut Context<Self>) {
        let Some(app) = self.app() else {
            return self.bundle_checked(b, qos, ctx);
        };
        let mut writes = Vec::new();
        for m in &mut b.messages {
            let (address, value) = match m {
                Message::Set(s) => {
                    if s.ttl.is_none() {
                        s.ttl = app.ttl_for(s.address.as_str());
                    }
                    (&s.address, &s.value)
                }
                Message::Publish(p) => {
                    if app.write_rule(p.address.as_str()).is_some() {
                        writes.push((p.address.to_string(), payload_value(&p.payload)));
                    }
                    continue;
                }
                _ => continue,
            };
            if app.write_rule(address.as_str()).is_some() {
                writes.push((address.to_string(), value.clone()));
            }
        }
        self.app_guard(app, writes, true, ctx, move |act, ctx| {
            act.bundle_checked(b, qos, ctx)
        });
    }

    /// Runs the rules on `writes` (looking up state first if a check needs it), then `next`
    /// if all pass, else ERROR 402 with the first failure's message.
    fn app_guard<F>(
        &mut self,
        app: Arc<AppConfig>,
        writes: Vec<(String, Value)>,
        bundle: bool,
        ctx: &mut Context<Self>,
        next: F,
    ) where
        F: FnOnce(&mut Self, &mut Context<Self>) + 'static,
    {
        if writes.is_empty() {
            return next(self, ctx);
        }
        let subject = self.subject();
        let mut lookups: Vec<String> = writes
            .iter()
            .flat_map(|(a, v)| app.write_lookups(a, v, subject.as_deref()))
            .collect();
        lookups.sort();
        lookups.dedup();
        let decide = move |state: &State| -> Result<(), (String, Violation)> {
            for (address, value) in &writes {
                app.check_write(address, value, subject.as_deref(), state)
                    .map_err(|v| (address.clone(), v))?;
            }
            Ok(())
        };
        let finish = move |act: &mut Self, ctx: &mut Context<Self>, verdict| match verdict {
            Ok(()) => next(act, ctx),
            Err((address, violation)) => act.refuse_write(ctx, address, &violation, bundle),
        };
        if lookups.is_empty() {
            let verdict = decide(&State::new());
            return finish(self, ctx, verdict);
        }
        let router = self.router.clone();
        ctx.wait(
            async move { fetch(&router, lookups).await }
                .into_actor(self)
                .map(move |state, act, ctx| {
                    let verdict = decide(&state);
                    finish(act, ctx, verdict);
                }),
        );
    }

    fn refuse_write(
        &mut self,
        ctx: &mut Context<Self>,
        address: String,
        violation: &Violation,
        bundle: bool,
    ) {
        tracing::debug!(session = %self.id, %address, rule = violation.rule, "write refused by app config");
        let text = if bundle {
            format!("Bundle rejected: {}", violation.message)
        } else {
            violation.message.clone()
        };
        self.error(ctx, RULE_VIOLATION, text, Some(address));
    }

    /// A delivery as this session may see it: `Some` to deliver now (re-encoded for this
    /// session if redacted), `None` when hidden or deferred until a lookup answers (then
    /// `deliver_viewed` is called with it).
    pub(super) fn app_view_delivery(
        &mut self,
        msg: Deliver,
        ctx: &mut Context<Self>,
    ) -> Option<Deliver> {
        // The fast path borrows: no reference counting per delivery.
        let filters = |a: &Arc<AppConfig>| a.filters_views();
        if !self.router.app_config.load().as_ref().is_some_and(filters) {
            return Some(msg);
        }
        let Some(address) = msg.delivery.address.as_ref() else {
            if is_snapshot(&msg.delivery.frame) {
                self.view_snapshot_frame(msg, ctx);
                return None;
            }
            return Some(msg);
        };
        let app = self.app()?;
        let subject = self.grant.as_ref().map(|g| g.subject.as_str());
        let decision = view::decide(&app.visibility, address.as_str(), subject);
        let redact = view::redacts(&app.transforms, address.as_str());
        if decision == Decision::Show && !redact {
            return Some(msg);
        }
        let viewed = move |msg: Deliver| {
            if redact {
                redact_frame(&app, &msg.delivery.frame).map(|f| with_frame(&msg, f))
            } else {
                Some(msg)
            }
        };
        match decision {
            Decision::Show => viewed(msg),
            Decision::Hide => None,
            Decision::IfPresent(at) => {
                let router = self.router.clone();
                ctx.wait(
                    async move { present(&fetch(&router, vec![at.clone()]).await, &at) }
                        .into_actor(self)
                        .map(move |visible, act, ctx| {
                            if act.phase != super::Phase::Open {
                                return;
                            }
                            if let Some(msg) = viewed(msg).filter(|_| visible) {
                                act.deliver_viewed(msg, ctx);
                            }
                        }),
                );
                None
            }
        }
    }

    /// A replayed journal entry as this session may see it: `None` when a visibility rule
    /// hides it (a `require_state_not_null` rule hides it too: a replay is not worth a
    /// lookup per entry), else the frame, redacted if a transform applies. For REPLAY,
    /// whose entries do not pass through `deliver`.
    #[allow(dead_code)] // called by REPLAY once the journal's session code lands
    pub(super) fn app_view_replayed(&self, address: &str, frame: Bytes) -> Option<Bytes> {
        let app = self.router.app_config.load_full();
        let Some(app) = app.as_ref() else {
            return Some(frame);
        };
        let subject = self.grant.as_ref().map(|g| g.subject.as_str());
        if view::decide(&app.visibility, address, subject) != Decision::Show {
            return None;
        }
        if view::redacts(&app.transforms, address) {
            return redact_frame(app, &frame);
        }
        Some(frame)
    }

    /// A subscription snapshot: filtered and redacted, re-encoded, then delivered.
    fn view_snapshot_frame(&mut self, msg: Deliver, ctx: &mut Context<Self>) {
        let Ok(decoded) = decode_frame(&msg.delivery.frame) else {
            return;
        };
        let Message::Snapshot(snapshot) = decoded.message else {
            return;
        };
        let view = self.app_view();
        let header = decoded.header;
        ctx.wait(view_params(view, snapshot.params).into_actor(self).map(
            move |params, act, ctx| {
                if params.is_empty() {
                    return;
                }
                let message = Message::Snapshot(clasp_proto::Snapshot { params });
                if let Ok(frame) = encode_frame(&header, &message) {
                    act.deliver_viewed(with_frame(&msg, Bytes::from(frame)), ctx);
                }
            },
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clasp_proto::{encode_snapshot_frames, Snapshot};

    fn app() -> AppConfig {
        AppConfig::parse(
            r#"{"snapshot_transforms":[{"path":"/u/{id}","redact_fields":["secret"]}]}"#,
            "t",
        )
        .expect("valid")
    }

    fn profile() -> Value {
        Value::Map(vec![
            ("name".into(), Value::String("a".into())),
            ("secret".into(), Value::String("s".into())),
        ])
    }

    #[test]
    fn frames_are_redacted_and_keep_their_header() {
        let address = Address::parse("/u/a").expect("address");
        let header = FrameHeader::new(QoS::Confirm);
        let set = Message::Set(Set::new(address.clone(), profile()));
        let frame = encode_frame(&header, &set).expect("encodes");
        assert!(!is_snapshot(&frame));
        let out = redact_frame(&app(), &frame).expect("redacted");
        let decoded = decode_frame(&out).expect("decodes");
        assert_eq!(decoded.header.qos, QoS::Confirm);
        let Message::Set(s) = decoded.message else {
            panic!("still a SET")
        };
        assert_eq!(s.value.get("secret"), None);
        assert_eq!(s.value.get("name"), Some(&Value::String("a".into())));
        let param = ParamState {
            address,
            value: profile(),
            revision: 1,
            writer: None,
            timestamp: None,
        };
        let frames =
            encode_snapshot_frames(&crate::shard::REPLY_HEADER, &[param]).expect("encodes");
        assert!(is_snapshot(&frames[0]));
        let out = redact_frame(&app(), &frames[0]).expect("redacted");
        let Message::Snapshot(Snapshot { params }) = decode_frame(&out).expect("ok").message else {
            panic!("still a SNAPSHOT")
        };
        assert_eq!(params[0].value.get("secret"), None);
        assert!(redact_frame(&app(), b"garbage").is_none());
    }
}
