//! Request bodies of the write routes: read with a size limit (413 beyond, decided from
//! `Content-Length` before reading when it is declared), then parsed as
//! `{"value": v, "revision"?: n, "ttl"?: seconds}` with every field checked (400 otherwise).

use actix_web::{web, HttpRequest};
use futures_util::StreamExt;
use serde_json::Value as Json;

use super::errors::ApiError;

/// Reads a body of at most `limit` bytes (413 beyond, without reading the rest).
pub async fn read_limited(
    req: &HttpRequest,
    mut payload: web::Payload,
    limit: usize,
) -> Result<web::BytesMut, ApiError> {
    let declared = req
        .headers()
        .get(actix_web::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return Err(ApiError::TooLarge(limit));
    }
    let mut body = web::BytesMut::new();
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|e| ApiError::BadRequest(format!("body: {e}")))?;
        if body.len() + chunk.len() > limit {
            return Err(ApiError::TooLarge(limit));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// The fields of a write body: `{"value": v, "revision"?: n, "ttl"?: seconds}`.
pub struct WriteBody {
    /// `value`, absent or any JSON (null included).
    pub value: Option<Json>,
    /// Expected current revision.
    pub revision: Option<u64>,
    /// Seconds to live.
    pub ttl: Option<u32>,
}

/// Parses a write body; an empty one is allowed (no value) when `allow_empty`.
pub fn parse_body(body: &[u8], allow_empty: bool) -> Result<WriteBody, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) && allow_empty {
        return Ok(WriteBody {
            value: None,
            revision: None,
            ttl: None,
        });
    }
    let json: Json = serde_json::from_slice(body)
        .map_err(|e| ApiError::BadRequest(format!("invalid JSON body: {e}")))?;
    let Json::Object(mut fields) = json else {
        return Err(ApiError::BadRequest(
            "the body must be a JSON object like {\"value\": 1}".into(),
        ));
    };
    let revision = match fields.remove("revision") {
        None => None,
        Some(r) => Some(r.as_u64().ok_or_else(|| {
            ApiError::BadRequest("\"revision\" must be a non-negative integer".into())
        })?),
    };
    let ttl = match fields.remove("ttl") {
        None => None,
        Some(t) => Some(
            t.as_u64()
                .and_then(|t| u32::try_from(t).ok())
                .filter(|t| *t < 0x8000_0000)
                .ok_or_else(|| {
                    ApiError::BadRequest(
                        "\"ttl\" must be an integer 0..=2147483647 (seconds)".into(),
                    )
                })?,
        ),
    };
    Ok(WriteBody {
        value: fields.remove("value"),
        revision,
        ttl,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn bodies() {
        let b = parse_body(br#"{"value": 1, "revision": 3, "ttl": 5}"#, false).unwrap();
        assert_eq!(
            (b.value, b.revision, b.ttl),
            (Some(json!(1)), Some(3), Some(5))
        );
        assert!(parse_body(b"{", false).is_err());
        assert!(parse_body(b"[1]", false).is_err());
        assert!(parse_body(br#"{"value": 1, "revision": -1}"#, false).is_err());
        assert!(parse_body(b"", true).unwrap().value.is_none());
    }
}
