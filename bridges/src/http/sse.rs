//! `GET /api/v1/subscribe/{pattern}` as Server-Sent Events: the current values first, then
//! every change, as `event: value` (params) and `event: event` (events, streams, gestures,
//! timelines) with a JSON `data:` line; a comment line every 15 s (`--sse-keepalive`) keeps proxies from
//! closing an idle stream and lets the server notice a client that went away, which drops
//! the subscription.

use std::convert::Infallible;

use actix_web::web::{self, Bytes};
use actix_web::{HttpRequest, HttpResponse};
use clasp_actors::auth::grant::unix_now;
use clasp_actors::auth::Action;
use clasp_actors::client::Update;
use clasp_actors::link::LinkSubscription;
use clasp_proto::{Pattern, SignalType};
use futures_util::stream::{self, StreamExt};
use serde_json::json;

use super::access::{admit, Caller};
use super::errors::ApiError;
use super::json::to_json;
use super::routes::{public, tail, Api};
use crate::BridgeStats;

struct Feed {
    sub: LinkSubscription,
    tick: tokio::time::Interval,
    who: Caller,
    api: web::Data<Api>,
}

/// The name of an update's SSE event.
fn event_name(signal: SignalType) -> &'static str {
    match signal {
        SignalType::Param => "value",
        _ => "event",
    }
}

/// One SSE message for an update.
fn frame(api: &Api, u: &Update) -> Bytes {
    let mut data = json!({
        "address": public(api, u.address.as_str()),
        "value": to_json(&u.value),
        "type": u.signal.name(),
    });
    if let Some(r) = u.revision {
        data["revision"] = json!(r);
    }
    if let Some(t) = u.timestamp {
        data["timestamp_us"] = json!(t);
    }
    // serde_json never writes a raw newline, so the data fits one `data:` line.
    Bytes::from(format!("event: {}\ndata: {data}\n\n", event_name(u.signal)))
}

/// Opens the stream (400 for a bad pattern; 401/502 as the other routes).
pub async fn subscribe(req: HttpRequest, api: web::Data<Api>) -> Result<HttpResponse, ApiError> {
    let who = admit(&req, &api.gate, &api.link).await?;
    let path = tail(&req, "pattern")?;
    if path.is_empty() || path.chars().any(char::is_control) {
        return Err(ApiError::BadRequest(
            "an address pattern is required".into(),
        ));
    }
    let text = format!("{}/{}", api.namespace.as_str(), path);
    Pattern::compile(&text)
        .map_err(|e| ApiError::BadRequest(format!("invalid pattern {path:?}: {e}")))?;
    if !api.link.is_up() {
        return Err(ApiError::BadGateway("not connected to the relay".into()));
    }
    let sub = api.watch.subscribe(&text).await?;
    let tick = tokio::time::interval_at(tokio::time::Instant::now() + api.keepalive, api.keepalive);
    let feed = Feed {
        sub,
        tick,
        who,
        api: api.clone(),
    };
    let updates = stream::unfold(feed, |mut feed| async move {
        loop {
            // A revoked or expired token ends the stream, as it ends a WebSocket session.
            if feed
                .who
                .grant
                .as_ref()
                .is_some_and(|g| g.is_revoked() || g.is_expired(unix_now()))
            {
                return None;
            }
            tokio::select! {
                update = feed.sub.next() => {
                    let u = update?;
                    if !feed.who.may(Action::Read, u.address.as_str()) {
                        continue;
                    }
                    BridgeStats::bump(&feed.api.stats.sent);
                    let chunk = frame(&feed.api, &u);
                    return Some((Ok::<_, Infallible>(chunk), feed));
                }
                _ = feed.tick.tick() => {
                    return Some((Ok(Bytes::from_static(b": keep-alive\n\n")), feed));
                }
            }
        }
    });
    let opening =
        stream::once(async { Ok::<_, Infallible>(Bytes::from_static(b": subscribed\n\n")) });
    Ok(HttpResponse::Ok()
        .content_type("text/event-stream")
        .insert_header(("Cache-Control", "no-cache"))
        .insert_header(("X-Accel-Buffering", "no"))
        .streaming(opening.chain(updates)))
}
