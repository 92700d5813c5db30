//! Server mode: the WebSocket upgrade of a web client, on a path of the relay's port or on a
//! port of the bridge's own. Admission happens here, before the upgrade: a static access
//! token (standalone) and/or a CLASP token checked by the relay's `Auth` actor (embedded);
//! a refused client gets HTTP 401 and never a socket.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use actix_web::http::header;
use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer};
use clasp_actors::link::RouterLink;
use clasp_actors::router::Router;
use serde_json::json;

use super::fanout::Fanout;
use super::session::{self, Admitted};
use super::WsJsonConfig;
use crate::{BridgeError, BridgeStats};

/// Where each connection's link comes from.
#[derive(Clone)]
pub(crate) enum Base {
    /// Mounted on the relay's port: a new in-process endpoint per connection.
    Router(Router),
    /// Own port: forked from the bridge's link (in-process or remote).
    Link(RouterLink),
}

/// What every connection of one bridge instance shares.
pub(crate) struct Endpoint {
    pub base: Base,
    pub config: Arc<WsJsonConfig>,
    pub stats: Arc<BridgeStats>,
    pub next: AtomicU64,
    pub fanout: Arc<Fanout>,
}

impl Endpoint {
    fn link(&self, name: &str) -> RouterLink {
        match &self.base {
            Base::Router(r) => RouterLink::local(r, name),
            Base::Link(l) => l.sibling(name),
        }
    }
}

/// The client's token: `?token=` or `Authorization: Bearer`.
fn token_of(req: &HttpRequest) -> Option<String> {
    let query = web::Query::<HashMap<String, String>>::from_query(req.query_string()).ok();
    if let Some(t) = query.and_then(|q| q.get("token").cloned()) {
        return Some(t);
    }
    let value = req.headers().get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim().to_string())
}

/// Compares without an early exit, so the time taken says nothing about the secret.
fn same_secret(a: &str, b: &str) -> bool {
    a.len() == b.len() && a.bytes().zip(b.bytes()).fold(0u8, |d, (x, y)| d | (x ^ y)) == 0
}

fn unauthorized(message: &str) -> HttpResponse {
    HttpResponse::Unauthorized()
        .insert_header((header::WWW_AUTHENTICATE, "Bearer"))
        .json(json!({"error": message}))
}

/// The upgrade handler.
pub(crate) async fn upgrade(
    req: HttpRequest,
    body: web::Payload,
    endpoint: web::Data<Endpoint>,
) -> HttpResponse {
    let peer = req
        .peer_addr()
        .map_or_else(|| "unknown".to_string(), |a| a.to_string());
    let token = token_of(&req).unwrap_or_default();
    if let Some(expected) = &endpoint.config.access_token {
        if !same_secret(&token, expected) {
            tracing::info!(bridge = %endpoint.stats.name, peer, "json client refused: wrong or missing access token");
            return unauthorized(
                "a valid access token is required (?token= or Authorization: Bearer)",
            );
        }
    }
    let n = endpoint.next.fetch_add(1, Ordering::Relaxed);
    let link = endpoint.link(&format!("{}#{n}", endpoint.stats.name));
    let grant = if link.requires_token() {
        match link.validate_token(&token).await {
            Ok(grant) => grant,
            Err(denial) => {
                link.close();
                tracing::info!(bridge = %endpoint.stats.name, peer, reason = %denial, "json client refused");
                return unauthorized(&denial.to_string());
            }
        }
    } else {
        None
    };
    let (response, session, stream) = match actix_ws::handle(&req, body) {
        Ok(parts) => parts,
        Err(e) => {
            link.close();
            return HttpResponse::from_error(e);
        }
    };
    // Clients sharing a remote link get each other's PUBLISHes from the bridge.
    let fanout = link
        .local_router()
        .is_none()
        .then(|| (endpoint.fanout.clone(), n));
    let admitted = Admitted {
        link,
        grant,
        peer,
        fanout,
    };
    actix_web::rt::spawn(session::serve(
        session,
        stream,
        admitted,
        endpoint.config.clone(),
        endpoint.stats.clone(),
    ));
    response
}

/// A plain request to the bridge's own port: say what it is.
async fn plain() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/plain")
        .body("CLASP JSON WebSocket bridge: connect with a WebSocket\n")
}

/// Closes an in-process link when dropped.
struct CloseOnDrop(RouterLink);

impl Drop for CloseOnDrop {
    fn drop(&mut self) {
        self.0.close();
    }
}

/// Serves the bridge on its own port until the server fails.
pub(crate) async fn run_own_port(
    link: RouterLink,
    config: Arc<WsJsonConfig>,
    stats: Arc<BridgeStats>,
) -> Result<(), BridgeError> {
    // Each run gets a fresh link and forks one per client: this one only has to go when
    // the run ends, however it ends.
    let _base = CloseOnDrop(link.clone());
    let endpoint = web::Data::new(Endpoint {
        base: Base::Link(link),
        config: config.clone(),
        stats: stats.clone(),
        next: AtomicU64::new(1),
        fanout: Arc::default(),
    });
    let server = HttpServer::new(move || {
        App::new()
            .app_data(endpoint.clone())
            .default_service(web::to(
                |req: HttpRequest, body: web::Payload, ep: web::Data<Endpoint>| async move {
                    let upgrade = req
                        .headers()
                        .get(header::UPGRADE)
                        .and_then(|v| v.to_str().ok())
                        .is_some_and(|v| v.eq_ignore_ascii_case("websocket"));
                    if upgrade {
                        self::upgrade(req, body, ep).await
                    } else {
                        plain().await
                    }
                },
            ))
    })
    .workers(1)
    .tcp_nodelay(true)
    .disable_signals()
    .shutdown_timeout(1)
    .bind((config.bind.as_str(), config.port))
    .map_err(|e| BridgeError::io(format!("bind {}:{}", config.bind, config.port), e))?
    .run();
    stats.set_up(true);
    tracing::info!(bridge = %stats.name, addr = %format!("{}:{}", config.bind, config.port), "json websocket bridge listening");
    server
        .await
        .map_err(|e| BridgeError::io("json websocket server", e))
}
