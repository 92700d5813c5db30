//! RouterLink: an in-process link and a WebSocket link to the same relay see each other's
//! writes and publishes.

mod common;

use std::time::Duration;

use clasp_actors::client::Client;
use clasp_actors::link::RouterLink;
use clasp_actors::RelayConfig;
use clasp_proto::{SignalType, Value};
use common::relay;

#[actix::test]
async fn local_and_remote_links_interoperate() {
    let (relay, port) = relay(RelayConfig::default());
    let local = RouterLink::local(relay.router(), "osc");
    let client = Client::builder(format!("ws://127.0.0.1:{port}"))
        .connect()
        .await
        .expect("connects");
    let remote = RouterLink::remote(client);
    let mut local_sub = local.subscribe("/link/**").await.expect("subscribes");
    let mut remote_sub = remote.subscribe("/link/**").await.expect("subscribes");
    tokio::time::sleep(Duration::from_millis(50)).await;

    assert_eq!(local.set("/link/a", 1.5).await.expect("local set"), 1);
    let u = tokio::time::timeout(Duration::from_secs(2), remote_sub.next())
        .await
        .expect("in time")
        .expect("update");
    assert_eq!(
        (u.address.as_str(), u.value, u.revision),
        ("/link/a", Value::Float(1.5), Some(1))
    );

    assert_eq!(remote.set("/link/b", "x").await.expect("remote set"), 1);
    let mut seen = Vec::new();
    while let Ok(Some(u)) = tokio::time::timeout(Duration::from_millis(500), local_sub.next()).await
    {
        seen.push((u.address.to_string(), u.value));
    }
    assert!(
        seen.contains(&("/link/b".into(), Value::from("x"))),
        "{seen:?}"
    );

    local
        .publish(SignalType::Event, "/link/ev", 7)
        .await
        .expect("publish");
    let u = loop {
        let u = tokio::time::timeout(Duration::from_secs(2), remote_sub.next())
            .await
            .expect("in time")
            .expect("update");
        if u.signal == SignalType::Event {
            break u;
        }
    };
    assert_eq!((u.address.as_str(), u.value), ("/link/ev", Value::Int(7)));
    // A refused local write is a typed error.
    let strict = RouterLink::local(relay.router(), "other");
    let lock = clasp_actors::client::SetOptions {
        lock: true,
        ..Default::default()
    };
    if let RouterLink::Remote(c) = &remote {
        c.set_with("/link/locked", 1, lock).await.expect("lock");
    }
    assert!(matches!(
        strict.set("/link/locked", 2).await,
        Err(clasp_actors::client::ClientError::Server { code: 401, .. })
    ));
}
