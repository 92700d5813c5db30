//! The REST endpoints (FEATURES HTTP-2): state read/write/delete, emit, snapshot, and the
//! SSE subscription, all backed by router state through a `RouterLink`. HTTP path
//! `/api/v1/state/lights/on` is the CLASP address `/lights/on` (under the namespace, if any).

use std::sync::Arc;

use actix_web::{web, HttpRequest, HttpResponse};
use clasp_actors::auth::Action;
use clasp_actors::client::{ClientError, SetOptions};
use clasp_actors::link::RouterLink;
use clasp_proto::{SignalType, Ttl, Value};
use serde_json::{json, Map, Value as Json};

use super::access::{admit, Caller, Gate};
use super::body::{parse_body, read_limited};
use super::errors::ApiError;
use super::json::{to_json, to_value};
use super::{openapi, sse, timefmt};
use crate::{BridgeStats, Namespace};

/// Everything a request handler needs, one per server worker.
pub struct Api {
    /// The router.
    pub link: RouterLink,
    /// The link SSE streams subscribe through: a separate endpoint in-process, because the
    /// router does not echo an event to its sender and REST emits go through `link`.
    pub watch: RouterLink,
    /// Address prefix of the HTTP paths.
    pub namespace: Namespace,
    /// Who may call.
    pub gate: Gate,
    /// Largest accepted request body, bytes.
    pub max_body: usize,
    /// Interval of the SSE keep-alive comment.
    pub keepalive: std::time::Duration,
    /// Counters.
    pub stats: Arc<BridgeStats>,
}

/// Where the API lives: `/api/v1` (the paths) and `/v1` (FEATURES HTTP-2's).
pub const PREFIXES: [&str; 2] = ["/api/v1", "/v1"];

/// Adds the API's routes (full paths, so other `/api/v1/*` routes of the relay still match).
pub fn configure(cfg: &mut web::ServiceConfig, api: web::Data<Api>) {
    cfg.app_data(api)
        .service(resource("/api/v1/openapi.json", "GET").route(web::get().to(openapi::serve)));
    for prefix in PREFIXES {
        cfg.service(
            resource(
                &format!("{prefix}/state/{{address:.+}}"),
                "GET, PUT, DELETE",
            )
            .route(web::get().to(get_state))
            .route(web::put().to(put_state))
            .route(web::delete().to(delete_state)),
        )
        .service(
            resource(&format!("{prefix}/emit/{{address:.+}}"), "POST").route(web::post().to(emit)),
        )
        .service(resource(&format!("{prefix}/snapshot"), "GET").route(web::get().to(snapshot)))
        .service(
            resource(&format!("{prefix}/snapshot/{{prefix:.*}}"), "GET")
                .route(web::get().to(snapshot)),
        )
        .service(
            resource(&format!("{prefix}/subscribe/{{pattern:.+}}"), "GET")
                .route(web::get().to(sse::subscribe)),
        );
    }
}

/// A resource that answers other methods with 405 and the `Allow` header.
fn resource(path: &str, allow: &'static str) -> actix_web::Resource {
    web::resource(path).default_service(web::to(move || async move {
        HttpResponse::MethodNotAllowed()
            .insert_header((actix_web::http::header::ALLOW, allow))
            .json(json!({ "error": format!("method not allowed (allowed: {allow})") }))
    }))
}

/// Decodes `%XX` escapes the router left in a path tail (`%2F` stays escaped in matching).
fn percent_decode(text: &str) -> Result<String, ApiError> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        if b == b'%' {
            let hex = bytes
                .get(i + 1..i + 3)
                .filter(|h| h.iter().all(u8::is_ascii_hexdigit))
                .and_then(|h| std::str::from_utf8(h).ok())
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or_else(|| ApiError::BadRequest("bad percent escape in the path".into()))?;
            out.push(hex);
            i += 3;
        } else {
            out.push(b);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| ApiError::BadRequest("the path is not UTF-8".into()))
}

/// The path tail named `key`, decoded and without its leading slash.
pub(super) fn tail(req: &HttpRequest, key: &str) -> Result<String, ApiError> {
    let raw = req.match_info().get(key).unwrap_or_default();
    let decoded = percent_decode(raw)?;
    Ok(decoded.trim_start_matches('/').to_string())
}

