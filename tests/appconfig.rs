//! `--app-config` end to end (issue 8, FEATURES AC-1..AC-6), against the real binary with
//! `--auth`: scope templates and rate limits from the file, every write-rule check (ERROR 402
//! with the check's message, nothing applied), value type and range, per-address strategy,
//! redaction and owner visibility in GET, snapshots and live deliveries, validation errors
//! that stop the relay, and discovery in `./config`.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use clasp::{BundleItem, Client, ClientError};
use clasp_proto::Value;
use common::auth::*;
use serde_json::json;

/// The relay's app config for these tests: the chat example's rules plus value rules.
fn config() -> serde_json::Value {
    json!({
        "scopes": [
            "read:/**",
            "write:/app/user/{userId}/**",
            "write:/chat/**",
            "write:/v/**",
            "write:/t/**"
        ],
        "write_rules": [
            {"path": "/chat/room/{roomId}/messages", "checks": [
                {"type": "value_field_equals_session", "field": "fromId"},
                {"type": "require_value_field", "field": "content"},
                {"type": "state_not_null", "lookup": "/chat/room/{roomId}/meta"}
            ]},
            {"path": "/chat/room/{roomId}/meta", "checks": [
                {"type": "state_field_equals_session", "lookup": "/chat/room/{roomId}/meta",
                 "field": "creatorId", "allow_if_missing": true}
            ]},
            {"path": "/chat/room/{roomId}/bans/{targetId}", "mode": "any", "checks": [
                {"type": "state_field_equals_session", "lookup": "/chat/room/{roomId}/meta", "field": "creatorId"},
                {"type": "state_not_null", "lookup": "/chat/room/{roomId}/admin/{session}"}
            ]},
            {"path": "/chat/user/{targetId}/dms/{roomId}", "checks": [
                {"type": "either_state_not_null",
                 "lookup_a": "/chat/user/{session}/friends/{targetId}",
                 "lookup_b": "/chat/user/{targetId}/friends/{session}"}
            ]},
            {"path": "/chat/requests/{targetId}/{fromId}", "allow_null_write": true,
             "pre_checks": [{"type": "segment_equals_session", "segment": "fromId"}],
             "checks": [{"check": "value_field_equals_session", "field": "fromId"}]},
            {"path": "/chat/requests/**", "checks": [
                {"type": "reject_unless_path_matches", "pattern": "/chat/requests/{targetId}/{fromId}",
                 "message": "A friend request lives at /chat/requests/{targetId}/{fromId}"}
            ]},
            {"path": "/v/level", "type": "number", "min": 0, "max": 1},
            {"path": "/v/name", "type": "string", "max": 8, "message": "A name is text of at most 8 characters"}
        ],
        "snapshot_transforms": [
            {"path": "/chat/user/{userId}/profile", "redact_fields": ["passwordHash"]}
        ],
        "snapshot_visibility": [
            {"path": "/chat/user/{userId}/**", "visible": "owner", "owner_segment": "userId", "public_sub": "profile"},
            {"path_contains": "/secret", "visible": false},
            {"path": "/chat/room/{roomId}/private/**", "visible": "require_state_not_null",
             "lookup": "/chat/room/{roomId}/members/{session}"}
        ],
        "params": [
            {"path": "/t/{name}/high", "strategy": "max"},
            {"path": "/t/tmp/{name}", "ttl_secs": 1}
        ],
        "rate_limits": {"login_max_attempts": 2}
    })
}

/// A relay with `config` as its app config file.
fn relay(name: &str, config: &serde_json::Value) -> AuthRelay {
    let dir = temp_dir(&format!("appcfg-{name}"));
    let file = dir.join("app.json");
    std::fs::write(&file, config.to_string()).expect("write the app config");
    let file = file.to_str().expect("utf-8 path").to_string();
    AuthRelay::start_in(dir, &["--app-config", &file])
}

