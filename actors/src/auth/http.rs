//! The auth HTTP API (FEATURES AU-3..AU-8, AU-12): `/auth/register|login|guest|revoke` and the
//! entity registry under `/api/entities`. Served on the relay's port and, with `--auth-port`,
//! on a port of its own. Every answer is JSON; every failure is `{"error": "..."}`.

use actix::Addr;
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;
use serde_json::json;

use super::actor::{
    ApiError, Attempt, Auth, CheckAdmin, FindUser, Guest, Limit, LoginOutcome, PrepareRegistration,
    RegisterUser, Revoke,
};
use super::secret::{burn_password_check, hash_password, verify_password};

/// Longest password accepted; bounds the hashing work one request can cause.
const MAX_PASSWORD: usize = 1024;

/// The Auth actor, when auth is on.
#[derive(Clone)]
pub struct AuthApi(pub Option<Addr<Auth>>);

impl ApiError {
    fn status(&self) -> StatusCode {
        match self {
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::Conflict(_) => StatusCode::CONFLICT,
            ApiError::TooManyRequests(_) => StatusCode::TOO_MANY_REQUESTS,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

impl actix_web::ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        self.status()
    }
    fn error_response(&self) -> HttpResponse {
        HttpResponse::build(self.status()).json(json!({ "error": self.to_string() }))
    }
}

type ApiResult = Result<HttpResponse, ApiError>;

/// Adds the auth and registry routes to an app.
pub fn routes(cfg: &mut web::ServiceConfig) {
    let json = web::JsonConfig::default()
        .limit(64 * 1024)
        .error_handler(|e, _| ApiError::BadRequest(format!("invalid JSON body: {e}")).into());
    cfg.app_data(json)
        .route("/auth/register", web::post().to(register))
        .route("/auth/login", web::post().to(login))
        .route("/auth/guest", web::post().to(guest))
        .route("/auth/revoke", web::post().to(revoke))
        .configure(super::entities_http::routes);
}

/// CORS for the HTTP API (FEATURES AU-7): only the listed origins when some are given,
/// otherwise any origin (the relay logs a warning at start when auth is on).
pub fn cors(origins: &[String]) -> actix_cors::Cors {
    use actix_web::http::{header, Method};
    if origins.is_empty() {
        return actix_cors::Cors::permissive();
    }
    let mut cors = actix_cors::Cors::default()
        .allowed_methods([
            Method::GET,
            Method::POST,
            Method::PUT,
            Method::DELETE,
            Method::OPTIONS,
        ])
        .allowed_headers([header::AUTHORIZATION, header::CONTENT_TYPE, header::ACCEPT])
        .max_age(3600);
    for origin in origins {
        cors = cors.allowed_origin(origin);
    }
    cors
}

/// The actor, or 404 when the relay runs open.
pub(crate) fn actor(api: &AuthApi) -> Result<&Addr<Auth>, ApiError> {
    api.0.as_ref().ok_or_else(|| {
        ApiError::NotFound("authentication is not enabled on this relay (--auth)".into())
    })
}

/// Sends a message and flattens a mailbox failure into a 500.
pub(crate) async fn ask<M>(auth: &Addr<Auth>, msg: M) -> Result<M::Result, ApiError>
where
    M: actix::Message + Send + 'static,
    M::Result: Send,
    Auth: actix::Handler<M>,
{
    auth.send(msg)
        .await
        .map_err(|_| ApiError::Internal("auth service unavailable".into()))
}

fn peer(req: &HttpRequest) -> String {
    req.peer_addr()
        .map_or_else(|| "unknown".into(), |a| a.ip().to_string())
}

/// The `Authorization: Bearer` token, if any.
pub(crate) fn bearer(req: &HttpRequest) -> Option<String> {
    req.headers()
        .get(actix_web::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .map(|t| t.trim().to_string())
}

/// Counts a registration or guest request against its address's limit (429 when over).
async fn count_registration(auth: &Addr<Auth>, req: &HttpRequest) -> Result<(), ApiError> {
    let attempt = Attempt {
        limit: Limit::Register,
        peer: peer(req),
        username: None,
    };
    ask(auth, attempt).await?
}

#[derive(Debug, Deserialize)]
struct RegisterBody {
    username: String,
    password: String,
    #[serde(default)]
    user_id: Option<String>,
    #[serde(default)]
    scopes: Option<Vec<String>>,
}

fn check_username(name: &str) -> Result<String, ApiError> {
    let name = name.trim();
    let len = name.chars().count();
    if !(2..=32).contains(&len) {
        return Err(ApiError::BadRequest(
            "username must be 2 to 32 characters".into(),
        ));
    }
    if name.chars().any(char::is_control) {
        return Err(ApiError::BadRequest(
            "username must not contain control characters".into(),
        ));
    }
    Ok(name.to_string())
}

fn check_user_id(id: &Option<String>) -> Result<(), ApiError> {
    match id {
        Some(id)
            if id.is_empty()
                || id.len() > 64
                || !id
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-') =>
        {
            Err(ApiError::BadRequest(
                "user_id must be 1 to 64 of [A-Za-z0-9_-]".into(),
            ))
        }
        _ => Ok(()),
    }
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<T, ApiError> {
    web::block(f)
        .await
        .map_err(|_| ApiError::Internal("worker pool unavailable".into()))
}

async fn register(
    req: HttpRequest,
    api: web::Data<AuthApi>,
    body: web::Json<RegisterBody>,
) -> ApiResult {
    let auth = actor(&api)?;
    let body = body.into_inner();
    count_registration(auth, &req).await?;
    let username = check_username(&body.username)?;
    check_user_id(&body.user_id)?;
    if body.password.chars().count() < 6 || body.password.len() > MAX_PASSWORD {
        return Err(ApiError::BadRequest(format!(
            "password must be at least 6 characters (and at most {MAX_PASSWORD} bytes)"
        )));
    }
    let (user_id, scopes) = ask(
        auth,
        PrepareRegistration {
            user_id: body.user_id,
            scopes: body.scopes,
            bearer: bearer(&req),
        },
    )
    .await??;
    let password = body.password;
    let password_hash = blocking(move || hash_password(&password))
        .await?
        .map_err(|e| ApiError::Internal(e.to_string()))?;
    let issued = ask(
        auth,
        RegisterUser {
            username,
            user_id,
            scopes,
            password_hash,
        },
    )
    .await??;
    Ok(HttpResponse::Ok().json(issued))
}

#[derive(Debug, Deserialize)]
struct LoginBody {
    username: String,
    password: String,
}

async fn login(req: HttpRequest, api: web::Data<AuthApi>, body: web::Json<LoginBody>) -> ApiResult {
    let auth = actor(&api)?;
    let body = body.into_inner();
    let username = body.username.trim().to_string();
    let peer = peer(&req);
    ask(
        auth,
        Attempt {
            limit: Limit::Login,
            peer: peer.clone(),
            username: Some(username.clone()),
        },
    )
    .await??;
    let user = ask(
        auth,
        FindUser {
            username: username.clone(),
        },
    )
    .await??;
    let password = body.password;
    let matched = blocking(move || match user {
        Some(u)
            if password.len() <= MAX_PASSWORD && verify_password(&password, &u.password_hash) =>
        {
            Some(u)
        }
        Some(_) => None,
        None => {
            // Same cost as a wrong password: timing does not reveal who exists.
            burn_password_check(&password);
            None
        }
    })
    .await?;
    let issued = ask(
        auth,
        LoginOutcome {
            peer,
            username,
            user: matched,
        },
    )
    .await??;
    Ok(HttpResponse::Ok().json(issued))
}

#[derive(Debug, Default, Deserialize)]
struct GuestBody {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    user_id: Option<String>,
    #[serde(default)]
    scopes: Option<Vec<String>>,
}

async fn guest(
    req: HttpRequest,
    api: web::Data<AuthApi>,
    body: Option<web::Json<GuestBody>>,
) -> ApiResult {
    let auth = actor(&api)?;
    let body = body.map(web::Json::into_inner).unwrap_or_default();
    count_registration(auth, &req).await?;
    let name = body.name.as_deref().map(check_username).transpose()?;
    check_user_id(&body.user_id)?;
    let issued = ask(
        auth,
        Guest {
            name,
            user_id: body.user_id,
            scopes: body.scopes,
        },
    )
    .await??;
    Ok(HttpResponse::Ok().json(issued))
}

#[derive(Debug, Deserialize)]
struct RevokeBody {
    token: String,
}

async fn revoke(
    req: HttpRequest,
    api: web::Data<AuthApi>,
    body: web::Json<RevokeBody>,
) -> ApiResult {
    let auth = actor(&api)?;
    // Holding a token is the right to revoke it; an admin may revoke any.
    let _ = req;
    let closed = ask(
        auth,
        Revoke {
            token: body.into_inner().token,
        },
    )
    .await??;
    Ok(HttpResponse::Ok().json(json!({ "revoked": true, "sessions_closed": closed })))
}

/// Fails unless the request carries an admin bearer token.
pub async fn require_admin(req: &HttpRequest, auth: &Addr<Auth>) -> Result<(), ApiError> {
    ask(
        auth,
        CheckAdmin {
            bearer: bearer(req),
        },
    )
    .await?
}
