//! Entity registry REST API (FEATURES AU-12): `/api/entities` and `/api/trust-anchors`.
//! Everything but the trust anchors needs an admin bearer token (401 without, 403 if not admin).

use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;
use serde_json::json;

use super::actor::ApiError;
use super::http::{actor, ask, require_admin, AuthApi};
use super::registry::{
    parse_status, CreateEntity, DeleteEntity, EntityPatch, GetEntity, ListEntities, NewEntity,
    SetEntityStatus, TrustAnchors, UpdateEntity,
};

type ApiResult = Result<HttpResponse, ApiError>;

/// Adds the registry routes.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/api/entities", web::post().to(create))
        .route("/api/entities", web::get().to(list))
        .route("/api/entities/{id}", web::get().to(get))
        .route("/api/entities/{id}", web::put().to(update))
        .route("/api/entities/{id}", web::delete().to(delete))
        .route("/api/entities/{id}/status", web::put().to(status))
        .route("/api/trust-anchors", web::get().to(anchors));
}

async fn create(
    req: HttpRequest,
    api: web::Data<AuthApi>,
    body: web::Json<NewEntity>,
) -> ApiResult {
    let auth = actor(&api)?;
    require_admin(&req, auth).await?;
    let created = ask(auth, CreateEntity(body.into_inner())).await??;
    Ok(HttpResponse::Created().json(created))
}

#[derive(Debug, Deserialize)]
struct Page {
    #[serde(default)]
    offset: usize,
    #[serde(default = "default_limit")]
    limit: usize,
}

fn default_limit() -> usize {
    100
}

async fn list(req: HttpRequest, api: web::Data<AuthApi>, page: web::Query<Page>) -> ApiResult {
    let auth = actor(&api)?;
    require_admin(&req, auth).await?;
    let page = page.into_inner();
    let entities = ask(
        auth,
        ListEntities {
            offset: page.offset,
            limit: page.limit,
        },
    )
    .await??;
    Ok(HttpResponse::Ok().json(entities))
}

async fn get(req: HttpRequest, api: web::Data<AuthApi>, id: web::Path<String>) -> ApiResult {
    let auth = actor(&api)?;
    require_admin(&req, auth).await?;
    Ok(HttpResponse::Ok().json(ask(auth, GetEntity(id.into_inner())).await??))
}

async fn update(
    req: HttpRequest,
    api: web::Data<AuthApi>,
    id: web::Path<String>,
    body: web::Json<EntityPatch>,
) -> ApiResult {
    let auth = actor(&api)?;
    require_admin(&req, auth).await?;
    let updated = ask(auth, UpdateEntity(id.into_inner(), body.into_inner())).await??;
    Ok(HttpResponse::Ok().json(updated))
}

#[derive(Debug, Deserialize)]
struct StatusBody {
    status: String,
}

async fn status(
    req: HttpRequest,
    api: web::Data<AuthApi>,
    id: web::Path<String>,
    body: web::Json<StatusBody>,
) -> ApiResult {
    let auth = actor(&api)?;
    require_admin(&req, auth).await?;
    let status = parse_status(&body.status)?;
    Ok(HttpResponse::Ok().json(ask(auth, SetEntityStatus(id.into_inner(), status)).await??))
}

async fn delete(req: HttpRequest, api: web::Data<AuthApi>, id: web::Path<String>) -> ApiResult {
    let auth = actor(&api)?;
    require_admin(&req, auth).await?;
    ask(auth, DeleteEntity(id.into_inner())).await??;
    Ok(HttpResponse::NoContent().finish())
}

async fn anchors(api: web::Data<AuthApi>) -> ApiResult {
    let auth = actor(&api)?;
    let (anchors, depth) = ask(auth, TrustAnchors).await?;
    Ok(HttpResponse::Ok().json(json!({ "anchors": anchors, "cap_max_depth": depth })))
}
