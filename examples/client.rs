//! A tour of the Rust client: run a relay (`scripts/relay.sh`), then
//! `cargo run --example client -- ws://127.0.0.1:7330`.

use std::time::Duration;

use clasp::proto::{GesturePhase, SubscribeOptions, Ttl, TypeMask, Value};
use clasp::{BundleItem, Client, ClientError, SetOptions};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), ClientError> {
    let url = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "ws://127.0.0.1:7330".into());
    let client = Client::builder(url).name("example").connect().await?;
    println!(
        "session {} at server time {} µs",
        client.session(),
        client.time()
    );

    // Params: stored, revisioned, delivered to subscribers (the writer included).
    let mut faders = client.subscribe("/example/mixer/**").await?;
    let revision = client.set("/example/mixer/ch1/gain", 0.5).await?;
    println!("gain at revision {revision}");
    if let Some(update) = faders.next_within(Duration::from_secs(1)).await {
        println!("update: {} = {:?}", update.address, update.value);
    }

    // Options: expected revision, lock, TTL.
    let locked = SetOptions {
        revision: Some(revision),
        lock: true,
        ttl: Some(Ttl::Sliding(60)),
        ..SetOptions::default()
    };
    client
        .set_with("/example/mixer/ch1/gain", 0.6, locked)
        .await?;
    match client
        .set_with(
            "/example/mixer/ch1/gain",
            0.7,
            SetOptions {
                revision: Some(1),
                ..SetOptions::default()
            },
        )
        .await
    {
        Err(ClientError::Server { code, message, .. }) => {
            println!("refused as expected: {code} {message}")
        }
        other => println!("unexpected: {other:?}"),
    }

    // A rate-limited subscription and a callback listener.
    let _slow = client
        .subscribe_with(
            "/example/sensors/*",
            TypeMask::ALL,
            SubscribeOptions {
                max_rate: Some(10),
                ..SubscribeOptions::default()
            },
        )
        .await?;
    let _listener = client
        .on("/example/cues/*", |u| {
            println!("cue {}: {:?}", u.address, u.value)
        })
        .await?;

    // Events, streams, gestures, timelines.
    client.emit("/example/cues/go", "intro").await?;
    client.stream("/example/sensors/tilt", 12.5).await?;
    client
        .gesture(
            "/example/touch",
            1,
            GesturePhase::Start,
            Value::Map(vec![("x".into(), 0.1.into())]),
        )
        .await?;
    client
        .gesture("/example/touch", 1, GesturePhase::End, Value::Null)
        .await?;
    let keyframes = Value::Array(vec![Value::Map(vec![
        ("time".into(), 0.into()),
        ("value".into(), 0.0.into()),
    ])]);
    client.timeline("/example/fade", keyframes).await?;

    // All or nothing; then the same, run by the relay half a second from now.
    let items = vec![
        BundleItem::Set("/example/scene/a".into(), 1.into()),
        BundleItem::Emit("/example/cues/scene".into(), "a".into()),
    ];
    client.bundle(items.clone()).await?;
    client
        .bundle_at(items, Some(client.time() + 500_000))
        .await?;

    let param = client.get("/example/mixer/ch1/gain").await?;
    println!(
        "get: {:?} (revision {}, writer {:?})",
        param.value, param.revision, param.writer
    );
    let (rtt, offset) = client.sync().await?;
    println!("clock: round trip {rtt} µs, offset {offset} µs");
    println!("signals: {:?}", client.query("/example/**").await?);
    client.close().await;
    Ok(())
}
