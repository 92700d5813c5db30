//! The web console (issue 11): the static page built from `console/` and embedded in the
//! binary by `build.rs`, served at `/` on the relay's port, plus the one JSON endpoint it needs
//! that the relay alone cannot give (`GET /api/v1/bridges`). Plain GETs only: a WebSocket
//! upgrade on `/` still reaches the CLASP listener, and every other path is untouched.

mod assets;
mod bridges_api;

use std::sync::Arc;

use actix_web::{guard, web, HttpResponse};
use clasp_actors::relay::HttpMount;
use clasp_bridges::BridgeRegistry;

use assets::{Asset, CONSOLE_BUILT};

/// The console's routes on the relay's port: its files and the bridges listing of `bridges`.
pub fn mount(bridges: BridgeRegistry) -> HttpMount {
    if CONSOLE_BUILT {
        tracing::info!("web console served at / on the relay's port");
    } else {
        tracing::warn!("this binary has no web console (console/dist was missing at build time): / serves a placeholder; run scripts/setup.sh and rebuild");
    }
    Arc::new(move |cfg: &mut web::ServiceConfig, _router| {
        let bridges = bridges.clone();
        cfg.service(
            web::resource("/api/v1/bridges")
                .app_data(web::Data::new(bridges))
                .route(web::get().to(bridges_api::list)),
        );
        cfg.service(
            web::resource("/{path:.*}")
                .guard(guard::fn_guard(|ctx| {
                    let head = ctx.head();
                    let plain_get = head.method == actix_web::http::Method::GET
                        || head.method == actix_web::http::Method::HEAD;
                    let upgrade = head
                        .headers()
                        .get(actix_web::http::header::UPGRADE)
                        .is_some();
                    plain_get && !upgrade && Asset::find(head.uri.path()).is_some()
                }))
                .to(serve),
        );
    })
}

async fn serve(req: actix_web::HttpRequest) -> HttpResponse {
    match Asset::find(req.path()) {
        Some(asset) => HttpResponse::Ok()
            .content_type(asset.content_type)
            .insert_header(("Cache-Control", asset.cache_control))
            .insert_header(("X-Content-Type-Options", "nosniff"))
            .body(asset.bytes),
        // The guard only lets known paths in; a race-free answer anyway.
        None => HttpResponse::NotFound().finish(),
    }
}
