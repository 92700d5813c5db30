//! `GET /api/v1/sessions` lists the open sessions (name, transport, subscriptions, queue
//! depth, input counters) and, with auth on, only for the admin token.

use std::time::Duration;

use clasp_actors::{AuthConfig, RelayConfig};
use clasp_proto::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

mod common;
use common::*;

/// A plain HTTP/1.1 GET on loopback: (status, body).
async fn get(port: u16, path: &str, bearer: Option<&str>) -> (u16, String) {
    let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .expect("connects");
    let auth = bearer
        .map(|t| format!("Authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    let request =
        format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n{auth}Connection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.expect("writes");
    let mut raw = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut raw))
        .await
        .expect("answers in time")
        .expect("reads");
    let text = String::from_utf8_lossy(&raw).to_string();
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("a status line");
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    (status, body)
}

/// Connects with a client name of our choosing and consumes WELCOME and SNAPSHOT.
async fn connect_named(port: u16, name: &str) -> Client {
    let (mut ws, _) = tokio_tungstenite::connect_async(format!("ws://127.0.0.1:{port}/"))
        .await
        .expect("connects");
    let hello = Message::Hello(Hello {
        version: 1,
        features: FeatureSet::CLIENT_DEFAULT,
        name: name.into(),
        token: None,
    });
    send(&mut ws, QoS::Fire, &hello).await;
    assert!(matches!(recv(&mut ws).await, Message::Welcome(_)));
    assert!(matches!(recv(&mut ws).await, Message::Snapshot(_)));
    ws
}

fn sessions(body: &str) -> Vec<serde_json::Value> {
    let v: serde_json::Value = serde_json::from_str(body).expect("JSON body");
    v["sessions"].as_array().cloned().expect("a sessions list")
}

#[actix::test]
async fn lists_open_sessions_with_name_subscriptions_and_input() {
    let (_relay, port) = relay(RelayConfig::default());
    let (status, body) = get(port, "/api/v1/sessions", None).await;
    assert_eq!(status, 200, "{body}");
    assert!(sessions(&body).is_empty(), "{body}");

    let mut desk = connect_named(port, "lighting desk").await;
    subscribe(&mut desk, 1, "/stage/**", SubscribeOptions::default()).await;
    subscribe(&mut desk, 2, "/fx/**", SubscribeOptions::default()).await;
    send(
        &mut desk,
        QoS::Confirm,
        &Message::Set(Set::new(addr("/stage/dimmer"), 0.5)),
    )
    .await;
    let _ = drain(&mut desk, Duration::from_millis(200)).await;
    let other = connect_named(port, "fader wing").await;

    let (status, body) = get(port, "/api/v1/sessions", None).await;
    assert_eq!(status, 200, "{body}");
    let rows = sessions(&body);
    assert_eq!(rows.len(), 2, "{body}");
    let desk_row = rows
        .iter()
        .find(|r| r["name"] == "lighting desk")
        .expect("the desk is listed");
    assert_eq!(desk_row["transport"], "websocket");
    assert_eq!(desk_row["subscriptions"], 2);
    // HELLO, two SUBSCRIBEs and a SET.
    assert_eq!(desk_row["frames_in"], 4);
    assert!(desk_row["queue_depth"].is_u64());
    assert!(desk_row["id"].as_str().is_some_and(|id| !id.is_empty()));
    assert!(desk_row["scopes"].is_null(), "open relay: no scopes");
    assert!(rows.iter().any(|r| r["name"] == "fader wing"));

    // Unsubscribing and leaving show at once.
    send(
        &mut desk,
        QoS::Fire,
        &Message::Unsubscribe(Unsubscribe { id: 2 }),
    )
    .await;
    drop(other);
    let mut last = String::new();
    for _ in 0..50 {
        let (_, body) = get(port, "/api/v1/sessions", None).await;
        let rows = sessions(&body);
        if rows.len() == 1 && rows[0]["subscriptions"] == 1 {
            desk.close(None).await.ok();
            return;
        }
        last = body;
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("listing did not follow the unsubscribe and the disconnect: {last}");
}

#[actix::test]
async fn needs_the_admin_token_when_auth_is_on() {
    let dir = std::env::temp_dir().join(format!("clasp-sessions-api-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let token_file = dir.join("admin.token");
    let _ = std::fs::remove_file(&token_file);
    let (_relay, port) = relay(RelayConfig {
        auth: Some(AuthConfig {
            db: dir.join("auth.redb"),
            admin_token_file: Some(token_file.clone()),
            ..AuthConfig::default()
        }),
        ..RelayConfig::default()
    });
    let (status, _) = get(port, "/api/v1/sessions", None).await;
    assert_eq!(status, 401);
    let (status, _) = get(port, "/api/v1/sessions", Some("cpsk_not_a_token")).await;
    assert!(status == 401 || status == 403, "status {status}");
    let admin = std::fs::read_to_string(&token_file).expect("admin token written");
    let (status, body) = get(port, "/api/v1/sessions", Some(admin.trim())).await;
    assert_eq!(status, 200, "{body}");
    assert!(sessions(&body).is_empty());
    let _ = std::fs::remove_dir_all(&dir);
}
