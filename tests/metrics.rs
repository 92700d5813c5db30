//! `/metrics` and `/ready` (issue 10): the page parses with Prometheus's own Python parser,
//! its counters move when traffic flows, and `/ready` answers 503 naming what it waits for
//! until every component is up.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use clasp_actors::client::Client;

mod common;
use common::*;

type Samples = HashMap<String, f64>;

fn scrape(port: u16) -> Samples {
    scrape_metrics(port)
}

fn get(s: &Samples, key: &str) -> f64 {
    *s.get(key).unwrap_or_else(|| panic!("no sample {key}"))
}

#[actix::test]
async fn counters_move_with_traffic() {
    let dir = std::env::temp_dir().join(format!("clasp-metrics-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let journal = dir.join("journal.redb");
    let relay = Relay::start(&["--journal", journal.to_str().expect("utf-8")]);
    let before = scrape(relay.port);
    assert_eq!(get(&before, "clasp_sessions{}"), 0.0);
    assert_eq!(get(&before, "clasp_messages_received_total{type=SET}"), 0.0);

    let writer = Client::builder(relay.url())
        .connect()
        .await
        .expect("writer");
    let reader = Client::builder(relay.url())
        .connect()
        .await
        .expect("reader");
    let mut sub = reader
        .subscribe("/metrics/test/*")
        .await
        .expect("subscribe");
    for i in 0..20 {
        writer.set("/metrics/test/x", i as f64).await.expect("set");
    }
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut seen = 0;
    while seen < 20 && Instant::now() < deadline {
        if sub.next_within(Duration::from_millis(500)).await.is_some() {
            seen += 1;
        }
    }
    assert!(seen > 0, "the subscriber got updates");

    let after = scrape(relay.port);
    assert_eq!(get(&after, "clasp_sessions{}"), 2.0);
    assert_eq!(get(&after, "clasp_params{}"), 1.0);
    assert_eq!(get(&after, "clasp_subscriptions{}"), 1.0);
    assert!(get(&after, "clasp_messages_received_total{type=SET}") >= 20.0);
    assert!(get(&after, "clasp_messages_received_total{type=HELLO}") >= 0.0);
    assert!(get(&after, "clasp_messages_sent_total{type=SET}") >= 1.0);
    assert!(get(&after, "clasp_messages_sent_total{type=WELCOME}") >= 2.0);
    assert!(
        get(&after, "clasp_bytes_received_total{}") > get(&before, "clasp_bytes_received_total{}")
    );
    assert!(get(&after, "clasp_bytes_sent_total{}") > get(&before, "clasp_bytes_sent_total{}"));
    assert!(get(&after, "clasp_delivery_latency_seconds_count{}") >= 1.0);
    assert!(get(&after, "clasp_delivery_latency_seconds_bucket{le=+Inf}") >= 1.0);
    assert!(get(&after, "clasp_journal_committed_seq{}") >= 20.0);
    assert!(get(&after, "clasp_journal_lag_entries{}") >= 0.0);
    assert_eq!(get(&after, "clasp_actor_up{actor=shard-0}"), 1.0);
    assert_eq!(get(&after, "clasp_actor_up{actor=journal}"), 1.0);
    assert_eq!(get(&after, "clasp_dropped_total{reason=conflated}"), 0.0);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn ready_waits_for_a_bridge_that_cannot_bind_yet() {
    // Hold the OSC port, so the embedded OSC bridge fails to bind and is restarted.
    let osc = free_port();
    let holder = std::net::UdpSocket::bind(("127.0.0.1", osc)).expect("hold the UDP port");
    let relay = Relay::start(&["--osc-port", &osc.to_string()]);
    let ready = |port: u16| -> (u16, serde_json::Value) {
        match ureq::get(&format!("http://127.0.0.1:{port}/ready"))
            .timeout(Duration::from_secs(5))
            .call()
        {
            Ok(r) => (r.status(), r.into_json().expect("JSON")),
            Err(ureq::Error::Status(code, r)) => (code, r.into_json().expect("JSON")),
            Err(e) => panic!("GET /ready: {e}"),
        }
    };
    let (code, body) = ready(relay.port);
    assert_eq!(code, 503, "{body}");
    assert!(
        body["waiting"].to_string().contains("bridge osc:/osc"),
        "{body}"
    );

    drop(holder);
    // The supervisor retries after 1 s, 2 s, 4 s ...: ready within the next attempts.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (code, body) = ready(relay.port);
        if code == 200 {
            assert_eq!(body["ready"], true);
            break;
        }
        assert!(Instant::now() < deadline, "never ready: {body}");
        std::thread::sleep(Duration::from_millis(200));
    }
    let samples = scrape(relay.port);
    assert!(
        get(
            &samples,
            "clasp_bridge_restarts_total{bridge=osc:/osc,kind=osc}"
        ) >= 1.0
    );
    assert_eq!(
        get(&samples, "clasp_bridge_up{bridge=osc:/osc,kind=osc}"),
        1.0
    );
}

#[test]
fn a_client_bridge_to_a_missing_broker_does_not_hold_readiness() {
    let nothing = free_port();
    let relay = Relay::start(&["--mqtt-broker", &format!("mqtt://127.0.0.1:{nothing}")]);
    let r = ureq::get(&format!("http://127.0.0.1:{}/ready", relay.port))
        .timeout(Duration::from_secs(5))
        .call()
        .expect("ready answers 200");
    assert_eq!(r.status(), 200);
    let samples = scrape(relay.port);
    assert_eq!(
        get(
            &samples,
            "clasp_bridge_up{bridge=mqtt-client:/mqtt,kind=mqtt-client}"
        ),
        0.0
    );
}