/// Longest address (or prefix, or pattern) in a path, in characters, as the OpenAPI says.
pub const MAX_PATH_CHARS: usize = 1024;
/// Characters an address may not contain: wildcards and URL delimiters (and, by
/// `char::is_control`, C0 and C1 controls).
const FORBIDDEN: [char; 7] = ['*', '{', '}', '[', ']', '?', '#'];

/// The CLASP address of a path tail: one or more non-empty segments, no wildcards.
fn address_of(api: &Api, path: &str) -> Result<String, ApiError> {
    if path.is_empty() || path.split('/').any(str::is_empty) {
        return Err(ApiError::BadRequest(format!(
            "invalid address {path:?}: empty segment"
        )));
    }
    if path.chars().count() > MAX_PATH_CHARS {
        return Err(ApiError::BadRequest(format!(
            "address longer than {MAX_PATH_CHARS} characters"
        )));
    }
    if path.contains(FORBIDDEN) || path.chars().any(char::is_control) {
        return Err(ApiError::BadRequest(format!(
            "invalid address {path:?}: an address, not a pattern"
        )));
    }
    api.namespace
        .address(path)
        .map(|a| a.as_str().to_string())
        .map_err(|e| ApiError::BadRequest(format!("invalid address {path:?}: {e}")))
}

/// The address as the HTTP client names it (namespace removed).
pub(super) fn public(api: &Api, address: &str) -> String {
    api.namespace.strip(address).unwrap_or(address).to_string()
}

fn up(api: &Api) -> Result<(), ApiError> {
    if api.link.is_up() {
        Ok(())
    } else {
        Err(ApiError::BadGateway("not connected to the relay".into()))
    }
}

async fn caller(req: &HttpRequest, api: &Api) -> Result<Caller, ApiError> {
    admit(req, &api.gate, &api.link).await
}

/// `GET /api/v1/state/{address}`: the value with its revision, writer and timestamp.
async fn get_state(req: HttpRequest, api: web::Data<Api>) -> Result<HttpResponse, ApiError> {
    let who = caller(&req, &api).await?;
    let path = tail(&req, "address")?;
    let address = address_of(&api, &path)?;
    who.require(Action::Read, &address)?;
    up(&api)?;
    let param = api
        .link
        .get_state(&address)
        .await?
        .filter(|p| p.value != Value::Null)
        .ok_or_else(|| ApiError::NotFound(public(&api, &address)))?;
    let timestamp_us = param.timestamp.unwrap_or(0);
    Ok(HttpResponse::Ok().json(json!({
        "address": public(&api, &address),
        "value": to_json(&param.value),
        "revision": param.revision,
        "writer": param.writer,
        "timestamp": timefmt::iso8601(timestamp_us),
        "timestamp_us": timestamp_us,
    })))
}

/// `PUT /api/v1/state/{address}`: writes (`null` deletes), with an optional expected revision
/// and TTL; answers the new revision.
async fn put_state(
    req: HttpRequest,
    payload: web::Payload,
    api: web::Data<Api>,
) -> Result<HttpResponse, ApiError> {
    let who = caller(&req, &api).await?;
    let path = tail(&req, "address")?;
    let address = address_of(&api, &path)?;
    who.require(Action::Write, &address)?;
    let body = parse_body(&read_limited(&req, payload, api.max_body).await?, false)?;
    let Some(value) = body.value else {
        return Err(ApiError::BadRequest(
            "the body needs a \"value\" (null deletes)".into(),
        ));
    };
    up(&api)?;
    let value = to_value(&value);
    let expected = body.revision.filter(|r| *r > 0);
    if value == Value::Null || expected.is_some() {
        let current = api.link.get_state(&address).await?;
        // Deleting what is not there leaves no tombstone: 404, as DELETE.
        if value == Value::Null && current.as_ref().is_none_or(|p| p.value == Value::Null) {
            return Err(ApiError::NotFound(public(&api, &address)));
        }
        // The router checks an expected revision only on an existing param.
        if let (Some(expected), None) = (expected, &current) {
            return Err(ApiError::Conflict(format!(
                "RevisionConflict {{ expected: {expected}, actual: 0 }}"
            )));
        }
    }
    let options = SetOptions {
        revision: body.revision,
        ttl: body
            .ttl
            .map(|t| if t == 0 { Ttl::Never } else { Ttl::Absolute(t) }),
        ..SetOptions::default()
    };
    write(&api, &who, &address, value, options).await
}

