//! Authenticated mode end to end: the real relay with `--auth`, tokens from its HTTP API, and
//! the Rust client plus raw frames walking the scope matrix, each token state, revocation,
//! the attempt limits, the admin token file and a restart that keeps users and tokens.

mod common;

use std::time::{Duration, Instant};

use clasp::{BundleItem, ClientError};
use clasp_proto::*;
use common::auth::*;
use common::*;
use serde_json::{json, Value as Json};

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

mod tokens {
    //! Capability and entity tokens at HELLO, and the entity registry's REST API.
    use super::*;
    use clasp_actors::auth::keys::{public_key_hex, SigningKey};
    use clasp_actors::auth::{entity_id_for, CapToken, EntityToken, Scopes};

    fn key(seed: u8) -> SigningKey {
        SigningKey::from_bytes(&[seed; 32])
    }

    fn scopes(list: &str) -> Scopes {
        Scopes::parse_list(list).expect("valid scopes")
    }

    fn now() -> u64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("clock")
            .as_secs()
    }

    fn cap_relay(name: &str, root: &SigningKey) -> AuthRelay {
        let anchor = public_key_hex(&root.verifying_key());
        AuthRelay::start(name, &["--trust-anchor", &anchor])
    }

    #[tokio::test]
    async fn delegated_capabilities_grant_exactly_their_scopes() {
        let root = key(1);
        let r = cap_relay("cap", &root);
        let parent = CapToken::create(
            &root,
            &scopes("read:/**,write:/lights/**"),
            now() + 3600,
            None,
        );
        let child = CapToken::delegate(
            &parent,
            &key(2),
            &scopes("read:/lights/**,write:/lights/stage/**"),
            now() + 600,
            None,
        )
        .expect("a narrowing delegation");
        let c = connect(&r.relay.url(), &child.encode())
            .await
            .expect("a delegated cap connects");
        c.set("/lights/stage/1", 0.5)
            .await
            .expect("write inside the delegated scope");
        assert_eq!(
            code_of(c.set("/lights/house/1", 0.5).await),
            301,
            "the parent's wider write is not inherited"
        );
        assert_eq!(
            code_of(c.get("/sound/x").await),
            301,
            "read narrowed to /lights"
        );
        let p = connect(&r.relay.url(), &parent.encode())
            .await
            .expect("the root cap connects");
        p.set("/lights/house/1", 1.0).await.expect("the parent may");
    }

    #[tokio::test]
    async fn bad_capabilities_are_refused_with_the_right_code() {
        let root = key(1);
        let r = cap_relay("cap-bad", &root);
        let url = r.relay.url();
        let parent = CapToken::create(&root, &scopes("write:/lights/**"), now() + 3600, None);
        // Widened by hand (delegate() would refuse), then properly signed by the child.
        let mut widened = CapToken::delegate(
            &parent,
            &key(2),
            &scopes("write:/lights/a"),
            now() + 600,
            None,
        )
        .expect("ok");
        widened.scopes = vec!["admin:/**".into()];
        widened.sign(&key(2));
        let untrusted = CapToken::create(&key(9), &scopes("admin:/**"), now() + 3600, None);
        let expired = CapToken::create(&root, &scopes("read:/**"), now() - 10, None);
        let mut deep = CapToken::create(&root, &scopes("read:/**"), now() + 3600, None);
        for i in 0..6 {
            deep = CapToken::delegate(&deep, &key(20 + i), &scopes("read:/**"), now() + 3600, None)
                .expect("delegate");
        }
        let vectors: Json =
            serde_json::from_str(include_str!("../actors/tests/data/captokens.json"))
                .expect("vectors");
        let forged = vectors["forged_chain_token"]
            .as_str()
            .expect("forged token")
            .to_string();
        for (token, code, what) in [
            (widened.encode(), 300, "widened scope"),
            (untrusted.encode(), 300, "untrusted root"),
            (expired.encode(), 302, "expired"),
            (deep.encode(), 300, "depth 6 > 5"),
            (
                forged,
                300,
                "forged proofs[0] (vector root is not our anchor)",
            ),
        ] {
            assert_eq!(code_of(connect(&url, &token).await), code, "{what}");
        }
    }

    #[tokio::test]
    async fn the_forged_chain_of_the_vectors_is_refused_even_with_its_root_trusted() {
        let vectors: Json =
            serde_json::from_str(include_str!("../actors/tests/data/captokens.json"))
                .expect("vectors");
        let anchor = vectors["root_pubkey_hex"].as_str().expect("root key");
        let r = AuthRelay::start("cap-forged", &["--trust-anchor", anchor]);
        let forged = vectors["forged_chain_token"].as_str().expect("forged");
        match connect(&r.relay.url(), forged).await {
            Err(ClientError::Refused { code: 300, message }) => {
                assert!(message.contains("Invalid token"), "{message}")
            }
            other => panic!(
                "the forged chain must be refused with 300, got {:?}",
                other.map(|_| ())
            ),
        }
        let root = vectors["root_token"].as_str().expect("root token");
        connect(&r.relay.url(), root)
            .await
            .expect("the upstream-minted root token connects");
    }

    #[test]
    fn official_js_client_with_a_delegated_capability() {
        require_js_client();
        let root = key(1);
        let r = cap_relay("cap-js", &root);
        let full = CapToken::create(&root, &scopes("read:/**,write:/**"), now() + 3600, None);
        let limited = CapToken::delegate(
            &full,
            &key(3),
            &scopes("read:/pub/**,write:/app/**,write:/sync/**,write:/alive/**"),
            now() + 3600,
            None,
        )
        .expect("delegate");
        let mut cmd = node();
        cmd.arg(conformance_dir().join("js/auth.mjs"))
            .arg(r.relay.url())
            .env("CLASP_TOKEN", full.encode())
            .env("CLASP_TOKEN_LIMITED", limited.encode());
        run_ok(
            cmd,
            Duration::from_secs(60),
            "node js/auth.mjs with cap_ tokens",
        );
    }

    #[tokio::test]
    async fn revoking_a_capability_revokes_everything_delegated_from_it() {
        let root = key(1);
        let r = cap_relay("cap-revoke", &root);
        let url = r.relay.url();
        let parent = CapToken::create(&root, &scopes("read:/**,write:/**"), now() + 3600, None);
        let child = CapToken::delegate(&parent, &key(2), &scopes("read:/**"), now() + 3600, None)
            .expect("delegate");
        let sibling = CapToken::create(&root, &scopes("read:/**"), now() + 3600, None);
        let live = connect(&url, &child.encode())
            .await
            .expect("child connects");
        let (status, body) = r.post("/auth/revoke", json!({ "token": parent.encode() }), None);
        assert_eq!(
            (status, &body["sessions_closed"]),
            (200, &json!(1)),
            "{body}"
        );
        let start = Instant::now();
        while live.connected() && start.elapsed() < Duration::from_secs(3) {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert!(!live.connected(), "the delegated session is closed");
        for (token, what) in [
            (parent.encode(), "this token"),
            (child.encode(), "an ancestor"),
        ] {
            match connect(&url, &token).await {
                Err(ClientError::Refused { code: 300, message }) => {
                    assert!(message.contains(what), "{message}")
                }
                other => panic!(
                    "expected 300 for a revoked chain, got {:?}",
                    other.map(|_| ())
                ),
            }
        }
        connect(&url, &sibling.encode())
            .await
            .expect("an unrelated token of the same root still works");
        let mut forged = sibling.clone();
        forged.nonce = "not-signed".into();
        let (status, body) = r.post("/auth/revoke", json!({ "token": forged.encode() }), None);
        assert_eq!(
            status, 400,
            "only genuinely signed tokens can be revoked: {body}"
        );
    }

    #[tokio::test]
    async fn entity_tokens_past_the_maximum_age_are_expired() {
        let r = AuthRelay::start("entity-age", &["--entity-token-max-age", "60"]);
        let device = key(5);
        let (status, body) = register_entity(
            &r,
            &device,
            json!({"entity_type": "device", "name": "old", "scopes": ["read:/**"]}),
        );
        assert_eq!(status, 201, "{body}");
        let id = body["id"].as_str().expect("id");
        let stale = EntityToken::mint(&device, id, now() - 120).encode();
        assert_eq!(code_of(connect(&r.relay.url(), &stale).await), 302);
        let fresh = EntityToken::mint(&device, id, now()).encode();
        connect(&r.relay.url(), &fresh)
            .await
            .expect("a fresh token connects");
    }

    /// `clasp token entity keygen`, registration over REST, `clasp token entity mint`.
    fn cli_entity_token(r: &AuthRelay, name: &str, scopes: &[&str]) -> String {
        let file = r.dir.join(format!("{name}.key"));
        let clasp = |args: &[&str]| {
            let out = std::process::Command::new(env!("CARGO_BIN_EXE_clasp"))
                .args(args)
                .output()
                .expect("runs clasp");
            assert!(
                out.status.success(),
                "clasp {args:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            String::from_utf8(out.stdout).expect("utf-8")
        };
        let path = file.to_str().expect("utf-8");
        let printed = clasp(&[
            "token", "entity", "keygen", "-o", path, "-n", name, "-t", "device",
        ]);
        let public_key = printed
            .lines()
            .find_map(|l| l.strip_prefix("public_key:"))
            .map(str::trim)
            .expect("keygen prints the public key")
            .to_string();
        let (status, body) = r.post(
            "/api/entities",
            json!({"entity_type": "device", "name": name, "public_key": public_key, "scopes": scopes}),
            Some(&r.admin),
        );
        assert_eq!(status, 201, "{body}");
        clasp(&["token", "entity", "mint", "-k", path])
            .trim()
            .to_string()
    }

    #[test]
    fn official_js_client_with_entity_tokens_minted_by_the_cli() {
        require_js_client();
        let r = AuthRelay::start("entity-js", &[]);
        let full = cli_entity_token(&r, "desk", &["read:/**", "write:/**"]);
        let limited = cli_entity_token(
            &r,
            "fader",
            &[
                "read:/pub/**",
                "write:/app/**",
                "write:/sync/**",
                "write:/alive/**",
            ],
        );
        assert!(full.starts_with("ent_") && limited.starts_with("ent_"));
        let mut cmd = node();
        cmd.arg(conformance_dir().join("js/auth.mjs"))
            .arg(r.relay.url())
            .env("CLASP_TOKEN", full)
            .env("CLASP_TOKEN_LIMITED", limited);
        run_ok(
            cmd,
            Duration::from_secs(60),
            "node js/auth.mjs with ent_ tokens",
        );
    }

    fn register_entity(r: &AuthRelay, k: &SigningKey, body: Json) -> (u16, Json) {
        let mut body = body;
        body["public_key"] = json!(public_key_hex(&k.verifying_key()));
        r.post("/api/entities", body, Some(&r.admin))
    }

    #[tokio::test]
    async fn entity_tokens_follow_the_registry_status() {
        let r = AuthRelay::start("entity", &[]);
        let device = key(5);
        let (status, body) = register_entity(
            &r,
            &device,
            json!({"entity_type": "Device", "name": "fader", "namespaces": ["/stage"]}),
        );
        assert_eq!(status, 201, "{body}");
        let id = body["id"].as_str().expect("id").to_string();
        assert_eq!(
            id,
            entity_id_for(&device.verifying_key()),
            "id derived from the key"
        );
        assert_eq!(body["status"], "active");
        assert_eq!(body["entity_type"], "device");

        let token = EntityToken::mint(&device, &id, now()).encode();
        let c = connect(&r.relay.url(), &token)
            .await
            .expect("an active entity connects");
        c.set("/stage/fader/1", 0.7)
            .await
            .expect("admin over its namespace");
        assert_eq!(
            code_of(c.set("/house/x", 1.0).await),
            301,
            "nothing outside its namespace"
        );
        let wrong_key = EntityToken::mint(&key(6), &id, now()).encode();
        assert_eq!(
            code_of(connect(&r.relay.url(), &wrong_key).await),
            300,
            "signed by another key"
        );

        let put = |status: &str| {
            answer(
                ureq::put(&r.http(&format!("/api/entities/{id}/status")))
                    .set("Authorization", &format!("Bearer {}", r.admin))
                    .send_json(json!({ "status": status })),
            )
        };
        let (code, body) = put("Revoked");
        assert_eq!(code, 200, "{body}");
        let start = Instant::now();
        while c.connected() && start.elapsed() < Duration::from_secs(3) {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert!(
            !c.connected() && start.elapsed() < Duration::from_millis(1500),
            "a revoked entity's session closes within a second"
        );
        match connect(&r.relay.url(), &token).await {
            Err(ClientError::Refused { code: 300, message }) => {
                assert!(message.contains("revoked"), "{message}")
            }
            other => panic!("expected 300 'revoked', got {:?}", other.map(|_| ())),
        }
        assert_eq!(put("suspended").0, 200);
        assert_eq!(
            code_of(connect(&r.relay.url(), &token).await),
            300,
            "suspended = inactive"
        );
        assert_eq!(put("active").0, 200);
        connect(&r.relay.url(), &token).await.expect("re-activated");
    }

    #[test]
    fn registry_rest_crud_needs_the_admin_token_and_survives_a_restart() {
        let dir = temp_dir("registry");
        let k = key(7);
        let id;
        {
            let mut r = AuthRelay::start_in(dir.clone(), &[]);
            let (status, _) = r.post("/api/entities", json!({"entity_type": "service", "name": "x", "public_key": public_key_hex(&k.verifying_key())}), None);
            assert_eq!(status, 401, "no bearer");
            let user = r.guest(&["read:/**"]);
            let (status, _) = r.post("/api/entities", json!({"entity_type": "service", "name": "x", "public_key": public_key_hex(&k.verifying_key())}), Some(&user));
            assert_eq!(status, 403, "not an admin");
            let (status, body) = register_entity(
                &r,
                &k,
                json!({"entity_type": "service", "name": "svc", "tags": ["a"], "scopes": ["read:/**"], "metadata": {"room": 1}}),
            );
            assert_eq!(status, 201, "{body}");
            id = body["id"].as_str().expect("id").to_string();
            assert_eq!(
                register_entity(&r, &k, json!({"entity_type": "service", "name": "again"})).0,
                409,
                "duplicate key"
            );
            let (status, body) = r.post(
                "/api/entities",
                json!({"entity_type": "service", "name": "x", "public_key": "zz"}),
                Some(&r.admin),
            );
            assert_eq!(status, 400, "bad key: {body}");
            assert_eq!(
                register_entity(&r, &key(8), json!({"entity_type": "toaster", "name": "x"})).0,
                400,
                "bad type"
            );
            let bearer = format!("Bearer {}", r.admin);
            let (status, body) = answer(
                ureq::get(&r.http("/api/entities?offset=0&limit=10"))
                    .set("Authorization", &bearer)
                    .call(),
            );
            assert_eq!(
                (status, body.as_array().map(Vec::len)),
                (200, Some(1)),
                "{body}"
            );
            let (status, body) = answer(
                ureq::put(&r.http(&format!("/api/entities/{id}")))
                    .set("Authorization", &bearer)
                    .send_json(json!({"name": "renamed"})),
            );
            assert_eq!(
                (status, body["name"].as_str()),
                (200, Some("renamed")),
                "{body}"
            );
            let (status, _) = answer(
                ureq::get(&r.http("/api/entities/clasp:unknown1"))
                    .set("Authorization", &bearer)
                    .call(),
            );
            assert_eq!(status, 404);
            let (status, _) = answer(
                ureq::get(&r.http("/api/entities/not-an-id"))
                    .set("Authorization", &bearer)
                    .call(),
            );
            assert_eq!(status, 400);
            r.relay.terminate(Duration::from_secs(10)).expect("exits");
        }
        let r = AuthRelay::start_in(dir, &[]);
        let bearer = format!("Bearer {}", r.admin);
        let (status, body) = answer(
            ureq::get(&r.http(&format!("/api/entities/{id}")))
                .set("Authorization", &bearer)
                .call(),
        );
        assert_eq!(
            (
                status,
                body["name"].as_str(),
                body["metadata"]["room"].as_i64()
            ),
            (200, Some("renamed"), Some(1)),
            "{body}"
        );
        let (status, _) = answer(
            ureq::delete(&r.http(&format!("/api/entities/{id}")))
                .set("Authorization", &bearer)
                .call(),
        );
        assert_eq!(status, 204);
        let (status, _) = answer(
            ureq::delete(&r.http(&format!("/api/entities/{id}")))
                .set("Authorization", &bearer)
                .call(),
        );
        assert_eq!(status, 404);
    }
}

#[tokio::test]
async fn auth_port_serves_the_api_implies_auth_and_honours_cors_origins() {
    let dir = temp_dir("auth-port");
    let port = free_port();
    let db = dir.join("auth.redb");
    let relay = Relay::start(&[
        "--auth-port",
        &port.to_string(),
        "--auth-db",
        db.to_str().expect("utf-8"),
        "--cors-origin",
        "http://console.example,http://other.example",
    ]);
    // The API answers on the auth port (the relay started it before it listened on its own).
    let (status, body) =
        answer(ureq::post(&format!("http://127.0.0.1:{port}/auth/guest")).send_json(json!({})));
    assert_eq!(status, 200, "{body}");
    let token = body["token"].as_str().expect("token").to_string();
    // --auth-port alone switches authentication on.
    assert_eq!(code_of(connect(&relay.url(), "").await), 300);
    connect(&relay.url(), &token)
        .await
        .expect("a token from the auth port works");

    let preflight = |origin: &str| {
        ureq::request("OPTIONS", &format!("http://127.0.0.1:{port}/auth/login"))
            .set("Origin", origin)
            .set("Access-Control-Request-Method", "POST")
            .set("Access-Control-Request-Headers", "content-type")
            .call()
            .map_err(Box::new)
    };
    let allowed =
        preflight("http://console.example").expect("an allowed origin's preflight succeeds");
    assert_eq!(
        allowed.header("Access-Control-Allow-Origin"),
        Some("http://console.example")
    );
    match preflight("http://evil.example").map_err(|e| *e) {
        Ok(r) => assert_eq!(
            r.header("Access-Control-Allow-Origin"),
            None,
            "no grant for another origin"
        ),
        Err(ureq::Error::Status(code, r)) => {
            assert!(code >= 400, "{code}");
            assert_eq!(r.header("Access-Control-Allow-Origin"), None);
        }
        Err(e) => panic!("preflight failed: {e}"),
    }
}