/// Registers `user` (password `secret1`) with user id = name; its token.
fn register(r: &AuthRelay, user: &str) -> String {
    let (status, body) = r.post(
        "/auth/register",
        json!({"username": user, "password": "secret1", "user_id": user}),
        None,
    );
    assert_eq!(status, 200, "register {user}: {body}");
    body["token"].as_str().expect("token").to_string()
}

async fn user(r: &AuthRelay, name: &str) -> Client {
    connect(&r.relay.url(), &register(r, name))
        .await
        .expect("connects")
}

fn map(entries: &[(&str, &str)]) -> Value {
    Value::Map(
        entries
            .iter()
            .map(|(k, v)| ((*k).to_string(), Value::String((*v).to_string())))
            .collect(),
    )
}

/// The ERROR a refused call got: its code and text.
fn refusal<T: std::fmt::Debug>(r: Result<T, ClientError>) -> (u16, String) {
    match r {
        Err(ClientError::Server { code, message, .. }) => (code, message),
        other => panic!("expected an ERROR from the relay, got {other:?}"),
    }
}

#[tokio::test]
async fn scope_templates_and_rate_limits_come_from_the_file() {
    let r = relay("scopes", &config());
    let alice = user(&r, "alice").await;
    alice
        .set("/app/user/alice/x", 1.0)
        .await
        .expect("own subtree");
    assert_eq!(code_of(alice.set("/app/user/bob/x", 1.0).await), 301);
    // login_max_attempts 2: the third bad login is refused before the password is checked.
    let bad = json!({"username": "alice", "password": "wrong-pass"});
    assert_eq!(r.post("/auth/login", bad.clone(), None).0, 401);
    assert_eq!(r.post("/auth/login", bad.clone(), None).0, 401);
    assert_eq!(r.post("/auth/login", bad, None).0, 429);
}

#[tokio::test]
async fn the_chat_rules_refuse_with_402_and_the_checks_message() {
    let r = relay("chat", &config());
    let alice = user(&r, "alice").await;
    let bob = user(&r, "bob").await;
    let messages = "/chat/room/r1/messages";
    let post = |from: &str, content: Option<&str>| {
        let mut m = vec![("fromId", from)];
        if let Some(c) = content {
            m.push(("content", c));
        }
        map(&m)
    };
    // A room without meta.
    let (code, text) = refusal(alice.set(messages, post("alice", Some("hi"))).await);
    assert_eq!(code, 402);
    assert!(text.contains("/chat/room/r1/meta"), "{text}");
    alice
        .set("/chat/room/r1/meta", map(&[("creatorId", "alice")]))
        .await
        .expect("alice creates the room");
    alice
        .set(messages, post("alice", Some("hi")))
        .await
        .expect("a proper message");
    // Bob posting as alice.
    let (code, text) = refusal(bob.set(messages, post("alice", Some("it's me"))).await);
    assert_eq!(code, 402);
    assert!(text.contains("fromId"), "{text}");
    // A message without content.
    let (code, text) = refusal(bob.set(messages, post("bob", None)).await);
    assert_eq!((code, text.contains("content")), (402, true), "{text}");
    // Nothing refused was applied.
    let stored = alice.get(messages).await.expect("stored");
    assert_eq!(
        stored.value.get("content"),
        Some(&Value::String("hi".into()))
    );
    // state_field_equals_session: only the creator changes the meta.
    let (code, _) = refusal(
        bob.set("/chat/room/r1/meta", map(&[("creatorId", "bob")]))
            .await,
    );
    assert_eq!(code, 402);
    // mode any: the creator, or an admin of the room, may ban.
    alice
        .set("/chat/room/r1/bans/carol", true)
        .await
        .expect("creator bans");
    assert_eq!(
        refusal(bob.set("/chat/room/r1/bans/carol", true).await).0,
        402
    );
    alice
        .set("/chat/room/r1/admin/bob", true)
        .await
        .expect("an unruled address");
    bob.set("/chat/room/r1/bans/carol", true)
        .await
        .expect("an admin bans");
    // either_state_not_null: DMs need a friendship in either direction.
    let (code, text) = refusal(bob.set("/chat/user/alice/dms/d1", "psst").await);
    assert!(code == 402 && text.contains("friends"), "{code} {text}");
    alice
        .set("/chat/user/alice/friends/bob", true)
        .await
        .expect("befriend");
    bob.set("/chat/user/alice/dms/d1", "psst")
        .await
        .expect("friends may DM");
    // pre_checks run even for null writes; checks (keyed "check") do not.
    bob.set("/chat/requests/alice/bob", map(&[("fromId", "bob")]))
        .await
        .expect("own request");
    bob.set("/chat/requests/alice/bob", Value::Null)
        .await
        .expect("null write skips the checks");
    assert_eq!(
        refusal(bob.set("/chat/requests/alice/carol", Value::Null).await).0,
        402
    );
    assert_eq!(
        refusal(
            bob.set("/chat/requests/alice/bob", map(&[("fromId", "carol")]))
                .await
        )
        .0,
        402
    );
    // reject_unless_path_matches: its own message.
    let (code, text) = refusal(bob.set("/chat/requests/alice", 1.0).await);
    assert_eq!(code, 402);
    assert_eq!(
        text,
        "A friend request lives at /chat/requests/{targetId}/{fromId}"
    );
}

