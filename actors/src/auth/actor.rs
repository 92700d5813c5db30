//! The `Auth` actor: the one owner of the auth database, the attempt limiters and the table of
//! live grants. Sessions ask it to validate HELLO tokens; the HTTP API asks it to register,
//! log in, issue, revoke and manage entities. Password hashing happens outside it (on the
//! HTTP side's blocking pool) so a burst of logins never delays a HELLO.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use actix::prelude::*;

use super::grant::{unix_now, Denial, Grant, TokenKind};
use super::ratelimit::RateLimiter;
use super::scope::{Scope, Scopes};
use super::secret::{new_cpsk_token, token_hash, CPSK_PREFIX};
use super::store::{AuthStore, Inserted, StoreError, TokenRecord, UserRecord};
use super::validators::Validators;
use crate::config::AuthConfig;

/// Why the auth service failed to start.
#[derive(Debug, thiserror::Error)]
pub enum AuthStartError {
    /// The database did not open.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The admin token file could not be read or created.
    #[error("admin token file {path}: {source}")]
    AdminToken {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// A trust anchor could not be loaded.
    #[error("trust anchor {0}")]
    TrustAnchor(String),
    /// The user scope template is invalid.
    #[error("user scope template: {0}")]
    Scopes(#[from] super::scope::ScopeError),
    /// Generating the admin token failed.
    #[error(transparent)]
    Secret(#[from] super::secret::SecretError),
}

/// Failure of an HTTP-side request, with the status it maps to.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApiError {
    /// 400: the request is invalid.
    #[error("{0}")]
    BadRequest(String),
    /// 401: missing or wrong credentials.
    #[error("{0}")]
    Unauthorized(String),
    /// 403: authenticated but not allowed.
    #[error("{0}")]
    Forbidden(String),
    /// 404.
    #[error("{0}")]
    NotFound(String),
    /// 409: the name or id is taken.
    #[error("{0}")]
    Conflict(String),
    /// 429: over the attempt limit.
    #[error("{0}")]
    TooManyRequests(String),
    /// 500: the database failed.
    #[error("{0}")]
    Internal(String),
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        tracing::error!(error = %e, "auth database failure");
        ApiError::Internal("auth database failure".into())
    }
}

/// A freshly issued CPSK token and what it grants.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Issued {
    /// The secret, shown once.
    pub token: String,
    /// Subject id.
    pub user_id: String,
    /// Display name.
    pub username: String,
    /// Same as `user_id` (the @clasp-to/sdk reads `session_id || user_id`).
    pub session_id: String,
    /// Granted scopes.
    pub scopes: Vec<String>,
    /// Unix seconds.
    pub expires_at: Option<u64>,
}

/// The actor.
pub struct Auth {
    pub(super) store: AuthStore,
    pub(super) config: AuthConfig,
    templates: Vec<String>,
    pub(super) validators: Validators,
    login_by_ip: RateLimiter,
    login_by_user: RateLimiter,
    register_by_ip: RateLimiter,
    /// Live grants by what can revoke them (token hash hex, or entity id).
    live: HashMap<String, Vec<Weak<Grant>>>,
}

impl Auth {
    /// Opens the database, loads trust anchors, and makes sure the admin token exists.
    pub fn open(config: AuthConfig) -> Result<Self, AuthStartError> {
        let store = AuthStore::open(&config.db)?;
        Scopes::parse_all(
            &config
                .user_scopes
                .iter()
                .map(|s| s.replace("{userId}", "x"))
                .collect::<Vec<_>>(),
        )?;
        let validators = Validators::load(&config)?;
        let window = config.rate_window;
        let auth = Self {
            login_by_ip: RateLimiter::new(config.login_max_attempts, window),
            login_by_user: RateLimiter::new(config.login_max_attempts, window),
            register_by_ip: RateLimiter::new(config.register_max_attempts, window),
            templates: config.user_scopes.clone(),
            store,
            validators,
            config,
            live: HashMap::new(),
        };
        if let Some(path) = auth.config.admin_token_file.clone() {
            auth.install_admin_token(&path)?;
        }
        Ok(auth)
    }

