//! Authenticated mode end to end: the real relay with `--auth`, tokens from its HTTP API, and
//! the Rust client plus raw frames walking the scope matrix, each token state, revocation,
//! the attempt limits, the admin token file and a restart that keeps users and tokens.

mod common;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use clasp::{BundleItem, Client, ClientError};
use clasp_proto::*;
use common::*;
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value as Json};
use tokio_tungstenite::tungstenite::Message as Ws;

/// A relay requiring tokens, with its database and admin token in a fresh directory.
pub struct AuthRelay {
    pub relay: Relay,
    pub dir: PathBuf,
    pub admin: String,
}

pub fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("clasp-auth-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

impl AuthRelay {
    pub fn start(name: &str, extra: &[&str]) -> Self {
        Self::start_in(temp_dir(name), extra)
    }

    pub fn start_in(dir: PathBuf, extra: &[&str]) -> Self {
        let db = dir.join("auth.redb");
        let admin_file = dir.join("admin.token");
        let mut args = vec![
            "--auth",
            "--auth-db",
            db.to_str().expect("utf-8 path"),
            "--admin-token",
            admin_file.to_str().expect("utf-8 path"),
        ];
        args.extend_from_slice(extra);
        let relay = Relay::start(&args);
        let admin = std::fs::read_to_string(&admin_file)
            .expect("the relay wrote the admin token file")
            .trim()
            .to_string();
        Self { relay, dir, admin }
    }

    pub fn http(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.relay.port)
    }

    /// POSTs JSON; returns the status and the JSON answer.
    pub fn post(&self, path: &str, body: Json, bearer: Option<&str>) -> (u16, Json) {
        let mut req = ureq::post(&self.http(path)).timeout(Duration::from_secs(10));
        if let Some(b) = bearer {
            req = req.set("Authorization", &format!("Bearer {b}"));
        }
        answer(req.send_json(body))
    }

    /// A guest token with these scopes.
    pub fn guest(&self, scopes: &[&str]) -> String {
        let (status, body) = self.post("/auth/guest", json!({ "scopes": scopes }), None);
        assert_eq!(status, 200, "guest token: {body}");
        body["token"].as_str().expect("token").to_string()
    }
}

pub fn answer(result: Result<ureq::Response, ureq::Error>) -> (u16, Json) {
    match result {
        Ok(r) => (r.status(), r.into_json().unwrap_or(Json::Null)),
        Err(ureq::Error::Status(code, r)) => (code, r.into_json().unwrap_or(Json::Null)),
        Err(e) => panic!("HTTP request failed: {e}"),
    }
}

pub async fn connect(url: &str, token: &str) -> Result<Client, ClientError> {
    Client::builder(url)
        .name("auth-test")
        .token(token)
        .reconnect(false)
        .timeout(Duration::from_secs(3))
        .connect()
        .await
}

fn code_of<T: std::fmt::Debug>(r: Result<T, ClientError>) -> u16 {
    match r {
        Err(ClientError::Server { code, .. }) | Err(ClientError::Refused { code, .. }) => code,
        other => panic!("expected an ERROR from the relay, got {other:?}"),
    }
}

type Raw =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// Raw HELLO with `token`; returns the socket and every frame up to the first SNAPSHOT (or
/// up to the close).
async fn raw_hello(port: u16, token: Option<&str>) -> (Raw, Vec<Message>, bool) {
    let (mut ws, _) = tokio_tungstenite::connect_async(format!("ws://127.0.0.1:{port}/"))
        .await
        .expect("upgrade");
    let hello = Message::Hello(Hello {
        version: 1,
        features: FeatureSet::CLIENT_DEFAULT,
        name: "raw".into(),
        token: token.map(str::to_string),
    });
    let frame = encode_frame(&FrameHeader::new(QoS::Fire), &hello).expect("encodes");
    ws.send(Ws::Binary(frame.into())).await.expect("send");
    let mut got = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(3);
    loop {
        match tokio::time::timeout_at(deadline, ws.next()).await {
            Ok(Some(Ok(Ws::Binary(b)))) => {
                let m = decode_frame(&b).expect("decodable").message;
                let done = matches!(m, Message::Snapshot(_));
                got.push(m);
                if done {
                    return (ws, got, false);
                }
            }
            Ok(Some(Ok(Ws::Close(_)))) | Ok(None) | Ok(Some(Err(_))) => return (ws, got, true),
            Ok(Some(Ok(_))) => continue,
            Err(_) => panic!("nothing conclusive within 3 s after HELLO: {got:?}"),
        }
    }
}