#[tokio::test]
async fn bundles_are_refused_whole_and_publishes_are_checked() {
    let r = relay("bundle", &config());
    let alice = user(&r, "alice").await;
    let bob = user(&r, "bob").await;
    alice
        .set("/chat/room/r2/meta", map(&[("creatorId", "alice")]))
        .await
        .expect("room");
    let items = vec![
        BundleItem::Set("/v/level".into(), Value::Float(0.5)),
        BundleItem::Set(
            "/chat/room/r2/messages".into(),
            map(&[("fromId", "alice"), ("content", "x")]),
        ),
    ];
    let (code, text) = refusal(bob.bundle(items).await);
    assert_eq!(code, 402);
    assert!(text.starts_with("Bundle rejected"), "{text}");
    // Nothing in it was applied.
    assert!(alice.get("/v/level").await.is_err());
    // The same bundle from the right sender passes its lookups and is applied whole.
    let items = vec![
        BundleItem::Set("/v/level".into(), Value::Float(0.5)),
        BundleItem::Set(
            "/chat/room/r2/messages".into(),
            map(&[("fromId", "alice"), ("content", "bundled")]),
        ),
    ];
    alice.bundle(items).await.expect("a valid bundle");
    assert_eq!(
        bob.get("/v/level").await.expect("applied").value,
        Value::Float(0.5)
    );
    // A PUBLISH under a rule is checked too: bob's forged event never reaches alice.
    let mut sub = alice
        .subscribe("/chat/room/r2/messages")
        .await
        .expect("subscribe");
    bob.emit(
        "/chat/room/r2/messages",
        map(&[("fromId", "alice"), ("content", "x")]),
    )
    .await
    .expect("sent");
    bob.emit(
        "/chat/room/r2/messages",
        map(&[("fromId", "bob"), ("content", "real")]),
    )
    .await
    .expect("sent");
    // The subscription snapshot (the bundled SET) first, then only the valid event.
    let mut got = sub.next_within(Duration::from_secs(3)).await;
    let bundled = Some(&Value::String("bundled".into()));
    if got
        .as_ref()
        .is_some_and(|u| u.value.get("content") == bundled)
    {
        got = sub.next_within(Duration::from_secs(3)).await;
    }
    let got = got.expect("the valid event arrives");
    assert_eq!(
        got.value.get("content"),
        Some(&Value::String("real".into()))
    );
}