    /// Reads the admin token file, or creates it (mode 0600) with a new token, and records
    /// the token as `admin:/**` with no expiry.
    fn install_admin_token(&self, path: &Path) -> Result<(), AuthStartError> {
        let io = |source| AuthStartError::AdminToken {
            path: path.display().to_string(),
            source,
        };
        let token = match std::fs::read_to_string(path) {
            Ok(text) => text.trim().to_string(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let token = new_cpsk_token()?;
                write_private(path, &token).map_err(io)?;
                tracing::info!(file = %path.display(), "admin token created");
                token
            }
            Err(e) => return Err(io(e)),
        };
        if token.is_empty() {
            return Err(io(std::io::Error::other("the file is empty")));
        }
        let record = TokenRecord {
            subject: "admin".into(),
            username: "admin".into(),
            scopes: vec![Scope::admin_all().to_string()],
            expires_at: None,
            issued_at: unix_now(),
        };
        self.store.insert_token(&token_hash(&token), &record)?;
        Ok(())
    }

    fn track(&mut self, key: String, grant: &Arc<Grant>) {
        let list = self.live.entry(key).or_default();
        list.retain(|w| w.strong_count() > 0);
        list.push(Arc::downgrade(grant));
    }

    /// Revokes every live grant filed under `key`; returns how many sessions will close.
    pub(super) fn revoke_live(&mut self, key: &str) -> usize {
        let mut n = 0;
        if let Some(list) = self.live.remove(key) {
            for g in list.iter().filter_map(Weak::upgrade) {
                g.revoke();
                n += 1;
            }
        }
        n
    }

    fn validate(&mut self, token: &str) -> Result<Arc<Grant>, Denial> {
        if token.is_empty() {
            return Err(Denial::Required);
        }
        if token.starts_with(CPSK_PREFIX) {
            let hash = token_hash(token);
            let record = self
                .store
                .token(&hash)
                .map_err(|e| Denial::Unavailable(e.to_string()))?
                .ok_or_else(|| Denial::Invalid("token not found".into()))?;
            if record.expires_at.is_some_and(|e| unix_now() > e) {
                return Err(Denial::Expired);
            }
            let grant = Arc::new(Grant::new(
                record.subject,
                TokenKind::PreShared,
                Scopes::parse_lenient(&record.scopes),
                record.expires_at,
            ));
            self.track(hex::encode(hash), &grant);
            return Ok(grant);
        }
        let (grant, revocation_keys) = self.validators.validate(token, &self.store)?;
        let grant = Arc::new(grant);
        for key in revocation_keys {
            self.track(key, &grant);
        }
        Ok(grant)
    }

    /// Scopes for a new user: the templates with `{userId}` filled, or the requested subset.
    fn scopes_for(
        &self,
        user_id: &str,
        requested: Option<&[String]>,
    ) -> Result<Vec<String>, ApiError> {
        let template: Vec<String> = self
            .templates
            .iter()
            .map(|t| t.replace("{userId}", user_id))
            .collect();
        let Some(requested) = requested.filter(|r| !r.is_empty()) else {
            return Ok(template);
        };
        let wanted =
            Scopes::parse_all(requested).map_err(|e| ApiError::BadRequest(e.to_string()))?;
        let allowed = Scopes::parse_lenient(&template);
        if !allowed.contains_all(&wanted) {
            return Err(ApiError::Forbidden(format!(
                "requested scopes {wanted} exceed what this relay grants ({allowed}); an admin token is required"
            )));
        }
        Ok(wanted.to_strings())
    }

    fn issue(
        &self,
        subject: &str,
        username: &str,
        scopes: Vec<String>,
    ) -> Result<Issued, ApiError> {
        let token = new_cpsk_token().map_err(|e| ApiError::Internal(e.to_string()))?;
        let now = unix_now();
        let expires_at = Some(now + self.config.token_ttl.as_secs());
        let record = TokenRecord {
            subject: subject.into(),
            username: username.into(),
            scopes: scopes.clone(),
            expires_at,
            issued_at: now,
        };
        self.store.insert_token(&token_hash(&token), &record)?;
        Ok(Issued {
            token,
            user_id: subject.into(),
            username: username.into(),
            session_id: subject.into(),
            scopes,
            expires_at,
        })
    }