#[tokio::test]
async fn hello_without_or_with_a_bad_token_is_refused_and_closed() {
    let r = AuthRelay::start("refused", &[]);
    for (token, code, text) in [
        (None, 300, "Authentication required"),
        (
            Some("cpsk_00000000000000000000000000000000"),
            300,
            "token not found",
        ),
        (Some("nope"), 300, "Invalid token"),
        (Some("cap_AAAA"), 300, "Invalid token"),
    ] {
        let (_ws, frames, closed) = raw_hello(r.relay.port, token).await;
        assert!(
            closed,
            "{token:?}: the connection is closed after the refusal"
        );
        match frames.as_slice() {
            [Message::Error(e)] => {
                assert_eq!(e.code, code, "{token:?}");
                assert!(e.message.contains(text), "{token:?}: {}", e.message);
            }
            other => panic!("{token:?}: expected exactly one ERROR, got {other:?}"),
        }
    }
    assert_eq!(code_of(connect(&r.relay.url(), "").await), 300);
    let ok = connect(&r.relay.url(), &r.admin)
        .await
        .expect("the admin token connects");
    ok.set("/a/x", 1.0).await.expect("admin writes");
}

#[tokio::test]
async fn scopes_are_enforced_on_every_operation() {
    let r = AuthRelay::start("matrix", &[]);
    let url = r.relay.url();
    let admin = connect(&url, &r.admin).await.expect("admin");
    for a in ["/pub/a", "/secret/b", "/app/c"] {
        admin.set(a, 1.0).await.expect("admin set");
    }
    let limited = connect(&url, &r.guest(&["read:/pub/**", "write:/app/**"]))
        .await
        .expect("guest connects");

    // Writes: only under /app.
    limited
        .set("/app/x", 2.0)
        .await
        .expect("write:/app/** allows SET /app/x");
    assert_eq!(code_of(limited.set("/pub/x", 2.0).await), 301);
    assert_eq!(code_of(limited.set("/secret/b", 2.0).await), 301);
    // Reads: /pub by read, /app because write implies read; /secret not at all.
    assert_eq!(
        limited.get("/pub/a").await.expect("read /pub").value,
        Value::Float(1.0)
    );
    assert_eq!(
        limited.get("/app/c").await.expect("read /app").value,
        Value::Float(1.0)
    );
    assert_eq!(code_of(limited.get("/secret/b").await), 301);
    // A bundle with one denied member is refused whole.
    let bundle = limited
        .bundle(vec![
            BundleItem::Set("/app/bundled".into(), Value::Float(5.0)),
            BundleItem::Set("/secret/bundled".into(), Value::Float(5.0)),
        ])
        .await;
    assert_eq!(code_of(bundle), 301);
    assert!(
        matches!(
            admin.get("/app/bundled").await,
            Err(ClientError::Timeout(_))
        ),
        "nothing of the refused bundle was applied"
    );
    // QUERY only shows what may be read.
    let seen: Vec<String> = limited
        .query("/**")
        .await
        .expect("query")
        .into_iter()
        .map(|s| s.address)
        .collect();
    assert!(
        !seen.iter().any(|a| a.starts_with("/secret")),
        "QUERY leaked {seen:?}"
    );

    // Subscriptions: a pattern the scopes cover works; a wider one is refused.
    let mut sub = limited
        .subscribe("/pub/**")
        .await
        .expect("subscribe /pub/**");
    let first = sub
        .next_within(Duration::from_secs(3))
        .await
        .expect("snapshot of /pub/a");
    assert_eq!(first.address.as_str(), "/pub/a");
    admin.set("/pub/a", 3.0).await.expect("admin set");
    admin.set("/secret/b", 3.0).await.expect("admin set");
    let next = sub
        .next_within(Duration::from_secs(3))
        .await
        .expect("live update");
    assert_eq!(
        (next.address.as_str(), &next.value),
        ("/pub/a", &Value::Float(3.0))
    );
    let mut wide = limited.subscribe("/**").await.expect("sent");
    assert!(
        wide.next_within(Duration::from_millis(500)).await.is_none(),
        "a refused /** subscription delivers nothing"
    );
    limited.ping().await.expect("the session survives refusals");
}

