//! `GET /api/v1/sessions`: the open sessions with their name, transport, subscriptions,
//! queue depth and input rate, read-only. The web console's sessions panel reads it; an
//! operator can `curl` it to see who is connected. With auth on it needs the admin bearer
//! token (it lists token subjects and scopes).

use actix_web::{web, HttpRequest, HttpResponse};
use serde_json::json;

use crate::auth::actor::ApiError;
use crate::auth::http::{require_admin, AuthApi};
use crate::router::Router;

/// Adds the sessions route to an app (before its default service).
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/api/v1/sessions", web::get().to(list));
}

async fn list(
    req: HttpRequest,
    router: web::Data<Router>,
    auth: web::Data<AuthApi>,
) -> Result<HttpResponse, ApiError> {
    if let Some(auth) = &auth.0 {
        require_admin(&req, auth).await?;
    }
    let sessions = router.session_rows();
    Ok(HttpResponse::Ok().json(json!({
        "count": sessions.len(),
        "sessions": sessions,
    })))
}