#[tokio::test]
async fn values_are_checked_for_type_and_range_and_params_set_the_strategy() {
    let r = relay("values", &config());
    let alice = user(&r, "alice").await;
    alice.set("/v/level", 0.5).await.expect("in range");
    alice
        .set("/v/level", 1i64)
        .await
        .expect("an int is a number");
    let (code, text) = refusal(alice.set("/v/level", 1.5).await);
    assert!(code == 402 && text.contains("maximum"), "{code} {text}");
    let (code, text) = refusal(alice.set("/v/level", -0.1).await);
    assert!(code == 402 && text.contains("minimum"), "{code} {text}");
    let (code, text) = refusal(alice.set("/v/level", "loud").await);
    assert!(code == 402 && text.contains("number"), "{code} {text}");
    assert_eq!(
        alice.get("/v/level").await.expect("get").value,
        Value::Int(1)
    );
    alice.set("/v/name", "stage").await.expect("a short name");
    let (code, text) = refusal(alice.set("/v/name", 3.0).await);
    assert_eq!(
        (code, text.as_str()),
        (402, "A name is text of at most 8 characters")
    );
    assert_eq!(refusal(alice.set("/v/name", "much too long").await).0, 402);
    // params: /t/{name}/high keeps the larger number.
    alice.set("/t/a/high", 5.0).await.expect("first");
    assert_eq!(code_of(alice.set("/t/a/high", 3.0).await), 400);
    alice.set("/t/a/low", 5.0).await.expect("lww elsewhere");
    alice.set("/t/a/low", 3.0).await.expect("lww elsewhere");
}

#[tokio::test]
async fn params_give_sets_without_a_ttl_their_lifetime() {
    let r = relay("ttl", &config());
    let alice = user(&r, "alice").await;
    alice.set("/t/tmp/a", 1.0).await.expect("set");
    alice.set("/t/keep/a", 1.0).await.expect("set");
    assert!(alice.get("/t/tmp/a").await.is_ok(), "alive at first");
    tokio::time::sleep(Duration::from_millis(2_600)).await;
    assert!(
        alice.get("/t/tmp/a").await.is_err(),
        "expired after its 1 s TTL"
    );
    assert!(
        alice.get("/t/keep/a").await.is_ok(),
        "the default TTL elsewhere"
    );
}

#[tokio::test]
async fn an_open_relay_validates_values_but_has_no_identity_to_check() {
    let dir = temp_dir("appcfg-open");
    let file = dir.join("app.json");
    std::fs::write(&file, config().to_string()).expect("write");
    let relay = common::Relay::start(&["--app-config", file.to_str().expect("utf-8")]);
    let c = Client::builder(relay.url())
        .reconnect(false)
        .timeout(Duration::from_secs(3))
        .connect()
        .await
        .expect("open relay");
    assert_eq!(refusal(c.set("/v/level", 2.0).await).0, 402);
    c.set("/v/level", 0.2).await.expect("in range");
    // No subject: the identity checks do not apply (AC-3).
    c.set("/chat/room/x/messages", map(&[("content", "hi")]))
        .await
        .expect("no identity checks in open mode");
}

/// HELLO with `token` over a raw WebSocket; the values of the initial SNAPSHOT.
async fn initial_snapshot(port: u16, token: &str) -> Vec<clasp_proto::ParamState> {
    let (_ws, frames, closed) = raw_hello(port, Some(token)).await;
    assert!(!closed, "the relay accepted the token: {frames:?}");
    match frames.into_iter().last() {
        Some(clasp_proto::Message::Snapshot(s)) => s.params,
        other => panic!("expected the initial SNAPSHOT, got {other:?}"),
    }
}

