//! `GET /api/v1/bridges`: each bridge's kind, state (up or down), counters, restart count
//! and last error, for the console's bridges panel (and `curl`). Admin token with auth on,
//! as for the other operator listings.

use actix_web::{web, HttpRequest, HttpResponse};
use clasp_actors::auth::actor::ApiError;
use clasp_actors::auth::http::{require_admin, AuthApi};
use clasp_bridges::BridgeRegistry;
use serde_json::json;

/// The listing; 401/403 without the admin token when auth is on.
pub async fn list(
    req: HttpRequest,
    bridges: web::Data<BridgeRegistry>,
    auth: web::Data<AuthApi>,
) -> Result<HttpResponse, ApiError> {
    if let Some(auth) = &auth.0 {
        require_admin(&req, auth).await?;
    }
    let bridges = bridges.reports();
    Ok(HttpResponse::Ok().json(json!({ "count": bridges.len(), "bridges": bridges })))
}