#[tokio::test]
async fn initial_snapshot_holds_only_readable_params() {
    let r = AuthRelay::start("snapshot", &[]);
    let admin = connect(&r.relay.url(), &r.admin).await.expect("admin");
    admin.set("/pub/a", 1.0).await.expect("set");
    admin.set("/secret/b", 2.0).await.expect("set");
    let token = r.guest(&["read:/pub/**"]);
    let (_ws, frames, closed) = raw_hello(r.relay.port, Some(&token)).await;
    assert!(!closed, "a valid token opens the session: {frames:?}");
    assert!(
        matches!(frames.first(), Some(Message::Welcome(_))),
        "{frames:?}"
    );
    let Some(Message::Snapshot(s)) = frames.last() else {
        panic!("no snapshot: {frames:?}")
    };
    let addresses: Vec<&str> = s.params.iter().map(|p| p.address.as_str()).collect();
    assert_eq!(
        addresses,
        ["/pub/a"],
        "the snapshot is filtered by read scope"
    );
}

#[tokio::test]
async fn revoked_tokens_end_their_sessions_and_stop_working() {
    let r = AuthRelay::start("revoke", &[]);
    let token = r.guest(&["read:/**", "write:/**"]);
    let c = connect(&r.relay.url(), &token).await.expect("connects");
    let (status, body) = r.post("/auth/revoke", json!({ "token": token }), None);
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["sessions_closed"], 1, "{body}");
    let start = Instant::now();
    while c.connected() && start.elapsed() < Duration::from_secs(3) {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(!c.connected(), "the session of a revoked token is closed");
    assert!(
        start.elapsed() < Duration::from_millis(1500),
        "within a second or so: {:?}",
        start.elapsed()
    );
    assert_eq!(
        code_of(connect(&r.relay.url(), &token).await),
        300,
        "a revoked token is refused"
    );
    let (status, _) = r.post("/auth/revoke", json!({ "token": token }), None);
    assert_eq!(status, 404, "revoking twice");
}

#[tokio::test]
async fn expired_tokens_get_302_at_hello_and_during_a_session() {
    let r = AuthRelay::start("expiry", &["--token-ttl", "1"]);
    let token = r.guest(&["read:/**"]);
    let c = connect(&r.relay.url(), &token)
        .await
        .expect("connects while valid");
    let start = Instant::now();
    while c.connected() && start.elapsed() < Duration::from_secs(5) {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(!c.connected(), "the session ends when its token expires");
    assert_eq!(code_of(connect(&r.relay.url(), &token).await), 302);
}

#[test]
fn login_and_register_are_rate_limited_per_address() {
    let r = AuthRelay::start("limits", &["--register-max-attempts", "3"]);
    let (status, body) = r.post(
        "/auth/register",
        json!({"username": "alice", "password": "secret1"}),
        None,
    );
    assert_eq!(status, 200, "{body}");
    for expected in [200, 200, 429] {
        let (status, body) = r.post("/auth/guest", json!({}), None);
        assert_eq!(status, expected, "{body}");
    }
    for i in 0..5 {
        let (status, body) = r.post(
            "/auth/login",
            json!({"username": "alice", "password": "wrong!"}),
            None,
        );
        assert_eq!(status, 401, "bad login {i}: {body}");
        assert_eq!(body["error"], "Invalid username or password");
    }
    let (status, body) = r.post(
        "/auth/login",
        json!({"username": "alice", "password": "secret1"}),
        None,
    );
    assert_eq!(
        status, 429,
        "the 6th attempt is refused even with the right password: {body}"
    );
}

#[test]
fn register_validates_input_and_answers_the_documented_shape() {
    let r = AuthRelay::start("register", &[]);
    let (status, body) = r.post(
        "/auth/register",
        json!({"username": "alice", "password": "secret1", "user_id": "alice-1"}),
        None,
    );
    assert_eq!(status, 200, "{body}");
    for key in [
        "token",
        "user_id",
        "username",
        "session_id",
        "scopes",
        "expires_at",
    ] {
        assert!(!body[key].is_null(), "answer has {key}: {body}");
    }
    assert!(body["token"]
        .as_str()
        .is_some_and(|t| t.starts_with("cpsk_") && t.len() == 37));
    assert_eq!(body["user_id"], "alice-1");
    assert_eq!(body["scopes"], json!(["read:/**", "write:/**"]));
    for (req, code) in [
        (json!({"username": "alice", "password": "secret1"}), 409),
        (
            json!({"username": "carol", "password": "secret1", "user_id": "alice-1"}),
            409,
        ),
        (json!({"username": "x", "password": "secret1"}), 400),
        (json!({"username": "dave", "password": "short"}), 400),
        (
            json!({"username": "erin", "password": "secret1", "user_id": "bad id!"}),
            400,
        ),
        (
            json!({"username": "fay", "password": "secret1", "scopes": ["bogus"]}),
            400,
        ),
    ] {
        let (status, body) = r.post("/auth/register", req.clone(), None);
        assert_eq!(status, code, "{req} → {body}");
        assert!(body["error"].is_string(), "errors are {{error}}: {body}");
    }
    let (status, body) = answer(
        ureq::post(&r.http("/auth/login"))
            .set("Content-Type", "application/json")
            .send_string("{not json"),
    );
    assert_eq!(status, 400, "{body}");
    let (status, body) = r.post(
        "/auth/login",
        json!({"username": "alice", "password": "secret1"}),
        None,
    );
    assert_eq!(status, 200, "{body}");
    let (status, body) = r.post("/auth/guest", json!({"name": "alice"}), None);
    assert_eq!(status, 409, "a guest may not take a user's name: {body}");
}

#[test]
fn admin_token_file_is_private_and_governs_wide_grants() {
    use std::os::unix::fs::PermissionsExt as _;
    let r = AuthRelay::start("admin", &[]);
    let mode = std::fs::metadata(r.dir.join("admin.token"))
        .expect("stat")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600, "admin token file mode");
    let wide = json!({"username": "root2", "password": "secret1", "scopes": ["admin:/**"]});
    let (status, body) = r.post("/auth/register", wide.clone(), None);
    assert_eq!(status, 403, "admin scope without the admin token: {body}");
    let (status, body) = r.post("/auth/register", wide.clone(), Some("cpsk_wrong"));
    assert_eq!(status, 401, "a wrong bearer: {body}");
    let (status, body) = r.post("/auth/register", wide, Some(&r.admin));
    assert_eq!(status, 200, "with the admin token: {body}");
    assert_eq!(body["scopes"], json!(["admin:/**"]));
}

