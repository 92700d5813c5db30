//! An authenticated relay for the end-to-end tests: the real binary with `--auth`, its
//! database and admin token in a fresh directory, and helpers for its HTTP API and for
//! connecting the Rust client with a token.
#![allow(dead_code)]

use std::path::PathBuf;
use std::time::Duration;

use clasp::{Client, ClientError};
use clasp_proto::{decode_frame, encode_frame, FeatureSet, FrameHeader, Hello, Message, QoS};
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value as Json};
use tokio_tungstenite::tungstenite::Message as Ws;

use super::Relay;

/// A relay requiring tokens, with its database and admin token in a fresh directory.
pub struct AuthRelay {
    pub relay: Relay,
    pub dir: PathBuf,
    pub admin: String,
}

/// A fresh directory under the system temp dir.
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

/// Status and JSON body of an HTTP answer, error statuses included.
pub fn answer(result: Result<ureq::Response, ureq::Error>) -> (u16, Json) {
    match result {
        Ok(r) => (r.status(), r.into_json().unwrap_or(Json::Null)),
        Err(ureq::Error::Status(code, r)) => (code, r.into_json().unwrap_or(Json::Null)),
        Err(e) => panic!("HTTP request failed: {e}"),
    }
}

/// The Rust client with `token`, no reconnect.
pub async fn connect(url: &str, token: &str) -> Result<Client, ClientError> {
    Client::builder(url)
        .name("auth-test")
        .token(token)
        .reconnect(false)
        .timeout(Duration::from_secs(3))
        .connect()
        .await
}

/// The ERROR code a refused call or connection got.
pub fn code_of<T: std::fmt::Debug>(r: Result<T, ClientError>) -> u16 {
    match r {
        Err(ClientError::Server { code, .. }) | Err(ClientError::Refused { code, .. }) => code,
        other => panic!("expected an ERROR from the relay, got {other:?}"),
    }
}

/// A raw WebSocket to the relay.
pub type Raw =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// Raw HELLO with `token`; returns the socket and every frame up to the first SNAPSHOT (or
/// up to the close).
pub async fn raw_hello(port: u16, token: Option<&str>) -> (Raw, Vec<Message>, bool) {
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
    ws.send(Ws::Binary(frame)).await.expect("send");
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