    /// Is `bearer` a live admin token?
    fn check_admin(&self, bearer: Option<&str>) -> Result<(), ApiError> {
        let Some(token) = bearer.filter(|t| !t.is_empty()) else {
            return Err(ApiError::Unauthorized("missing bearer token".into()));
        };
        let record = self
            .store
            .token(&token_hash(token))?
            .filter(|r| r.expires_at.is_none_or(|e| unix_now() <= e))
            .ok_or_else(|| ApiError::Unauthorized("invalid bearer token".into()))?;
        if Scopes::parse_lenient(&record.scopes).is_admin() {
            Ok(())
        } else {
            Err(ApiError::Forbidden("admin:/** scope required".into()))
        }
    }
}

/// Writes `contents` to a new file readable only by its owner.
fn write_private(path: &Path, contents: &str) -> std::io::Result<()> {
    use std::io::Write as _;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600);
    }
    let mut file = options.open(path)?;
    file.write_all(contents.as_bytes())?;
    file.write_all(b"\n")?;
    file.sync_all()
}

impl Actor for Auth {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        // Expired tokens are dead weight; sweep them hourly.
        ctx.run_interval(Duration::from_secs(3600), |act, _| {
            match act.store.purge_expired_tokens(unix_now()) {
                Ok(0) => {}
                Ok(n) => tracing::info!(removed = n, "expired tokens purged"),
                Err(e) => tracing::warn!(error = %e, "token purge failed"),
            }
        });
    }
}

impl Supervised for Auth {}

/// Validates a HELLO token.
#[derive(Message, Debug)]
#[rtype(result = "Result<Arc<Grant>, Denial>")]
pub struct Validate {
    /// The HELLO token (empty = none).
    pub token: String,
}

impl Handler<Validate> for Auth {
    type Result = Result<Arc<Grant>, Denial>;
    fn handle(&mut self, msg: Validate, _: &mut Context<Self>) -> Self::Result {
        let result = self.validate(&msg.token);
        if let Err(d) = &result {
            tracing::info!(reason = %d, "token refused");
        }
        result
    }
}

/// Which limit an attempt counts against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limit {
    /// Failed logins (checked per address and per username).
    Login,
    /// Registrations and guest tokens (counted per address).
    Register,
}

/// Checks (and for registrations counts) an attempt before any password work is done.
#[derive(Message, Debug)]
#[rtype(result = "Result<(), ApiError>")]
pub struct Attempt {
    /// Which limit.
    pub limit: Limit,
    /// Client address.
    pub peer: String,
    /// Username, for the per-user login limit.
    pub username: Option<String>,
}

impl Handler<Attempt> for Auth {
    type Result = Result<(), ApiError>;
    fn handle(&mut self, msg: Attempt, _: &mut Context<Self>) -> Self::Result {
        let now = Instant::now();
        let limited = match msg.limit {
            Limit::Login => {
                self.login_by_ip.is_limited(&msg.peer, now)
                    || msg
                        .username
                        .as_deref()
                        .is_some_and(|u| self.login_by_user.is_limited(u, now))
            }
            Limit::Register => {
                let limited = self.register_by_ip.is_limited(&msg.peer, now);
                if !limited {
                    self.register_by_ip.record(&msg.peer, now);
                }
                limited
            }
        };
        if limited {
            tracing::warn!(peer = %msg.peer, limit = ?msg.limit, "auth attempt limit reached");
            return Err(ApiError::TooManyRequests(
                "too many attempts; try again later".into(),
            ));
        }
        Ok(())
    }
}

