//! `GET /api/v1/rules` (each rule with its counts and last error) and
//! `POST /api/v1/rules/reload` (400 with the error when the file is bad; the old rules keep
//! running). With auth on, both need the admin bearer token: rules write anywhere.

use actix::Addr;
use actix_web::{web, HttpRequest, HttpResponse};
use serde_json::json;

use super::engine::{ListRules, Reload, Rules};
use crate::auth::actor::ApiError;
use crate::auth::http::{require_admin, AuthApi};

/// The rules engine, when the relay runs one (`--rules`).
#[derive(Clone)]
pub struct RulesApi(pub Option<Addr<Rules>>);

/// Adds the rules routes to an app (before its default service).
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/api/v1/rules", web::get().to(list))
        .route("/api/v1/rules/reload", web::post().to(reload));
}

/// The engine after the admin check, or 404 when there is none.
async fn engine<'a>(
    req: &HttpRequest,
    rules: &'a RulesApi,
    auth: &AuthApi,
) -> Result<&'a Addr<Rules>, ApiError> {
    if let Some(auth) = &auth.0 {
        require_admin(req, auth).await?;
    }
    rules
        .0
        .as_ref()
        .ok_or_else(|| ApiError::NotFound("no rules engine on this relay (--rules FILE)".into()))
}

async fn list(
    req: HttpRequest,
    rules: web::Data<RulesApi>,
    auth: web::Data<AuthApi>,
) -> Result<HttpResponse, ApiError> {
    let engine = engine(&req, &rules, &auth).await?;
    let view = engine
        .send(ListRules)
        .await
        .map_err(|_| ApiError::Internal("rules engine unavailable".into()))?;
    Ok(HttpResponse::Ok().json(view))
}

async fn reload(
    req: HttpRequest,
    rules: web::Data<RulesApi>,
    auth: web::Data<AuthApi>,
) -> Result<HttpResponse, ApiError> {
    let engine = engine(&req, &rules, &auth).await?;
    match engine.send(Reload).await {
        Ok(Ok(n)) => Ok(HttpResponse::Ok().json(json!({ "reloaded": true, "rules": n }))),
        Ok(Err(e)) => Err(ApiError::BadRequest(e)),
        Err(_) => Err(ApiError::Internal("rules engine unavailable".into())),
    }
}
