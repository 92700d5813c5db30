//! The Rust client SDK against an in-process relay: every call, every value type, typed
//! errors, timeouts, and reconnection (relay stopped and started again on the same port).

mod common;

use std::time::{Duration, Instant};

use clasp_actors::client::{BundleItem, Client, ClientError, SetOptions};
use clasp_actors::RelayConfig;
use clasp_proto::{GesturePhase, SignalType, SubscribeOptions, Ttl, TypeMask, Value};
use common::relay;

fn url(port: u16) -> String {
    format!("ws://127.0.0.1:{port}")
}

async fn client(port: u16, name: &str) -> Client {
    Client::builder(url(port))
        .name(name)
        .timeout(Duration::from_secs(2))
        .connect()
        .await
        .expect("connects")
}

fn all_values() -> Vec<(&'static str, Value)> {
    vec![
        ("null", Value::Null),
        ("bool", Value::Bool(true)),
        ("int", Value::Int(-9_007_199_254_740_993)),
        ("float", Value::Float(-0.125)),
        ("string", Value::String("héllo ✓".into())),
        ("bytes", Value::Bytes(vec![0, 1, 254, 255])),
        (
            "array",
            Value::Array(vec![
                1.into(),
                "two".into(),
                Value::Null,
                Value::Array(vec![3.5.into()]),
            ]),
        ),
        (
            "map",
            Value::Map(vec![
                ("a".into(), 1.into()),
                ("b".into(), Value::Map(vec![("c".into(), "d".into())])),
            ]),
        ),
    ]
}

#[actix::test]
async fn set_get_subscribe_every_value_type() {
    let (_relay, port) = relay(RelayConfig::default());
    let writer = client(port, "writer").await;
    let reader = client(port, "reader").await;
    let mut sub = reader.subscribe("/rs/v/*").await.expect("subscribes");
    tokio::time::sleep(Duration::from_millis(50)).await;
    for (name, v) in all_values() {
        let address = format!("/rs/v/{name}");
        assert_eq!(writer.set(&address, v.clone()).await.expect("set acked"), 1);
        // GET answers are SNAPSHOTs, which (as in the JS client) also reach matching
        // subscriptions: skip the previous address's echo.
        let update = loop {
            let u = sub
                .next_within(Duration::from_secs(2))
                .await
                .expect("update");
            if u.address.as_str() == address {
                break u;
            }
        };
        assert_eq!((&update.value, update.revision), (&v, Some(1)));
        let param = reader.get(&address).await.expect("get");
        assert_eq!((param.value, param.revision), (v, 1));
        assert_eq!(param.writer.as_deref(), Some(writer.session().as_str()));
    }
    assert!(reader.time().abs_diff(clasp_actors::clock::now_micros()) < 1_000_000);
}