#[tokio::test]
async fn redaction_and_owner_visibility_reach_every_read_path() {
    let r = relay("view", &config());
    let alice = user(&r, "alice").await;
    let bob_token = register(&r, "bob");
    let bob = connect(&r.relay.url(), &bob_token).await.expect("bob");
    let profile = "/chat/user/alice/profile";
    let private = "/chat/user/alice/inbox";
    let profile_value = map(&[("email", "a@x"), ("passwordHash", "h1")]);
    alice.set(profile, profile_value).await.expect("profile");
    alice.set(private, "secret").await.expect("private");
    alice.set("/chat/lobby/secret", 1.0).await.expect("hidden");
    let no_hash = |v: &Value, what: &str| {
        assert_eq!(v.get("email"), Some(&Value::String("a@x".into())), "{what}");
        assert_eq!(v.get("passwordHash"), None, "{what} leaked passwordHash");
    };
    // GET: redacted; a hidden entry answers as an unknown one; the owner sees hers.
    no_hash(&bob.get(profile).await.expect("GET").value, "GET");
    assert!(bob.get(private).await.is_err(), "GET of a private entry");
    assert_eq!(
        alice.get(private).await.expect("owner").value,
        Value::String("secret".into())
    );
    // Initial snapshot.
    let snapshot = initial_snapshot(r.relay.port, &bob_token).await;
    let seen: Vec<&str> = snapshot.iter().map(|p| p.address.as_str()).collect();
    assert!(seen.contains(&profile), "{seen:?}");
    assert!(
        !seen.contains(&private) && !seen.contains(&"/chat/lobby/secret"),
        "{seen:?}"
    );
    for p in &snapshot {
        if p.address.as_str() == profile {
            no_hash(&p.value, "initial snapshot");
        }
    }
    // Subscription snapshot, then live updates.
    let mut sub = bob.subscribe("/chat/**").await.expect("subscribe");
    let mut got = Vec::new();
    while let Some(u) = sub.next_within(Duration::from_millis(500)).await {
        got.push(u);
    }
    assert!(
        got.iter().all(|u| u.address.as_str() == profile),
        "subscription snapshot: {:?}",
        got.iter().map(|u| u.address.as_str()).collect::<Vec<_>>()
    );
    assert_eq!(got.len(), 1, "the profile is in the subscription snapshot");
    no_hash(&got[0].value, "subscription snapshot");
    alice.set(private, "new secret").await.expect("private");
    alice
        .set(profile, map(&[("email", "a@x"), ("passwordHash", "h2")]))
        .await
        .expect("profile");
    let live = sub
        .next_within(Duration::from_secs(3))
        .await
        .expect("the profile update arrives");
    assert_eq!(
        live.address.as_str(),
        profile,
        "live: the private entry leaked"
    );
    no_hash(&live.value, "live update");
    assert!(sub.next_within(Duration::from_millis(500)).await.is_none());
}

#[tokio::test]
async fn require_state_not_null_shows_entries_to_members_only() {
    let r = relay("members", &config());
    let alice = user(&r, "alice").await;
    let bob = user(&r, "bob").await;
    let note = "/chat/room/r/private/note";
    alice.set(note, "v1").await.expect("set");
    assert!(bob.get(note).await.is_err(), "not a member yet");
    let mut sub = bob.subscribe("/chat/room/r/private/**").await.expect("sub");
    alice.set(note, "v2").await.expect("set");
    assert!(
        sub.next_within(Duration::from_millis(500)).await.is_none(),
        "a live update reached a non-member"
    );
    alice
        .set("/chat/room/r/members/bob", true)
        .await
        .expect("bob joins");
    assert_eq!(
        bob.get(note).await.expect("member").value,
        Value::String("v2".into())
    );
    alice.set(note, "v3").await.expect("set");
    // The client also hands the GET's answer (v2) to the subscription.
    let mut live = sub.next_within(Duration::from_secs(3)).await;
    if live
        .as_ref()
        .is_some_and(|u| u.value == Value::String("v2".into()))
    {
        live = sub.next_within(Duration::from_secs(3)).await;
    }
    assert_eq!(
        live.expect("members see live updates").value,
        Value::String("v3".into())
    );
}

/// Runs `clasp relay` with `args` from `cwd`; expects it to exit with an error; its stderr.
fn failing_start(cwd: &Path, args: &[&str]) -> String {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_clasp"));
    cmd.current_dir(cwd).args([
        "relay",
        "--host",
        "127.0.0.1",
        "--ws-port",
        &common::free_port().to_string(),
    ]);
    cmd.args(args);
    let out = common::run_with_timeout(cmd, Duration::from_secs(10), "clasp relay");
    match out.status {
        Some(s) => assert!(!s.success(), "the relay started: {}", out.stderr),
        None => panic!("the relay kept running with a bad app config"),
    }
    out.stderr
}

