//! Attacks on an authenticated relay, each of which must fail: reading through a wildcard
//! without scope, escalating a delegated capability, reusing a revoked token, brute-forcing a
//! login past its limit, registering an admin without the admin token, and garbage tokens.

mod common;

use std::time::Duration;

use clasp_actors::auth::keys::{public_key_hex, SigningKey};
use clasp_actors::auth::{CapToken, Scopes};
use clasp_proto::Value;
use common::auth::*;
use serde_json::json;

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs()
}

#[tokio::test]
async fn no_wildcard_reads_a_value_outside_the_read_scope() {
    let r = AuthRelay::start("sec-wildcard", &[]);
    let admin = connect(&r.relay.url(), &r.admin).await.expect("admin");
    admin.set("/secret/key", "hunter2").await.expect("set");
    admin.set("/pub/x", 1.0).await.expect("set");
    let spy = connect(&r.relay.url(), &r.guest(&["read:/pub/**"]))
        .await
        .expect("spy");
    // Every wildcard that could reach /secret/key is refused, and nothing leaks through.
    let mut subs = Vec::new();
    for pattern in ["/**", "/*/key", "/s*/**", "/secret/*", "/**/key"] {
        subs.push((pattern, spy.subscribe(pattern).await.expect("sent")));
    }
    admin.set("/secret/key", "hunter3").await.expect("set");
    for (pattern, sub) in &mut subs {
        while let Some(u) = sub.next_within(Duration::from_millis(300)).await {
            assert!(
                !u.address.as_str().starts_with("/secret"),
                "{pattern} leaked {u:?}"
            );
        }
    }
    assert!(
        spy.query("/**")
            .await
            .expect("query")
            .iter()
            .all(|s| !s.address.starts_with("/secret")),
        "QUERY leaked /secret"
    );
    assert_eq!(code_of(spy.get("/secret/key").await), 301);
    // The allowed part still works.
    assert_eq!(
        spy.get("/pub/x").await.expect("get").value,
        Value::Float(1.0)
    );
}

#[tokio::test]
async fn a_delegated_capability_cannot_be_escalated() {
    let root = SigningKey::from_bytes(&[1; 32]);
    let r = AuthRelay::start(
        "sec-escalate",
        &["--trust-anchor", &public_key_hex(&root.verifying_key())],
    );
    let parent = CapToken::create(
        &root,
        &Scopes::parse_list("write:/lights/**").expect("scopes"),
        now() + 3600,
        None,
    );
    let attacker = SigningKey::from_bytes(&[66; 32]);
    // delegate() refuses to widen.
    let wide = Scopes::parse_list("admin:/**").expect("scopes");
    assert!(CapToken::delegate(&parent, &attacker, &wide, now() + 3600, None).is_err());
    // Widening by hand: scopes, expiry, and a proof rewritten to claim more.
    let narrow = Scopes::parse_list("write:/lights/a").expect("scopes");
    let child = CapToken::delegate(&parent, &attacker, &narrow, now() + 600, None).expect("narrow");
    let mut widened = child.clone();
    widened.scopes = vec!["write:/**".into()];
    widened.sign(&attacker);
    let mut longer = child.clone();
    longer.expires_at = now() + 86_400 * 365;
    longer.sign(&attacker);
    let mut rewritten_proof = child.clone();
    rewritten_proof.proofs[0].scopes = vec!["admin:/**".into()];
    rewritten_proof.scopes = vec!["admin:/**".into()];
    rewritten_proof.sign(&attacker);
    let mut self_rooted = CapToken::create(&attacker, &wide, now() + 3600, None);
    self_rooted.proofs = child.proofs.clone();
    self_rooted.sign(&attacker);
    for (token, what) in [
        (widened, "widened scopes"),
        (longer, "expiry past the parent's"),
        (rewritten_proof, "a proof link rewritten to admin"),
        (
            self_rooted,
            "the attacker's own root behind a borrowed proof",
        ),
    ] {
        assert_eq!(
            code_of(connect(&r.relay.url(), &token.encode()).await),
            300,
            "{what}"
        );
    }
    connect(&r.relay.url(), &child.encode())
        .await
        .expect("the honest child still connects");
}

