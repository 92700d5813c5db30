//! The REST bridge end to end (FEATURES HTTP-*): the real `clasp` binary, HTTP over
//! 127.0.0.1 (ureq and raw sockets for SSE), CLASP peers (the Rust client and the official JS
//! client), the relay's auth, the standalone `clasp http` against a relay, and schemathesis
//! against the served OpenAPI document. Every wait is bounded.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use clasp::proto::{SignalType, Value};
use clasp::{Client, SetOptions};
use common::auth::AuthRelay;
use common::*;
use serde_json::{json, Value as Json};

const WAIT: Duration = Duration::from_secs(5);

/// Status, JSON body (or `Null`) and the named response header of one request.
fn call_with(
    method: &str,
    url: &str,
    body: Option<&str>,
    headers: &[(&str, &str)],
    want: &str,
) -> (u16, Json, Option<String>) {
    let mut req = ureq::request(method, url).timeout(Duration::from_secs(10));
    for (k, v) in headers {
        req = req.set(k, v);
    }
    let result = match body {
        Some(b) => req.send_string(b),
        None => req.call(),
    };
    let response = match result {
        Ok(r) => r,
        Err(ureq::Error::Status(_, r)) => r,
        Err(e) => panic!("{method} {url}: {e}"),
    };
    let status = response.status();
    let header = response.header(want).map(str::to_string);
    let text = response.into_string().unwrap_or_default();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Json::Null),
        header,
    )
}

fn call(method: &str, url: &str, body: Option<&str>) -> (u16, Json) {
    let (s, j, _) = call_with(method, url, body, &[], "");
    (s, j)
}

/// The same, off the async runtime (the client's tasks keep running meanwhile).
async fn rest(method: &'static str, url: String, body: Option<Json>) -> (u16, Json) {
    tokio::task::spawn_blocking(move || {
        let text = body.map(|b| b.to_string());
        call(method, &url, text.as_deref())
    })
    .await
    .expect("HTTP call")
}

fn api(port: u16) -> String {
    format!("http://127.0.0.1:{port}/api/v1")
}

async fn client(url: &str) -> Client {
    Client::builder(url)
        .name("http-test")
        .reconnect(false)
        .timeout(WAIT)
        .connect()
        .await
        .expect("client connects")
}

/// Reads raw bytes from `stream` until `done` holds for the text so far or `within` passes.
fn read_until(
    stream: &mut TcpStream,
    text: &mut String,
    within: Duration,
    done: impl Fn(&str) -> bool,
) {
    let deadline = Instant::now() + within;
    let mut buf = [0u8; 4096];
    while !done(text) && Instant::now() < deadline {
        stream
            .set_read_timeout(Some(Duration::from_millis(200)))
            .expect("read timeout");
        match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => text.push_str(&String::from_utf8_lossy(&buf[..n])),
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(e) => panic!("read: {e}"),
        }
    }
}