/// The stored user (for the password check done outside the actor).
#[derive(Message, Debug)]
#[rtype(result = "Result<Option<UserRecord>, ApiError>")]
pub struct FindUser {
    /// Login name.
    pub username: String,
}

impl Handler<FindUser> for Auth {
    type Result = Result<Option<UserRecord>, ApiError>;
    fn handle(&mut self, msg: FindUser, _: &mut Context<Self>) -> Self::Result {
        Ok(self.store.user(&msg.username)?)
    }
}

/// The outcome of a password check: issues a token on success, counts a failure otherwise.
#[derive(Message, Debug)]
#[rtype(result = "Result<Issued, ApiError>")]
pub struct LoginOutcome {
    /// Client address.
    pub peer: String,
    /// Login name as given.
    pub username: String,
    /// The matched user, or `None` when the password (or user) was wrong.
    pub user: Option<UserRecord>,
}

impl Handler<LoginOutcome> for Auth {
    type Result = Result<Issued, ApiError>;
    fn handle(&mut self, msg: LoginOutcome, _: &mut Context<Self>) -> Self::Result {
        let now = Instant::now();
        match msg.user {
            Some(user) => {
                self.login_by_ip.clear(&msg.peer);
                self.login_by_user.clear(&msg.username);
                self.issue(&user.user_id, &user.username, user.scopes)
            }
            None => {
                self.login_by_ip.record(&msg.peer, now);
                self.login_by_user.record(&msg.username, now);
                tracing::info!(peer = %msg.peer, "failed login");
                Err(ApiError::Unauthorized(
                    "Invalid username or password".into(),
                ))
            }
        }
    }
}

/// Decides a registration's user id and scopes before any password work, so a request that
/// will be refused (admin scopes without the admin token, say) costs no hashing.
#[derive(Message, Debug)]
#[rtype(result = "Result<(String, Vec<String>), ApiError>")]
pub struct PrepareRegistration {
    /// Chosen id, or `None` for a generated one.
    pub user_id: Option<String>,
    /// Requested scopes (must fit the templates unless an admin bearer is given).
    pub scopes: Option<Vec<String>>,
    /// The `Authorization: Bearer` token, if any.
    pub bearer: Option<String>,
}

impl Handler<PrepareRegistration> for Auth {
    type Result = Result<(String, Vec<String>), ApiError>;
    fn handle(&mut self, msg: PrepareRegistration, _: &mut Context<Self>) -> Self::Result {
        let user_id = msg
            .user_id
            .unwrap_or_else(|| uuid::Uuid::new_v4().simple().to_string());
        let scopes = match (&msg.bearer, &msg.scopes) {
            (Some(_), Some(requested)) if !requested.is_empty() => {
                self.check_admin(msg.bearer.as_deref())?;
                Scopes::parse_all(requested)
                    .map_err(|e| ApiError::BadRequest(e.to_string()))?
                    .to_strings()
            }
            _ => self.scopes_for(&user_id, msg.scopes.as_deref())?,
        };
        Ok((user_id, scopes))
    }
}

/// Stores a prepared registration and issues the user's first token.
#[derive(Message, Debug)]
#[rtype(result = "Result<Issued, ApiError>")]
pub struct RegisterUser {
    /// Login name (validated).
    pub username: String,
    /// From [`PrepareRegistration`].
    pub user_id: String,
    /// From [`PrepareRegistration`].
    pub scopes: Vec<String>,
    /// argon2id PHC string.
    pub password_hash: String,
}

impl Handler<RegisterUser> for Auth {
    type Result = Result<Issued, ApiError>;
    fn handle(&mut self, msg: RegisterUser, _: &mut Context<Self>) -> Self::Result {
        let record = UserRecord {
            user_id: msg.user_id.clone(),
            username: msg.username.clone(),
            password_hash: msg.password_hash,
            scopes: msg.scopes.clone(),
            created_at: unix_now(),
        };
        match self.store.insert_user(&record)? {
            Inserted::Ok => {
                tracing::info!(user = %msg.username, "user registered");
                self.issue(&msg.user_id, &msg.username, msg.scopes)
            }
            Inserted::Conflict => Err(ApiError::Conflict(
                "username or user_id already taken".into(),
            )),
        }
    }
}