#[tokio::test]
async fn users_and_tokens_survive_a_restart() {
    let dir = temp_dir("restart");
    let (token, admin) = {
        let mut r = AuthRelay::start_in(dir.clone(), &[]);
        let (status, body) = r.post(
            "/auth/register",
            json!({"username": "alice", "password": "secret1"}),
            None,
        );
        assert_eq!(status, 200, "{body}");
        let token = body["token"].as_str().expect("token").to_string();
        r.relay
            .terminate(Duration::from_secs(10))
            .expect("relay exits on SIGTERM");
        (token, r.admin.clone())
    };
    let r = AuthRelay::start_in(dir, &[]);
    assert_eq!(
        r.admin, admin,
        "the admin token file is reused, not replaced"
    );
    let c = connect(&r.relay.url(), &token)
        .await
        .expect("a pre-restart token still connects");
    c.set("/x", 1.0).await.expect("and writes");
    let (status, body) = r.post(
        "/auth/login",
        json!({"username": "alice", "password": "secret1"}),
        None,
    );
    assert_eq!(status, 200, "the user survived: {body}");
}

#[test]
fn open_relay_has_no_auth_api() {
    let relay = Relay::start(&[]);
    let (status, body) = answer(
        ureq::post(&format!("http://127.0.0.1:{}/auth/guest", relay.port)).send_json(json!({})),
    );
    assert_eq!(status, 404, "{body}");
}

/// The two tokens the official-client scenarios `js/auth.mjs` and `py/auth.py` use.
fn scenario_tokens(r: &AuthRelay) -> (String, String) {
    let (status, body) = r.post(
        "/auth/register",
        json!({"username": "official", "password": "secret1"}),
        None,
    );
    assert_eq!(status, 200, "{body}");
    let full = body["token"].as_str().expect("token").to_string();
    let limited = r.guest(&[
        "read:/pub/**",
        "write:/app/**",
        "write:/sync/**",
        "write:/alive/**",
    ]);
    (full, limited)
}

#[test]
fn official_js_client_with_cpsk_tokens() {
    require_js_client();
    let r = AuthRelay::start("js", &[]);
    let (full, limited) = scenario_tokens(&r);
    let mut cmd = node();
    cmd.arg(conformance_dir().join("js/auth.mjs"))
        .arg(r.relay.url())
        .env("CLASP_TOKEN", full)
        .env("CLASP_TOKEN_LIMITED", limited);
    run_ok(cmd, Duration::from_secs(60), "node js/auth.mjs");
}

#[test]
fn official_python_client_with_cpsk_tokens() {
    require_py_client();
    let r = AuthRelay::start("py", &[]);
    let (full, limited) = scenario_tokens(&r);
    let mut cmd = std::process::Command::new("python3");
    cmd.arg(conformance_dir().join("py/auth.py"))
        .arg(r.relay.url())
        .env("CLASP_TOKEN", full)
        .env("CLASP_TOKEN_LIMITED", limited);
    run_ok(cmd, Duration::from_secs(60), "python3 py/auth.py");
}
