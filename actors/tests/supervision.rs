//! Supervision: a shard actor that stops is restarted by its supervisor with its state, and
//! the relay keeps serving clients through it.

use std::time::Duration;

use actix::System;
use clasp_actors::messages::{ShardGet, StopShard};
use clasp_actors::RelayConfig;
use clasp_proto::*;
use futures_util::StreamExt;
use tokio_tungstenite::tungstenite::Message as Ws;

mod common;
use common::*;

#[actix::test]
async fn a_stopped_shard_restarts_with_its_state_and_the_relay_keeps_serving() {
    let (relay, port) = relay(RelayConfig {
        shards: 1,
        ..RelayConfig::default()
    });
    let mut ws = connect(port).await;
    send(
        &mut ws,
        QoS::Confirm,
        &Message::Set(Set::new(addr("/sup/x"), 1.5)),
    )
    .await;
    assert!(matches!(
        recv(&mut ws).await,
        Message::Ack(Ack {
            revision: Some(1),
            ..
        })
    ));

    let shard = relay.router().shards()[0].clone();
    shard.send(StopShard).await.expect("delivered");
    // The supervisor restarts it; the same address keeps working.
    let param = shard
        .send(ShardGet {
            address: addr("/sup/x"),
        })
        .await
        .expect("restarted shard answers");
    assert_eq!(
        param.map(|p| (p.value, p.revision)),
        Some((Value::Float(1.5), 1))
    );
    let row = relay.router().actors.snapshot()["shard-0"].clone();
    assert_eq!(row.restarts, 1);
    assert_eq!(row.state, clasp_actors::health::ActorState::Running);

    // The same connection still works end to end, state intact.
    send(
        &mut ws,
        QoS::Confirm,
        &Message::Set(Set::new(addr("/sup/x"), 2.5)),
    )
    .await;
    assert!(matches!(
        recv(&mut ws).await,
        Message::Ack(Ack {
            revision: Some(2),
            ..
        })
    ));
    send(
        &mut ws,
        QoS::Fire,
        &Message::Get(Get {
            address: addr("/sup/x"),
        }),
    )
    .await;
    match recv(&mut ws).await {
        Message::Snapshot(s) => assert_eq!(s.params[0].value, Value::Float(2.5)),
        other => panic!("expected SNAPSHOT, got {other:?}"),
    }
    System::current().stop();
}

#[actix::test]
async fn drain_closes_sessions_and_refuses_new_ones() {
    let (mut relay, port) = relay(RelayConfig {
        shards: 2,
        ..RelayConfig::default()
    });
    let mut a = connect(port).await;
    let mut b = connect(port).await;
    let started = std::time::Instant::now();
    relay.drain().await;
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "drain waited {:?}",
        started.elapsed()
    );
    for ws in [&mut a, &mut b] {
        let end = tokio::time::timeout(Duration::from_secs(3), async {
            loop {
                match ws.next().await {
                    Some(Ok(Ws::Close(frame))) => return frame.map(|f| u16::from(f.code)),
                    Some(Ok(_)) => continue,
                    _ => return None,
                }
            }
        })
        .await
        .expect("closed within 3 s");
        assert_eq!(end, Some(1001), "closed as going away");
    }
    assert!(
        tokio_tungstenite::connect_async(format!("ws://127.0.0.1:{port}/"))
            .await
            .is_err()
    );
}