/// `DELETE /api/v1/state/{address}`: removes the value (404 if there is none).
async fn delete_state(req: HttpRequest, api: web::Data<Api>) -> Result<HttpResponse, ApiError> {
    let who = caller(&req, &api).await?;
    let path = tail(&req, "address")?;
    let address = address_of(&api, &path)?;
    who.require(Action::Write, &address)?;
    up(&api)?;
    let exists = api
        .link
        .get_state(&address)
        .await?
        .is_some_and(|p| p.value != Value::Null);
    if !exists {
        return Err(ApiError::NotFound(public(&api, &address)));
    }
    write(&api, &who, &address, Value::Null, SetOptions::default()).await
}

/// One write through the router's pipeline (scopes, lock, revision, journal, fan-out).
async fn write(
    api: &Api,
    who: &Caller,
    address: &str,
    value: Value,
    options: SetOptions,
) -> Result<HttpResponse, ApiError> {
    let writer = who.writer();
    let result = api
        .link
        .set_with_options(writer.as_deref(), address, value.clone(), options)
        .await;
    match result {
        Ok(revision) => {
            BridgeStats::bump(&api.stats.received);
            Ok(HttpResponse::Ok().json(json!({
                "address": public(api, address),
                "value": to_json(&value),
                "revision": revision,
            })))
        }
        Err(e) => {
            BridgeStats::bump(&api.stats.refused);
            Err(e.into())
        }
    }
}

/// `POST /api/v1/emit/{address}`: publishes an event (body `{"value": v}`, optional).
async fn emit(
    req: HttpRequest,
    payload: web::Payload,
    api: web::Data<Api>,
) -> Result<HttpResponse, ApiError> {
    let who = caller(&req, &api).await?;
    let path = tail(&req, "address")?;
    let address = address_of(&api, &path)?;
    who.require(Action::Write, &address)?;
    let body = parse_body(&read_limited(&req, payload, api.max_body).await?, true)?;
    up(&api)?;
    let value = body.value.as_ref().map(to_value).unwrap_or(Value::Null);
    api.link
        .publish(SignalType::Event, &address, value)
        .await
        .map_err(ApiError::from)?;
    BridgeStats::bump(&api.stats.received);
    Ok(HttpResponse::Ok().json(json!({
        "address": public(&api, &address),
        "status": "emitted",
    })))
}

/// `GET /api/v1/snapshot[/{prefix}]`: a flat object `{address: value}` of every readable
/// param (under the prefix, by whole segments), without revisions.
async fn snapshot(req: HttpRequest, api: web::Data<Api>) -> Result<HttpResponse, ApiError> {
    let who = caller(&req, &api).await?;
    let prefix = match req.match_info().get("prefix") {
        Some(_) => tail(&req, "prefix")?,
        None => String::new(),
    };
    let prefix = prefix.trim_end_matches('/');
    up(&api)?;
    let params = if prefix.is_empty() {
        api.link.snapshot(&api.namespace.subtree()).await?
    } else {
        let address = address_of(&api, prefix)?;
        match api.link.snapshot(&format!("{address}/**")).await {
            Ok(params) => params,
            // Characters a pattern reserves, `(` say: the namespace's subtree, filtered here.
            Err(ClientError::Pattern(_)) => {
                let under = format!("{address}/");
                let mut all = api.link.snapshot(&api.namespace.subtree()).await?;
                all.retain(|p| {
                    p.address.as_str() == address || p.address.as_str().starts_with(&under)
                });
                all
            }
            Err(e) => return Err(e.into()),
        }
    };
    let mut flat = Map::new();
    for p in params {
        if p.value == Value::Null || !who.may(Action::Read, p.address.as_str()) {
            continue;
        }
        flat.insert(public(&api, p.address.as_str()), to_json(&p.value));
    }
    Ok(HttpResponse::Ok().json(Json::Object(flat)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_escapes() {
        assert_eq!(percent_decode("a%2Fb%20c").ok().as_deref(), Some("a/b c"));
        assert!(percent_decode("a%2").is_err());
        assert!(percent_decode("a%+1").is_err());
        assert!(percent_decode("%ff").is_err());
    }
}
