//! The one port: WebSocket upgrade on any path (subprotocol `clasp` echoed, WIRE §1.1) and
//! plain HTTP for `/health`, `/healthz`, `/readyz`; any other plain request gets `200 ok` for
//! load-balancer probes.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{web, HttpRequest, HttpResponse};
use actix_ws::{CloseCode, CloseReason};
use clasp_proto::{ErrorMessage, Message, MAX_PAYLOAD};
use futures_util::future::join_all;
use serde_json::json;

use crate::clock::now_micros;
use crate::messages::GetShardStats;
use crate::router::Router;
use crate::session::{Alive, Disconnected, Inbound, OutboundQueue, Outgoing, Session};
use crate::shard::reply_frame;

/// Largest WebSocket message accepted: one CLASP frame with the 12-byte header.
const MAX_WS_MESSAGE: usize = MAX_PAYLOAD + 12;

/// Routes every request: upgrade or plain HTTP.
pub async fn entry(
    req: HttpRequest,
    body: web::Payload,
    router: web::Data<Router>,
) -> HttpResponse {
    let upgrade = req
        .headers()
        .get(header::UPGRADE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("websocket"));
    if upgrade {
        return websocket(req, body, router.get_ref().clone()).await;
    }
    match req.path() {
        "/health" => health(router.get_ref()).await,
        "/healthz" => HttpResponse::Ok().content_type("text/plain").body("ok"),
        "/ready" | "/readyz" => match crate::metrics::readiness(router.get_ref()) {
            Ok(()) => HttpResponse::Ok().json(json!({ "ready": true })),
            Err(waiting) => HttpResponse::ServiceUnavailable()
                .json(json!({ "ready": false, "waiting": waiting })),
        },
        "/metrics" => HttpResponse::Ok()
            .content_type("text/plain; version=0.0.4; charset=utf-8")
            .body(crate::metrics::render(router.get_ref()).await),
        _ => HttpResponse::Ok().content_type("text/plain").body("ok"),
    }
}

fn offers_clasp(req: &HttpRequest) -> bool {
    req.headers()
        .get_all(header::SEC_WEBSOCKET_PROTOCOL)
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|p| p.trim() == clasp_proto::WS_SUBPROTOCOL)
}

async fn websocket(req: HttpRequest, body: web::Payload, router: Router) -> HttpResponse {
    let (mut response, ws, stream) = match actix_ws::handle(&req, body) {
        Ok(parts) => parts,
        Err(e) => return HttpResponse::from_error(e),
    };
    if offers_clasp(&req) {
        response.headers_mut().insert(
            header::SEC_WEBSOCKET_PROTOCOL,
            HeaderValue::from_static(clasp_proto::WS_SUBPROTOCOL),
        );
    }
    if !router.admit() {
        // Refused: told why (ERROR 501), then closed with 1013 "try again later".
        let (text, code) = if router.draining.load(Ordering::Relaxed) {
            ("Relay is shutting down".to_string(), CloseCode::Away)
        } else {
            (
                format!(
                    "Server at capacity (max {} sessions)",
                    router.config.max_sessions
                ),
                CloseCode::Again,
            )
        };
        actix_web::rt::spawn(async move {
            let mut ws = ws;
            if let Some(frame) =
                reply_frame(&Message::Error(ErrorMessage::new(501, text.clone(), None)))
            {
                let _ = ws.binary(frame).await;
            }
            let _ = ws
                .close(Some(CloseReason {
                    code,
                    description: Some(text),
                }))
                .await;
        });
        return response;
    }
    let queue = Arc::new(OutboundQueue::new(router.config.session_queue));
    let session = Session::new(router, queue.clone()).start();
    actix_web::rt::spawn(crate::session::outbound::run_writer(queue.clone(), ws));
    let mut stream = stream
        .max_frame_size(MAX_WS_MESSAGE)
        .aggregate_continuations()
        .max_continuation_size(MAX_WS_MESSAGE);
    actix_web::rt::spawn(async move {
        while let Some(msg) = stream.recv().await {
            match msg {
                Ok(actix_ws::AggregatedMessage::Binary(data)) => {
                    // Read no more from a client whose own replies are piling up: TCP
                    // back-pressure then slows it down rather than getting it disconnected.
                    queue.wait_until_drained().await;
                    // Awaiting the mailbox gives a flooding client back-pressure.
                    if session
                        .send(Inbound {
                            data,
                            received_us: now_micros(),
                        })
                        .await
                        .is_err()
                    {
                        break;
                    }
                }
                Ok(actix_ws::AggregatedMessage::Text(_)) => {
                    // Text is not CLASP (§1.1): ignored, but it shows the peer is alive.
                    session.do_send(Alive);
                }
                Ok(actix_ws::AggregatedMessage::Ping(data)) => {
                    queue.push_control(Outgoing::Pong(data));
                    session.do_send(Alive);
                }
                Ok(actix_ws::AggregatedMessage::Pong(_)) => session.do_send(Alive),
                Ok(actix_ws::AggregatedMessage::Close(reason)) => {
                    // RFC 6455 §5.5.1: answer a Close with a Close (after what is queued).
                    queue.push_control(Outgoing::Close(reason));
                    break;
                }
                Err(e) => {
                    tracing::debug!(error = %e, "websocket protocol error");
                    let code = match e {
                        actix_ws::ProtocolError::Overflow => CloseCode::Size,
                        _ => CloseCode::Protocol,
                    };
                    queue.push_control(Outgoing::Close(Some(CloseReason {
                        code,
                        description: Some(e.to_string()),
                    })));
                    break;
                }
            }
        }
        // Let the writer flush a close, then end the session.
        actix_web::rt::time::sleep(Duration::from_millis(10)).await;
        session.do_send(Disconnected);
    });
    response
}

async fn health(router: &Router) -> HttpResponse {
    let stats = join_all(router.shards().iter().map(|s| s.send(GetShardStats))).await;
    let subscriptions: usize = stats
        .iter()
        .filter_map(|r| r.as_ref().ok())
        .map(|s| s.subscriptions)
        .sum();
    let c = &router.counters;
    let body = json!({
        "status": if router.draining.load(Ordering::Relaxed) { "draining" } else { "ok" },
        "version": env!("CARGO_PKG_VERSION"),
        "name": router.config.name,
        "uptime": router.started.elapsed().as_secs_f64(),
        "sessions": router.session_count.load(Ordering::Relaxed),
        "params": router.param_count.load(Ordering::Relaxed),
        "subscriptions": subscriptions,
        "actors": router.actors.snapshot(),
        "federation_id": router.federation.id().to_string(),
        "federation": router.federation.links(),
        "counters": {
            "frames_in": c.frames_in.load(Ordering::Relaxed),
            "frames_out": c.frames_out.load(Ordering::Relaxed),
            "dropped": c.dropped.load(Ordering::Relaxed),
            "errors": c.errors.load(Ordering::Relaxed),
            "slow_disconnects": c.slow_disconnects.load(Ordering::Relaxed),
        },
    });
    HttpResponse::Ok().json(body)
}