#[test]
fn an_invalid_file_stops_the_relay_with_the_rule_and_field() {
    let dir = temp_dir("appcfg-invalid");
    let file = dir.join("bad.json");
    let bad = json!({"write_rules": [
        {"path": "/ok"},
        {"path": "/room/{roomId}/meta", "checks": [{"type": "state_not_null", "lookup": "/room/{other}/x"}]}
    ]});
    std::fs::write(&file, bad.to_string()).expect("write");
    let path = file.to_str().expect("utf-8");
    let stderr = failing_start(&dir, &["--app-config", path]);
    for part in [
        "write_rules[1]",
        "/room/{roomId}/meta",
        "checks[0].lookup",
        "{other}",
    ] {
        assert!(stderr.contains(part), "{part:?} missing from: {stderr}");
    }
    std::fs::write(&file, "{\"write_rules\": [").expect("write");
    let stderr = failing_start(&dir, &["--app-config", path]);
    assert!(stderr.contains("bad.json"), "{stderr}");
    let stderr = failing_start(&dir, &["--app-config", "/nonexistent/app.json"]);
    assert!(stderr.contains("/nonexistent/app.json"), "{stderr}");
}

/// A directory with `config/<name>` holding `text`.
fn with_config_dir(name: &str, files: &[(&str, &str)]) -> PathBuf {
    let dir = temp_dir(name);
    std::fs::create_dir_all(dir.join("config")).expect("config dir");
    for (file, text) in files {
        std::fs::write(dir.join("config").join(file), text).expect("write");
    }
    dir
}

#[test]
fn the_only_json_in_config_is_discovered() {
    // Discovered and invalid: the relay refuses to start, so it was loaded.
    let dir = with_config_dir(
        "appcfg-discover",
        &[("app.json", r#"{"write_rules": [{"path": "no-slash"}]}"#)],
    );
    let stderr = failing_start(&dir, &[]);
    assert!(
        stderr.contains("write_rules[0]") && stderr.contains("app.json"),
        "{stderr}"
    );
}

#[tokio::test]
async fn a_discovered_file_applies_its_scope_templates() {
    let text = json!({"scopes": ["read:/**", "write:/app/user/{userId}/**"]}).to_string();
    let dir = with_config_dir("appcfg-discover-ok", &[("chat.json", &text)]);
    // Started by hand: the harness runs the relay in the test's directory, not in `dir`.
    let port = common::free_port();
    let db = dir.join("d.redb");
    let child = Command::new(env!("CARGO_BIN_EXE_clasp"))
        .current_dir(&dir)
        .args([
            "relay",
            "--host",
            "127.0.0.1",
            "--ws-port",
            &port.to_string(),
        ])
        .args([
            "--log-level",
            "warn",
            "--auth",
            "--auth-db",
            db.to_str().expect("utf-8"),
        ])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("starts");
    let guard = common::Relay { child, port };
    wait_listening(port);
    let url = format!("http://127.0.0.1:{port}/auth/register");
    let body = json!({"username": "alice", "password": "secret1", "user_id": "alice"});
    let token = answer(
        ureq::post(&url)
            .timeout(Duration::from_secs(10))
            .send_json(body),
    )
    .1["token"]
        .as_str()
        .expect("token")
        .to_string();
    let alice = connect(&guard.url(), &token).await.expect("alice");
    alice
        .set("/app/user/alice/x", 1.0)
        .await
        .expect("own subtree");
    assert_eq!(code_of(alice.set("/app/user/bob/x", 1.0).await), 301);
}

fn wait_listening(port: u16) {
    let deadline = std::time::Instant::now() + common::STARTUP;
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(std::time::Instant::now() < deadline, "relay not listening");
        std::thread::sleep(Duration::from_millis(20));
    }
}