#[tokio::test]
async fn a_revoked_token_cannot_be_reused() {
    let r = AuthRelay::start("sec-revoked", &[]);
    let (status, body) = r.post(
        "/auth/register",
        json!({"username": "mallory", "password": "secret1"}),
        None,
    );
    assert_eq!(status, 200, "{body}");
    let token = body["token"].as_str().expect("token").to_string();
    assert_eq!(
        r.post("/auth/revoke", json!({ "token": token }), None).0,
        200
    );
    for _ in 0..3 {
        assert_eq!(code_of(connect(&r.relay.url(), &token).await), 300);
    }
    let (status, _) = r.post(
        "/auth/register",
        json!({"username": "x2", "password": "secret1", "scopes": ["admin:/**"]}),
        Some(&token),
    );
    assert_eq!(status, 401, "nor as a bearer");
}

#[test]
fn login_cannot_be_brute_forced_past_the_limit() {
    let r = AuthRelay::start("sec-brute", &[]);
    assert_eq!(
        r.post(
            "/auth/register",
            json!({"username": "victim", "password": "correct-horse"}),
            None
        )
        .0,
        200
    );
    let mut refused_at = None;
    for (i, guess) in [
        "123456",
        "password",
        "qwerty",
        "letmein",
        "dragon",
        "monkey",
        "correct-horse",
    ]
    .iter()
    .enumerate()
    {
        let (status, _) = r.post(
            "/auth/login",
            json!({"username": "victim", "password": guess}),
            None,
        );
        if status == 429 {
            refused_at.get_or_insert(i);
        } else {
            assert_eq!(status, 401, "guess {i} is wrong");
        }
    }
    assert_eq!(
        refused_at,
        Some(5),
        "the 6th attempt (after 5 failures) is refused"
    );
    // The right password, after the limit, is refused too: the limit holds for the window.
    let (status, _) = r.post(
        "/auth/login",
        json!({"username": "victim", "password": "correct-horse"}),
        None,
    );
    assert_eq!(status, 429);
}

#[test]
fn an_admin_cannot_be_registered_without_the_admin_token() {
    let r = AuthRelay::start("sec-admin", &["--register-max-attempts", "100"]);
    let user = r.guest(&["read:/**", "write:/**"]);
    for (bearer, code) in [
        (None, 403),
        (Some("cpsk_forged"), 401),
        (Some(user.as_str()), 403),
    ] {
        for scopes in [
            json!(["admin:/**"]),
            json!(["a:/**"]),
            json!(["*:/x"]),
            json!(["write:/**", "admin:/a"]),
        ] {
            let body = json!({"username": format!("evil{}", code), "password": "secret1", "scopes": scopes});
            let (status, answer) = r.post("/auth/register", body, bearer);
            assert_eq!(status, code, "{scopes} with bearer {bearer:?}: {answer}");
        }
    }
    let (status, answer) = r.post("/auth/guest", json!({"scopes": ["admin:/**"]}), None);
    assert_eq!(status, 403, "guests cannot ask for admin either: {answer}");
}

#[tokio::test]
async fn garbage_tokens_are_refused_without_harm() {
    let r = AuthRelay::start("sec-garbage", &[]);
    let long = format!("cap_{}", "A".repeat(60_000));
    for token in [
        "cap_",
        "ent_",
        "cap_!!!!",
        "ent_\u{0}\u{1}",
        "cpsk_",
        long.as_str(),
        "\u{202e}cpsk_x",
    ] {
        assert_eq!(
            code_of(connect(&r.relay.url(), token).await),
            300,
            "{token:.20}"
        );
    }
    connect(&r.relay.url(), &r.admin)
        .await
        .expect("the relay is unharmed");
}