#[actix::test]
async fn events_streams_gestures_timelines_bundles() {
    let (_relay, port) = relay(RelayConfig::default());
    let a = client(port, "a").await;
    let b = client(port, "b").await;
    let mut own = a.subscribe("/rs/sig/**").await.expect("subscribes");
    let mut sub = b.subscribe("/rs/sig/**").await.expect("subscribes");
    tokio::time::sleep(Duration::from_millis(50)).await;
    a.emit("/rs/sig/cue", "go").await.expect("emit");
    for i in 0..20 {
        a.stream("/rs/sig/fader", f64::from(i) / 20.0)
            .await
            .expect("stream");
    }
    a.gesture("/rs/sig/touch", 3, GesturePhase::Start, 0)
        .await
        .expect("gesture");
    a.gesture("/rs/sig/touch", 3, GesturePhase::End, 1)
        .await
        .expect("gesture");
    let kf = Value::Array(vec![Value::Map(vec![
        ("time".into(), 0.into()),
        ("value".into(), 1.0.into()),
    ])]);
    a.timeline("/rs/sig/fade", kf.clone())
        .await
        .expect("timeline");
    let mut got = Vec::new();
    while let Some(u) = sub.next_within(Duration::from_millis(500)).await {
        got.push(u);
    }
    assert_eq!(got[0].signal, SignalType::Event);
    assert_eq!(got[0].value, Value::from("go"));
    let fader: Vec<Value> = got
        .iter()
        .filter(|u| u.signal == SignalType::Stream)
        .map(|u| u.value.clone())
        .collect();
    assert_eq!(
        fader,
        (0..20)
            .map(|i| Value::Float(f64::from(i) / 20.0))
            .collect::<Vec<_>>()
    );
    let phases: Vec<_> = got.iter().filter_map(|u| u.gesture).collect();
    assert_eq!(
        phases,
        vec![(GesturePhase::Start, 3), (GesturePhase::End, 3)]
    );
    assert!(got
        .iter()
        .any(|u| u.signal == SignalType::Timeline && u.value == kf));
    assert!(
        own.next_within(Duration::from_millis(200)).await.is_none(),
        "publishes are not echoed"
    );

    let rev = a
        .bundle(vec![
            BundleItem::Set("/rs/sig/x".into(), 1.into()),
            BundleItem::Emit("/rs/sig/ev".into(), 2.into()),
        ])
        .await
        .expect("bundle");
    assert_eq!(rev, Some(1));
    let at = a.time() + 300_000;
    let started = Instant::now();
    a.bundle_at(
        vec![BundleItem::Set("/rs/sig/later".into(), 1.into())],
        Some(at),
    )
    .await
    .expect("scheduled");
    assert!(
        started.elapsed() >= Duration::from_millis(250),
        "acknowledged when it ran"
    );
}

#[actix::test]
async fn typed_errors_timeouts_and_options() {
    let (_relay, port) = relay(RelayConfig::default());
    let a = client(port, "a").await;
    let b = client(port, "b").await;
    a.set_with(
        "/rs/lock",
        1,
        SetOptions {
            lock: true,
            ..SetOptions::default()
        },
    )
    .await
    .expect("lock");
    match b.set("/rs/lock", 2).await {
        Err(ClientError::Server {
            code: 401, address, ..
        }) => assert_eq!(address.as_deref(), Some("/rs/lock")),
        other => panic!("expected ERROR 401, got {other:?}"),
    }
    match a
        .set_with(
            "/rs/lock",
            3,
            SetOptions {
                revision: Some(9),
                ..SetOptions::default()
            },
        )
        .await
    {
        Err(ClientError::Server { code: 400, .. }) => {}
        other => panic!("expected ERROR 400, got {other:?}"),
    }
    a.set_with(
        "/rs/lock",
        4,
        SetOptions {
            revision: Some(1),
            unlock: true,
            ttl: Some(Ttl::Sliding(60)),
            ..SetOptions::default()
        },
    )
    .await
    .expect("holder writes with the right revision and unlocks");
    assert_eq!(b.set("/rs/lock", 5).await.expect("unlocked"), 3);

    let started = Instant::now();
    assert!(matches!(
        a.get("/rs/nothing").await,
        Err(ClientError::Timeout(_))
    ));
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "within the deadline"
    );
    assert!(matches!(
        a.set("no-slash", 1).await,
        Err(ClientError::Address(_))
    ));
    assert!(matches!(
        a.replay("/rs/**", None, None, None).await,
        Err(ClientError::Server { code: 501, .. })
    ));
    assert_eq!(a.query("/rs/**").await.expect("query"), vec![]);
    let (rtt, _offset) = a.sync().await.expect("sync");
    assert!(rtt < 1_000_000);
    assert!(a.ping().await.expect("ping") < 1_000_000);

    // Subscription options reach the relay: epsilon drops small changes.
    let mut sub = b
        .subscribe_with(
            "/rs/eps",
            TypeMask::ALL,
            SubscribeOptions {
                epsilon: Some(0.1),
                ..SubscribeOptions::default()
            },
        )
        .await
        .expect("subscribes");
    tokio::time::sleep(Duration::from_millis(50)).await;
    for v in [1.0, 1.05, 1.5] {
        a.set("/rs/eps", v).await.expect("set");
    }
    let mut got = Vec::new();
    while let Some(u) = sub.next_within(Duration::from_millis(300)).await {
        got.push(u.value);
    }
    assert_eq!(got, vec![Value::Float(1.0), Value::Float(1.5)]);
}

