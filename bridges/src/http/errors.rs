//! Every failure of the REST API as an HTTP status with a JSON body `{"error": "..."}`, so
//! a script can branch on the status and a person can read why.

use actix_web::http::{header, StatusCode};
use actix_web::{HttpResponse, ResponseError};
use clasp_actors::auth::Denial;
use clasp_actors::client::ClientError;

/// A refused or failed REST request.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// Malformed JSON, a body of the wrong shape, or an unusable address.
    #[error("{0}")]
    BadRequest(String),
    /// No param at this address.
    #[error("no value at {0}")]
    NotFound(String),
    /// The expected revision is not the current one, or the conflict strategy refused.
    #[error("{0}")]
    Conflict(String),
    /// Another writer holds the param's lock.
    #[error("{0}")]
    Locked(String),
    /// The body is larger than the bridge accepts.
    #[error("request body larger than {0} bytes")]
    TooLarge(usize),
    /// No token, or the token is not valid.
    #[error("{0}")]
    Unauthorized(String),
    /// The token's scopes do not allow this.
    #[error("{0}")]
    Forbidden(String),
    /// The router cannot be reached (standalone, relay down) or failed.
    #[error("router unreachable: {0}")]
    BadGateway(String),
    /// The router did not answer in time.
    #[error("router did not answer: {0}")]
    Timeout(String),
    /// The router is full or busy; retry later.
    #[error("{0}")]
    Unavailable(String),
}

impl ApiError {
    /// A refusal of the auth service (no token, bad token, expired, or auth down).
    pub fn from_denial(denial: Denial) -> Self {
        match denial {
            Denial::Unavailable(_) => ApiError::Unavailable(denial.to_string()),
            _ => ApiError::Unauthorized(denial.to_string()),
        }
    }
}

impl From<ClientError> for ApiError {
    fn from(e: ClientError) -> Self {
        match e {
            ClientError::Server { code, message, .. } => match code {
                401 => ApiError::Locked(message),
                301 => ApiError::Forbidden(message),
                300 | 302 => {
                    ApiError::BadGateway(format!("the relay refused the bridge: {message}"))
                }
                400 if message.starts_with("AtCapacity") || message.starts_with("Busy") => {
                    ApiError::Unavailable(message)
                }
                400 if message.starts_with("RevisionConflict")
                    || message.starts_with("ConflictRejected") =>
                {
                    ApiError::Conflict(message)
                }
                400..=499 => ApiError::BadRequest(message),
                _ => ApiError::BadGateway(format!("ERROR {code}: {message}")),
            },
            ClientError::Address(_) | ClientError::Pattern(_) | ClientError::Encode(_) => {
                ApiError::BadRequest(e.to_string())
            }
            ClientError::Timeout(_) => ApiError::Timeout(e.to_string()),
            ClientError::Connect { .. }
            | ClientError::Refused { .. }
            | ClientError::Closed
            | ClientError::QueueFull(_) => ApiError::BadGateway(e.to_string()),
        }
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::Conflict(_) => StatusCode::CONFLICT,
            ApiError::Locked(_) => StatusCode::LOCKED,
            ApiError::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::BadGateway(_) => StatusCode::BAD_GATEWAY,
            ApiError::Timeout(_) => StatusCode::GATEWAY_TIMEOUT,
            ApiError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let mut response = HttpResponse::build(self.status_code());
        if matches!(self, ApiError::Unauthorized(_)) {
            response.insert_header((header::WWW_AUTHENTICATE, "Bearer"));
        }
        response.json(serde_json::json!({ "error": self.to_string() }))
    }
}