fn wait_listening(port: u16, child: &mut Child) {
    let deadline = Instant::now() + STARTUP;
    while TcpStream::connect_timeout(&([127, 0, 0, 1], port).into(), Duration::from_secs(1))
        .is_err()
    {
        if let Ok(Some(status)) = child.try_wait() {
            panic!("the bridge exited before listening: {status}");
        }
        assert!(
            Instant::now() < deadline,
            "nothing listens on {port} within {STARTUP:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A child process killed on drop.
struct Guard(Child);

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test]
async fn put_reaches_a_subscriber_and_clasp_writes_read_back() {
    let relay = Relay::start(&[]);
    let base = api(relay.port);
    let c = client(&relay.url()).await;
    let mut sub = c.subscribe("/lights/**").await.expect("subscribe");

    let (status, body) = rest(
        "PUT",
        format!("{base}/state/lights/brightness"),
        Some(json!({"value": 0.8})),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body,
        json!({"address": "/lights/brightness", "value": 0.8, "revision": 1})
    );
    let update = sub
        .next_within(WAIT)
        .await
        .expect("the subscriber sees the PUT");
    assert_eq!(update.address.as_str(), "/lights/brightness");
    assert_eq!(update.value, Value::Float(0.8));

    // A CLASP write, read back over HTTP with its revision and writer.
    c.set("/mix/vol", 3).await.expect("set");
    let revision = c.set("/mix/vol", 5).await.expect("set");
    let (status, body) = rest("GET", format!("{base}/state/mix/vol"), None).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["value"], json!(5));
    assert_eq!(body["revision"], json!(revision));
    assert_eq!(body["writer"], json!(c.session()));
    assert!(
        body["timestamp"].as_str().is_some_and(|t| t.ends_with('Z')),
        "{body}"
    );

    // FEATURES HTTP-2's paths (`/v1/...`) are the same API.
    let (status, body) = rest(
        "GET",
        format!("http://127.0.0.1:{}/v1/state/mix/vol", relay.port),
        None,
    )
    .await;
    assert_eq!((status, body["value"].clone()), (200, json!(5)));

    // The REST write is recorded under the bridge's link.
    let (_, body) = rest("GET", format!("{base}/state/lights/brightness"), None).await;
    assert_eq!(body["writer"], json!("link:http"));
}

#[tokio::test]
async fn json_types_map_to_clasp_values() {
    let relay = Relay::start(&[]);
    let base = api(relay.port);
    let c = client(&relay.url()).await;
    let cases = [
        ("int", json!(42), Value::Int(42)),
        ("neg", json!(-7), Value::Int(-7)),
        ("float", json!(0.5), Value::Float(0.5)),
        ("text", json!("hé"), Value::String("hé".into())),
        ("flag", json!(true), Value::Bool(true)),
        (
            "list",
            json!([1, "a"]),
            Value::Array(vec![Value::Int(1), Value::String("a".into())]),
        ),
        (
            "map",
            json!({"k": 1.5}),
            Value::Map(vec![("k".into(), Value::Float(1.5))]),
        ),
    ];
    for (name, j, v) in cases {
        let (status, body) = rest(
            "PUT",
            format!("{base}/state/t/{name}"),
            Some(json!({"value": j})),
        )
        .await;
        assert_eq!(status, 200, "{name}: {body}");
        let got = c.get(&format!("/t/{name}")).await.expect("get");
        assert_eq!(got.value, v, "{name}");
        let (_, body) = rest("GET", format!("{base}/state/t/{name}"), None).await;
        assert_eq!(body["value"], j, "{name} reads back");
    }
    // null deletes.
    let (status, _) = rest(
        "PUT",
        format!("{base}/state/t/int"),
        Some(json!({"value": null})),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(
        rest("GET", format!("{base}/state/t/int"), None).await.0,
        404
    );
    let again = rest(
        "PUT",
        format!("{base}/state/t/int"),
        Some(json!({"value": null})),
    )
    .await;
    assert_eq!(again.0, 404, "nothing left to delete");
}

#[tokio::test]
async fn emit_reaches_on_and_snapshot_filters_by_prefix() {
    let relay = Relay::start(&[]);
    let base = api(relay.port);
    let c = client(&relay.url()).await;
    let (tx, mut rx) = tokio::sync::mpsc::channel(8);
    let _listener = c
        .on("/cue/**", move |u| {
            let _ = tx.try_send(u);
        })
        .await
        .expect("on");
    c.set("/sync/a", 1)
        .await
        .expect("round trip after subscribe");
    let (status, body) = rest(
        "POST",
        format!("{base}/emit/cue/go"),
        Some(json!({"value": {"n": 1}})),
    )
    .await;
    assert_eq!(
        (status, body),
        (200, json!({"address": "/cue/go", "status": "emitted"}))
    );
    let u = tokio::time::timeout(WAIT, rx.recv())
        .await
        .expect("event in time")
        .expect("event");
    assert_eq!(u.signal, SignalType::Event);
    assert_eq!(u.value, Value::Map(vec![("n".into(), Value::Int(1))]));

    for (a, v) in [("a/x", 1), ("a/y", 2), ("ab/z", 3), ("b/z", 4)] {
        assert_eq!(
            rest(
                "PUT",
                format!("{base}/state/{a}"),
                Some(json!({"value": v}))
            )
            .await
            .0,
            200
        );
    }
    let (status, body) = rest("GET", format!("{base}/snapshot/a"), None).await;
    assert_eq!((status, body), (200, json!({"/a/x": 1, "/a/y": 2})));
    let (_, all) = rest("GET", format!("{base}/snapshot"), None).await;
    assert_eq!(all["/b/z"], json!(4));
    assert_eq!(all["/ab/z"], json!(3));
    assert_eq!(all["/sync/a"], json!(1));
}

#[test]
fn sse_sends_current_then_live_values() {
    let relay = Relay::start(&[]);
    let base = api(relay.port);
    assert_eq!(
        call("PUT", &format!("{base}/state/s/a"), Some(r#"{"value": 1}"#)).0,
        200
    );
    let mut stream = TcpStream::connect(("127.0.0.1", relay.port)).expect("connect");
    write!(
        stream,
        "GET /api/v1/subscribe/s/** HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\n\r\n"
    )
    .expect("request");
    let mut text = String::new();
    read_until(&mut stream, &mut text, WAIT, |t| {
        t.contains(r#""address":"/s/a""#)
    });
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    assert!(
        text.to_ascii_lowercase()
            .contains("content-type: text/event-stream"),
        "{text}"
    );
    assert!(
        text.contains("event: value\ndata: {") && text.contains(r#""value":1"#),
        "{text}"
    );

    assert_eq!(
        call(
            "PUT",
            &format!("{base}/state/s/b"),
            Some(r#"{"value": "live"}"#)
        )
        .0,
        200
    );
    assert_eq!(
        call(
            "POST",
            &format!("{base}/emit/s/cue"),
            Some(r#"{"value": 9}"#)
        )
        .0,
        200
    );
    read_until(&mut stream, &mut text, WAIT, |t| t.contains("event: event"));
    assert!(text.contains(r#""value":"live""#), "{text}");
    assert!(
        text.contains("event: event\ndata: {") && text.contains(r#""value":9"#),
        "{text}"
    );
    drop(stream);
    // The relay keeps serving after the client went.
    assert_eq!(call("GET", &format!("{base}/state/s/b"), None).0, 200);
}

#[tokio::test]
async fn refusals_have_their_status() {
    let relay = Relay::start(&[]);
    let base = api(relay.port);
    let c = client(&relay.url()).await;
    let url = |a: &str| format!("{base}/state/{a}");

    assert_eq!(rest("GET", url("none/here"), None).await.0, 404);
    assert_eq!(rest("DELETE", url("none/here"), None).await.0, 404);
    let bad = tokio::task::spawn_blocking({
        let u = url("x");
        move || call("PUT", &u, Some("{not json"))
    })
    .await
    .expect("call");
    assert_eq!(bad.0, 400);
    assert!(bad.1["error"].as_str().is_some(), "{}", bad.1);
    assert_eq!(rest("PUT", url("x"), Some(json!([1]))).await.0, 400);
    assert_eq!(
        rest("PUT", url("x"), Some(json!({"nothing": 1}))).await.0,
        400
    );
    assert_eq!(
        rest("PUT", url("a//b"), Some(json!({"value": 1}))).await.0,
        400
    );
    assert_eq!(
        rest("PUT", url("a/*"), Some(json!({"value": 1}))).await.0,
        400
    );

    // Optimistic concurrency.
    let (_, first) = rest("PUT", url("rev"), Some(json!({"value": 1}))).await;
    let r = first["revision"].as_u64().expect("revision");
    let (status, body) = rest("PUT", url("rev"), Some(json!({"value": 2, "revision": r}))).await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = rest("PUT", url("rev"), Some(json!({"value": 3, "revision": r}))).await;
    assert_eq!(status, 409, "{body}");
    assert_eq!(
        rest(
            "PUT",
            url("rev/new"),
            Some(json!({"value": 3, "revision": 4}))
        )
        .await
        .0,
        409
    );

    // A lock held by a CLASP client.
    let locked = SetOptions {
        lock: true,
        ..SetOptions::default()
    };
    c.set_with("/locked", 1, locked).await.expect("lock");
    let (status, body) = rest("PUT", url("locked"), Some(json!({"value": 2}))).await;
    assert_eq!(status, 423, "{body}");

    // Oversized: refused from the declared length, before the body is read.
    let mut stream = TcpStream::connect(("127.0.0.1", relay.port)).expect("connect");
    write!(
        stream,
        "PUT /api/v1/state/big HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        8 << 20
    )
    .expect("request");
    let mut text = String::new();
    read_until(&mut stream, &mut text, WAIT, |t| t.contains("\r\n\r\n"));
    assert!(text.starts_with("HTTP/1.1 413"), "{text}");

    // Chunked, so only reading tells: refused once past the limit.
    let big = std::env::temp_dir().join(format!("clasp-http-big-{}", std::process::id()));
    std::fs::write(&big, vec![b'1'; 1_100_000]).expect("write the body");
    let mut curl = Command::new("curl");
    curl.args(["-s", "-o", "/dev/null", "-w", "%{http_code}", "-X", "PUT"])
        .args([
            "-H",
            "Transfer-Encoding: chunked",
            "--max-time",
            "10",
            "--data-binary",
        ])
        .arg(format!("@{}", big.display()))
        .arg(url("big"));
    let out = tokio::task::spawn_blocking(move || run_with_timeout(curl, WAIT * 3, "curl"))
        .await
        .expect("curl");
    let _ = std::fs::remove_file(&big);
    assert_eq!(out.stdout, "413", "{}", out.stderr);

    // A TTL expires the param.
    let (status, _) = rest("PUT", url("brief"), Some(json!({"value": 1, "ttl": 1}))).await;
    assert_eq!(status, 200);
    let deadline = Instant::now() + WAIT;
    while rest("GET", url("brief"), None).await.0 != 404 {
        assert!(
            Instant::now() < deadline,
            "the TTL did not expire the param"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[test]
fn cors_preflight_is_answered() {
    let relay = Relay::start(&[]);
    let (status, _, allow) = call_with(
        "OPTIONS",
        &format!("{}/state/a", api(relay.port)),
        None,
        &[
            ("Origin", "http://x.example"),
            ("Access-Control-Request-Method", "PUT"),
        ],
        "access-control-allow-origin",
    );
    assert_eq!(status, 200);
    assert_eq!(allow.as_deref(), Some("http://x.example"));
}

#[tokio::test]
async fn auth_requires_a_token_and_applies_its_scopes() {
    let r = AuthRelay::start("http", &[]);
    let base = api(r.relay.port);
    let get = |token: Option<String>, path: &str| {
        let url = format!("{base}{path}");
        async move {
            tokio::task::spawn_blocking(move || {
                let auth = token.map(|t| format!("Bearer {t}"));
                let headers: Vec<(&str, &str)> =
                    auth.iter().map(|a| ("Authorization", a.as_str())).collect();
                let (s, j, _) = call_with("GET", &url, None, &headers, "");
                (s, j)
            })
            .await
            .expect("call")
        }
    };
    let put = |token: String, path: &str, value: Json| {
        let url = format!("{base}{path}");
        async move {
            tokio::task::spawn_blocking(move || {
                let auth = format!("Bearer {token}");
                let body = json!({ "value": value }).to_string();
                let (s, j, _) =
                    call_with("PUT", &url, Some(&body), &[("Authorization", &auth)], "");
                (s, j)
            })
            .await
            .expect("call")
        }
    };
    assert_eq!(get(None, "/state/pub/a").await.0, 401);
    assert_eq!(get(Some("not-a-token".into()), "/state/pub/a").await.0, 401);
    assert_eq!(get(None, "/snapshot").await.0, 401);

    let reader = r.guest(&["read:/pub/**"]);
    let writer = r.guest(&["write:/pub/**"]);
    let (status, body) = put(writer.clone(), "/state/pub/a", json!(1)).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(put(writer.clone(), "/state/priv/a", json!(1)).await.0, 403);
    assert_eq!(put(reader.clone(), "/state/pub/a", json!(2)).await.0, 403);
    let (status, body) = get(Some(reader.clone()), "/state/pub/a").await;
    assert_eq!(status, 200, "{body}");
    assert!(
        body["writer"]
            .as_str()
            .is_some_and(|w| w.starts_with("http:")),
        "{body}"
    );
    assert_eq!(get(Some(reader.clone()), "/state/priv/a").await.0, 403);

    // The snapshot shows only what the token may read.
    assert_eq!(put(r.admin.clone(), "/state/priv/b", json!(5)).await.0, 200);
    let (status, body) = get(Some(reader.clone()), "/snapshot").await;
    assert_eq!((status, body), (200, json!({"/pub/a": 1})));
    let (_, all) = get(Some(r.admin.clone()), "/snapshot").await;
    assert_eq!(all["/priv/b"], json!(5));

    // SSE: 401 without a token; with one, only readable addresses.
    assert_eq!(get(None, "/subscribe/**").await.0, 401);
    let port = r.relay.port;
    let text = tokio::task::spawn_blocking(move || {
        let mut stream = TcpStream::connect(("127.0.0.1", port)).expect("connect");
        write!(
            stream,
            "GET /api/v1/subscribe/** HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {reader}\r\n\r\n"
        )
        .expect("request");
        let mut text = String::new();
        read_until(&mut stream, &mut text, WAIT, |t| t.contains("/pub/a"));
        // Time for anything unreadable to arrive, were it sent.
        read_until(&mut stream, &mut text, Duration::from_millis(500), |_| {
            false
        });
        text
    })
    .await
    .expect("read");
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    assert!(text.contains(r#""address":"/pub/a""#), "{text}");
    assert!(!text.contains("/priv/"), "{text}");
}

fn standalone(target: &str, port: u16, extra: &[&str]) -> Guard {
    let mut child = Command::new(env!("CARGO_BIN_EXE_clasp"))
        .args(["http", "--target", target, "--bind"])
        .arg(format!("127.0.0.1:{port}"))
        .args(extra)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("clasp http starts");
    wait_listening(port, &mut child);
    Guard(child)
}

#[tokio::test]
async fn standalone_bridge_serves_a_remote_relay_and_reports_it_down() {
    let mut relay = Relay::start(&[]);
    let port = free_port();
    let _bridge = standalone(
        &relay.url(),
        port,
        &[
            "--access-token",
            "s3cret",
            "--sse-keepalive",
            "1",
            "--cors",
            "http://ok.example",
        ],
    );
    let base = api(port);
    let c = client(&relay.url()).await;
    let mut sub = c.subscribe("/remote/**").await.expect("subscribe");

    let put = |token: &'static str, value: i64| {
        let url = format!("{base}/state/remote/x");
        tokio::task::spawn_blocking(move || {
            let auth = format!("Bearer {token}");
            let body = json!({ "value": value }).to_string();
            let (s, j, _) = call_with("PUT", &url, Some(&body), &[("Authorization", &auth)], "");
            (s, j)
        })
    };
    // CORS: only the listed origin.
    let preflight = |origin: &'static str| {
        let url = format!("{base}/state/remote/x");
        tokio::task::spawn_blocking(move || {
            let headers = [("Origin", origin), ("Access-Control-Request-Method", "PUT")];
            let (_, _, allow) = call_with(
                "OPTIONS",
                &url,
                None,
                &headers,
                "access-control-allow-origin",
            );
            allow
        })
    };
    let allowed = preflight("http://ok.example").await.expect("call");
    assert_eq!(allowed.as_deref(), Some("http://ok.example"));
    assert_eq!(preflight("http://evil.example").await.expect("call"), None);

    assert_eq!(put("wrong", 1).await.expect("call").0, 401);
    let (status, body) = put("s3cret", 7).await.expect("call");
    assert_eq!(status, 200, "{body}");
    let u = sub
        .next_within(WAIT)
        .await
        .expect("the relay's subscriber sees it");
    assert_eq!(u.value, Value::Int(7));

    c.set("/remote/y", 2.5).await.expect("set");
    let get = |path: &'static str| {
        let url = format!("{base}{path}");
        tokio::task::spawn_blocking(move || {
            let (s, j, _) = call_with("GET", &url, None, &[("Authorization", "Bearer s3cret")], "");
            (s, j)
        })
    };
    let (status, body) = get("/state/remote/y").await.expect("call");
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        (body["value"].clone(), body["revision"].clone()),
        (json!(2.5), json!(1))
    );
    assert_eq!(get("/state/remote/none").await.expect("call").0, 404);
    let (_, snap) = get("/snapshot/remote").await.expect("call");
    assert_eq!(snap, json!({"/remote/x": 7, "/remote/y": 2.5}));

    // SSE through the bridge; the relay-side subscription goes when the HTTP client does.
    let health = format!("http://127.0.0.1:{}/health", relay.port);
    let subscriptions = || {
        let h = health.clone();
        tokio::task::spawn_blocking(move || call("GET", &h, None).1["subscriptions"].as_u64())
    };
    // The snapshot's subscription is being dropped: let that settle first.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let before = subscriptions().await.expect("call").expect("count");
    let mut stream = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    write!(
        stream,
        "GET /api/v1/subscribe/remote/*?access_token=s3cret HTTP/1.1\r\nHost: x\r\n\r\n"
    )
    .expect("request");
    let text = tokio::task::spawn_blocking(move || {
        let mut text = String::new();
        read_until(&mut stream, &mut text, WAIT, |t| {
            t.contains(r#""value":2.5"#)
        });
        (text, stream)
    });
    let (text, stream) = text.await.expect("read");
    assert!(text.contains(r#""address":"/remote/x""#), "{text}");
    assert_eq!(subscriptions().await.expect("call"), Some(before + 1));
    drop(stream);
    let deadline = Instant::now() + Duration::from_secs(10);
    while subscriptions().await.expect("call") != Some(before) {
        assert!(
            Instant::now() < deadline,
            "the SSE subscription outlived its client"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // The relay goes away: the bridge answers 502 (once its client noticed).
    drop(c);
    relay
        .terminate(Duration::from_secs(10))
        .expect("relay stops");
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let (status, _) = get("/state/remote/y").await.expect("call");
        if status == 502 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "still {status} with the relay down"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[test]
fn embedded_http_port_serves_the_same_api() {
    let port = free_port();
    let relay = Relay::start(&["--http-port", &port.to_string()]);
    let deadline = Instant::now() + STARTUP;
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            Instant::now() < deadline,
            "--http-port {port} never listened"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(
        call(
            "PUT",
            &format!("{}/state/e/a", api(port)),
            Some(r#"{"value": 1}"#)
        )
        .0,
        200
    );
    let (status, body) = call("GET", &format!("{}/state/e/a", api(relay.port)), None);
    assert_eq!((status, body["value"].clone()), (200, json!(1)));
}

#[test]
fn official_js_client_sees_rest_traffic() {
    require_js_client();
    let relay = Relay::start(&[]);
    let mut cmd = node();
    cmd.arg(conformance_dir().join("js").join("http_rest.mjs"))
        .arg(relay.url());
    run_ok(cmd, Duration::from_secs(60), "node js/http_rest.mjs");
}

#[test]
fn openapi_document_holds_under_schemathesis() {
    let relay = Relay::start(&[]);
    let schema = format!("{}/openapi.json", api(relay.port));
    let (status, doc) = call("GET", &schema, None);
    assert_eq!(status, 200);
    assert_eq!(doc["openapi"], json!("3.0.3"));
    // Schemathesis keeps a cache in its working directory: not in the source tree.
    let scratch = std::env::temp_dir().join(format!("clasp-http-st-{}", std::process::id()));
    std::fs::create_dir_all(&scratch).expect("scratch dir");
    let mut cmd = Command::new("st");
    cmd.current_dir(&scratch);
    cmd.args(["run", &schema])
        .args(["--max-examples", "20", "--checks", "all", "--workers", "1"])
        .args(["--request-timeout", "10", "--seed", "1"])
        // An endless stream: covered by `sse_sends_current_then_live_values`.
        .args(["--exclude-operation-id-regex", "^subscribe"])
        .env("SCHEMATHESIS_TELEMETRY", "false")
        .env("NO_COLOR", "1");
    run_ok(cmd, Duration::from_secs(300), "schemathesis");
}

/// FEATURES BR-6: a bridged write goes through the app config's write rules like a session's.
#[test]
fn app_config_write_rules_apply_to_rest_writes() {
    let dir = std::env::temp_dir().join(format!("clasp-http-app-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let app = dir.join("app.json");
    std::fs::write(
        &app,
        r#"{"write_rules": [{"path": "/show/level", "type": "number", "min": 0, "max": 1,
            "message": "level is a number from 0 to 1"}]}"#,
    )
    .expect("write app config");
    let relay = Relay::start(&["--app-config", app.to_str().expect("utf-8")]);
    let url = format!("{}/state/show/level", api(relay.port));
    let (code, body) = call("PUT", &url, Some(r#"{"value": 5}"#));
    assert_eq!(code, 400, "{body}");
    assert!(
        body.to_string().contains("level is a number from 0 to 1"),
        "{body}"
    );
    assert_eq!(
        call("GET", &url, None).0,
        404,
        "the refused write changed nothing"
    );
    let (code, body) = call("PUT", &url, Some(r#"{"value": 0.5}"#));
    assert_eq!(code, 200, "{body}");
    let _ = std::fs::remove_dir_all(&dir);
}