#[actix::test]
async fn reconnects_resubscribes_and_retakes_locks() {
    let (mut first, port) = relay(RelayConfig::default());
    let a = Client::builder(url(port))
        .name("a")
        .timeout(Duration::from_secs(5))
        .connect()
        .await
        .expect("connects");
    let mut sub = a.subscribe("/rs/rc/**").await.expect("subscribes");
    let lock = SetOptions {
        lock: true,
        ..SetOptions::default()
    };
    a.set_with("/rs/rc/lock", 1, lock).await.expect("lock");
    assert!(sub.next_within(Duration::from_secs(1)).await.is_some());
    let old_session = a.session();
    first.drain().await;
    drop(first);
    // Written while the relay is down: kept in the offline queue, sent after reconnecting.
    let offline = {
        let a = a.clone();
        tokio::spawn(async move { a.set("/rs/rc/offline", 42).await })
    };
    // Same port, fresh (empty) relay.
    let second = clasp_actors::Relay::start(RelayConfig {
        host: "127.0.0.1".into(),
        port,
        ..RelayConfig::default()
    })
    .expect("restarts on the same port");
    let deadline = Instant::now() + Duration::from_secs(10);
    while !a.connected() || a.session() == old_session {
        assert!(Instant::now() < deadline, "no reconnect within 10 s");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        offline
            .await
            .expect("joins")
            .expect("queued SET acknowledged after reconnect"),
        1
    );
    // The lock was re-taken (its SET echoes to our re-made subscription), then B is refused.
    let mut echoed = Vec::new();
    while let Some(u) = sub.next_within(Duration::from_millis(500)).await {
        echoed.push(u.address.to_string());
    }
    assert!(
        echoed.contains(&"/rs/rc/lock".to_string()),
        "re-lock echoed: {echoed:?}"
    );
    let b = client(port, "b").await;
    assert_eq!(
        b.get("/rs/rc/offline").await.expect("stored").value,
        Value::Int(42)
    );
    assert!(matches!(
        b.set("/rs/rc/lock", 2).await,
        Err(ClientError::Server { code: 401, .. })
    ));
    b.set("/rs/rc/next", 7).await.expect("set");
    let update = sub
        .next_within(Duration::from_secs(2))
        .await
        .expect("the next update after reconnect");
    assert_eq!(
        (update.address.as_str(), update.value),
        ("/rs/rc/next", Value::Int(7))
    );
    drop(second);
}

#[actix::test]
async fn on_calls_back_until_dropped() {
    let (_relay, port) = relay(RelayConfig::default());
    let a = client(port, "a").await;
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let listener = a
        .on("/rs/on/*", move |u| drop(tx.send(u.value)))
        .await
        .expect("on");
    tokio::time::sleep(Duration::from_millis(50)).await;
    a.set("/rs/on/x", 1).await.expect("set");
    let first = tokio::time::timeout(Duration::from_secs(2), rx.recv())
        .await
        .expect("in time");
    assert_eq!(first, Some(Value::Int(1)));
    drop(listener);
    tokio::time::sleep(Duration::from_millis(50)).await;
    a.set("/rs/on/x", 2).await.expect("set");
    let after = tokio::time::timeout(Duration::from_millis(300), rx.recv()).await;
    assert!(
        after.map_or(true, |v| v.is_none()),
        "no callback after drop"
    );
}