/// Issues a guest token.
#[derive(Message, Debug)]
#[rtype(result = "Result<Issued, ApiError>")]
pub struct Guest {
    /// Display name, or `None` for `guest-xxxxxx`.
    pub name: Option<String>,
    /// Chosen id.
    pub user_id: Option<String>,
    /// Requested scopes (a subset of the templates).
    pub scopes: Option<Vec<String>>,
}

impl Handler<Guest> for Auth {
    type Result = Result<Issued, ApiError>;
    fn handle(&mut self, msg: Guest, _: &mut Context<Self>) -> Self::Result {
        let suffix = uuid::Uuid::new_v4().simple().to_string();
        let name = msg
            .name
            .unwrap_or_else(|| format!("guest-{}", &suffix[..6]));
        let user_id = msg.user_id.unwrap_or_else(|| format!("guest-{suffix}"));
        if self.store.user_exists(&name, &user_id)? {
            return Err(ApiError::Conflict(
                "name or user_id belongs to a registered user".into(),
            ));
        }
        let scopes = self.scopes_for(&user_id, msg.scopes.as_deref())?;
        self.issue(&user_id, &name, scopes)
    }
}

/// Revokes a token: deleted from the database, and its live sessions are closed.
#[derive(Message, Debug)]
#[rtype(result = "Result<usize, ApiError>")]
pub struct Revoke {
    /// The token to revoke.
    pub token: String,
}

impl Handler<Revoke> for Auth {
    type Result = Result<usize, ApiError>;
    fn handle(&mut self, msg: Revoke, _: &mut Context<Self>) -> Self::Result {
        if msg.token.starts_with("cap_") {
            return self.revoke_capability(&msg.token);
        }
        if msg.token.starts_with("ent_") {
            return Err(ApiError::BadRequest(
                "entity tokens are revoked through the registry: PUT /api/entities/{id}/status"
                    .into(),
            ));
        }
        let hash = token_hash(&msg.token);
        if !self.store.remove_token(&hash)? {
            return Err(ApiError::NotFound("token not found".into()));
        }
        let closed = self.revoke_live(&hex::encode(hash));
        tracing::info!(sessions = closed, "token revoked");
        Ok(closed)
    }
}

impl Auth {
    /// Revokes a capability token and, through its nonce in their proofs, every token
    /// delegated from it. Only a genuinely signed token can be revoked (expired is fine), so
    /// nobody can fill the table with made-up nonces.
    fn revoke_capability(&mut self, token: &str) -> Result<usize, ApiError> {
        let decoded =
            super::cap::CapToken::decode(token).map_err(|e| ApiError::BadRequest(e.to_string()))?;
        let key = ed25519_dalek::VerifyingKey::from_bytes(&decoded.issuer)
            .map_err(|_| ApiError::BadRequest("issuer is not an Ed25519 key".into()))?;
        let signature = ed25519_dalek::Signature::from_bytes(&decoded.signature);
        key.verify_strict(&decoded.signable_bytes(), &signature)
            .map_err(|_| {
                ApiError::BadRequest("capability token signature does not verify".into())
            })?;
        self.store
            .revoke_nonce(&decoded.nonce, decoded.expires_at)?;
        let closed = self.revoke_live(&format!("cap:{}", decoded.nonce));
        tracing::info!(sessions = closed, "capability revoked");
        Ok(closed)
    }
}

/// Checks a bearer token for the admin APIs.
#[derive(Message, Debug)]
#[rtype(result = "Result<(), ApiError>")]
pub struct CheckAdmin {
    /// The `Authorization: Bearer` value.
    pub bearer: Option<String>,
}

impl Handler<CheckAdmin> for Auth {
    type Result = Result<(), ApiError>;
    fn handle(&mut self, msg: CheckAdmin, _: &mut Context<Self>) -> Self::Result {
        self.check_admin(msg.bearer.as_deref())
    }
}
