//! The rules engine (FEATURES RU-1..RU-11) against an in-process relay: every trigger,
//! condition and action, transforms end to end, cooldown, delay timing, rule chains, loop
//! halting, reload and the HTTP API. Clients are the Rust SDK over real WebSockets.

mod common;

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use clasp_actors::client::{Client, Subscription};
use clasp_actors::{Relay, RelayConfig, RelayError};
use clasp_proto::{SignalType, Value};
use serde_json::{json, Value as Json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Longest any single expected update may take.
const WAIT: Duration = Duration::from_secs(3);

fn temp_dir() -> PathBuf {
    static N: AtomicUsize = AtomicUsize::new(0);
    let dir = std::env::temp_dir().join(format!(
        "clasp-rules-test-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

struct Fixture {
    _relay: Relay,
    port: u16,
    file: PathBuf,
    client: Client,
}

fn write_rules(file: &PathBuf, rules: &Json) {
    std::fs::write(file, serde_json::to_vec_pretty(rules).expect("json")).expect("writes");
}

async fn start_with(rules: Json, max_chain: usize) -> Fixture {
    let file = temp_dir().join("rules.json");
    write_rules(&file, &rules);
    let (relay, port) = common::relay(RelayConfig {
        rules: Some(file.clone()),
        rules_max_chain: max_chain,
        ..RelayConfig::default()
    });
    let client = Client::builder(format!("ws://127.0.0.1:{port}"))
        .connect()
        .await
        .expect("connects");
    // The engine subscribes as it starts; give it a moment before the first trigger.
    wait_until(|| async { http(port, "GET", "/api/v1/rules", None).await.0 == 200 }).await;
    tokio::time::sleep(Duration::from_millis(50)).await;
    Fixture {
        _relay: relay,
        port,
        file,
        client,
    }
}

async fn start(rules: Json) -> Fixture {
    start_with(rules, 8).await
}

/// Polls `check` every 20 ms for up to 3 s.
async fn wait_until<F, Fut>(mut check: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + WAIT;
    while Instant::now() < deadline {
        if check().await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    false
}

/// The next value at `address` on `sub`, skipping others, within `within`.
async fn next_at(sub: &mut Subscription, address: &str, within: Duration) -> Option<Value> {
    let deadline = Instant::now() + within;
    loop {
        let left = deadline.checked_duration_since(Instant::now())?;
        let u = sub.next_within(left).await?;
        if u.address.as_str() == address {
            return Some(u.value);
        }
    }
}

/// A minimal HTTP/1.1 request; the status and the JSON body.
async fn http(port: u16, method: &str, path: &str, token: Option<&str>) -> (u16, Json) {
    let Ok(mut s) = tokio::net::TcpStream::connect(("127.0.0.1", port)).await else {
        return (0, Json::Null);
    };
    let auth = token.map_or(String::new(), |t| format!("Authorization: Bearer {t}\r\n"));
    let req = format!(
        "{method} {path} HTTP/1.1\r\nHost: localhost\r\n{auth}Content-Length: 0\r\nConnection: close\r\n\r\n"
    );
    if s.write_all(req.as_bytes()).await.is_err() {
        return (0, Json::Null);
    }
    let mut buf = Vec::new();
    let _ = tokio::time::timeout(WAIT, s.read_to_end(&mut buf)).await;
    let text = String::from_utf8_lossy(&buf);
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = text
        .split_once("\r\n\r\n")
        .and_then(|(_, b)| serde_json::from_str(b).ok())
        .unwrap_or(Json::Null);
    (status, body)
}

async fn rule_view(port: u16, id: &str) -> Json {
    let (_, body) = http(port, "GET", "/api/v1/rules", None).await;
    body["rules"]
        .as_array()
        .and_then(|r| r.iter().find(|r| r["id"] == id).cloned())
        .unwrap_or(Json::Null)
}

async fn fire_count(port: u16, id: &str) -> u64 {
    rule_view(port, id).await["fire_count"]
        .as_u64()
        .unwrap_or(0)
}

fn set(address: &str, value: Json) -> Json {
    json!({"type": "set", "address": address, "value": value})
}

fn on_change(id: &str, pattern: &str, actions: Json) -> Json {
    json!({"id": id, "trigger": {"type": "on_change", "pattern": pattern}, "actions": actions})
}

#[actix::test]
async fn on_change_set_from_trigger_scales_the_value() {
    // RU-3: /lights/main/intensity → /lights/secondary/intensity scaled 0.5.
    let f = start(json!({"rules": [{
        "id": "follow", "name": "secondary follows main",
        "trigger": {"type": "on_change", "pattern": "/lights/main/intensity"},
        "actions": [{"type": "set_from_trigger", "address": "/lights/secondary/intensity",
                     "transform": {"type": "scale", "factor": 0.5}}]
    }]}))
    .await;
    let mut sub = f
        .client
        .subscribe("/lights/secondary/**")
        .await
        .expect("sub");
    f.client
        .set("/lights/main/intensity", 0.8)
        .await
        .expect("set");
    assert_eq!(
        next_at(&mut sub, "/lights/secondary/intensity", WAIT).await,
        Some(Value::Float(0.4))
    );
    let param = f
        .client
        .get("/lights/secondary/intensity")
        .await
        .expect("get");
    assert_eq!(param.writer.as_deref(), Some("rule:follow"), "writer id");
    let view = rule_view(f.port, "follow").await;
    assert_eq!(view["fire_count"], 1);
    assert_eq!(view["name"], "secondary follows main");
    assert_eq!(view["enabled"], true);
    assert_eq!(view["trigger"]["type"], "on_change");
    assert!(view["last_fired"]
        .as_u64()
        .is_some_and(|ms| ms > 1_600_000_000_000));
    assert_eq!(view["last_error"], Json::Null);
}

#[actix::test]
async fn on_threshold_fires_once_per_crossing() {
    // RU-4: 25, 31, 32, 24, 31 with above 30 → exactly 2 firings; hysteresis 3 on a second
    // rule: 31, 28 (not re-armed), 31, 26 (re-armed), 31 → 2 firings.
    let f = start(json!([
        {"id": "hot", "trigger": {"type": "on_threshold", "address": "/temp", "above": 30},
         "actions": [set("/alarm", json!(true))]},
        {"id": "hyst", "trigger": {"type": "on_threshold", "address": "/temp2", "above": 30, "hysteresis": 3},
         "actions": [set("/alarm2", json!(true))]},
        {"id": "cold", "trigger": {"type": "on_threshold", "address": "/temp3", "below": 0},
         "actions": [set("/frost", json!(true))]}
    ]))
    .await;
    for v in [25, 31, 32, 24, 31] {
        f.client.set("/temp", v).await.expect("set");
    }
    for v in [31.0, 28.0, 31.0, 26.0, 31.0] {
        f.client.set("/temp2", v).await.expect("set");
    }
    for v in [
        Value::from(5),
        "x".into(),
        Value::from(-1.5),
        Value::from(-3),
    ] {
        f.client.set("/temp3", v).await.expect("set");
    }
    assert!(wait_until(|| async { fire_count(f.port, "hot").await == 2 }).await);
    assert!(wait_until(|| async { fire_count(f.port, "hyst").await == 2 }).await);
    assert!(wait_until(|| async { fire_count(f.port, "cold").await == 1 }).await);
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(fire_count(f.port, "hot").await, 2);
    assert_eq!(fire_count(f.port, "hyst").await, 2);
    assert_eq!(fire_count(f.port, "cold").await, 1, "non-numbers ignored");
}

#[actix::test]
async fn on_event_fires_on_matching_publishes_only() {
    // RU-5.
    let f = start(json!([{
        "id": "alerts", "trigger": {"type": "on_event", "pattern": "/alerts/*"},
        "actions": [{"type": "set_from_trigger", "address": "/alerts/last"}]
    }]))
    .await;
    let mut sub = f.client.subscribe("/alerts/last").await.expect("sub");
    // A param at a matching address is not an event.
    f.client.set("/alerts/param", "no").await.expect("set");
    f.client.emit("/alerts/x", "fire").await.expect("emit");
    assert_eq!(
        next_at(&mut sub, "/alerts/last", WAIT).await,
        Some("fire".into())
    );
    assert_eq!(fire_count(f.port, "alerts").await, 1);
}

#[actix::test]
async fn on_interval_publishes_a_heartbeat() {
    // RU-6 (at 0.3 s rather than 1 s to keep the test short).
    let f = start(json!([{
        "id": "hb", "trigger": {"type": "on_interval", "seconds": 0.3},
        "actions": [{"type": "publish", "address": "/hb", "value": 1}]
    }]))
    .await;
    let mut sub = f.client.subscribe("/hb").await.expect("sub");
    let started = Instant::now();
    let mut seen = 0;
    while seen < 2 && started.elapsed() < Duration::from_millis(1500) {
        if let Some(u) = sub.next_within(Duration::from_millis(1500)).await {
            assert_eq!(u.signal, SignalType::Event);
            seen += 1;
        }
    }
    assert!(seen >= 2, "{seen} heartbeats in {:?}", started.elapsed());
}

#[actix::test]
async fn conditions_gate_on_current_state() {
    // RU-7.
    let f = start(json!([
        {"id": "live-only", "trigger": {"type": "on_change", "pattern": "/go"},
         "conditions": [{"address": "/system/mode", "op": "eq", "value": "live"}],
         "actions": [{"type": "set_from_trigger", "address": "/went"}]},
        {"id": "numeric", "trigger": {"type": "on_change", "pattern": "/go"},
         "conditions": [{"address": "/level", "op": "gt", "value": 1},
                        {"address": "/level", "op": "lte", "value": 2.5}],
         "actions": [{"type": "set_from_trigger", "address": "/level-ok"}]},
        {"id": "unset", "trigger": {"type": "on_change", "pattern": "/go"},
         "conditions": [{"address": "/never/set", "op": "eq", "value": null}],
         "actions": [{"type": "set_from_trigger", "address": "/was-unset"}]},
        {"id": "missing", "trigger": {"type": "on_change", "pattern": "/go"},
         "conditions": [{"address": "/never/set", "op": "ne", "value": 1}],
         "actions": [{"type": "set_from_trigger", "address": "/missing-fired"}]}
    ]))
    .await;
    let mut sub = f.client.subscribe("/**").await.expect("sub");
    f.client.set("/system/mode", "test").await.expect("set");
    f.client.set("/level", 0).await.expect("set");
    f.client.set("/go", 1).await.expect("set");
    // Only the eq-null rule passes.
    assert_eq!(
        next_at(&mut sub, "/was-unset", WAIT).await,
        Some(Value::Int(1))
    );
    f.client.set("/system/mode", "live").await.expect("set");
    f.client.set("/level", 2.0).await.expect("set");
    f.client.set("/go", 2).await.expect("set");
    assert_eq!(next_at(&mut sub, "/went", WAIT).await, Some(Value::Int(2)));
    let mut sub = f.client.subscribe("/level-ok").await.expect("sub");
    assert_eq!(
        next_at(&mut sub, "/level-ok", WAIT).await,
        Some(Value::Int(2))
    );
    assert_eq!(fire_count(f.port, "live-only").await, 1);
    assert_eq!(
        fire_count(f.port, "numeric").await,
        1,
        "int 1 < float 2.0 <= 2.5"
    );
    assert_eq!(fire_count(f.port, "unset").await, 2);
    assert_eq!(
        fire_count(f.port, "missing").await,
        0,
        "missing state is false"
    );
}

#[actix::test]
async fn actions_run_in_order_and_delay_really_waits() {
    // RU-8: set A, delay 1000, set B → B about 1 s after A; publish is an event.
    let f = start(json!([{
        "id": "seq", "trigger": {"type": "on_change", "pattern": "/seq/go"},
        "actions": [set("/seq/a", json!(1)),
                    {"type": "publish", "address": "/seq/ev", "value": "mid"},
                    {"type": "delay", "milliseconds": 1000},
                    set("/seq/b", json!(2))]
    }, {
        "id": "other", "trigger": {"type": "on_change", "pattern": "/other"},
        "actions": [set("/other-done", json!(true))]
    }]))
    .await;
    let mut sub = f.client.subscribe("/**").await.expect("sub");
    f.client.set("/seq/go", true).await.expect("set");
    let mut a_at = None;
    let mut order = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(4);
    while Instant::now() < deadline && !order.contains(&"/seq/b".to_string()) {
        let Some(u) = sub.next_within(Duration::from_secs(3)).await else {
            break;
        };
        let addr = u.address.to_string();
        if addr == "/seq/a" {
            a_at = Some(Instant::now());
            // The engine is not blocked by the delay: another rule runs meanwhile.
            f.client.set("/other", 1).await.expect("set");
        }
        if addr == "/seq/ev" {
            assert_eq!(u.signal, SignalType::Event);
        }
        if addr == "/seq/b" {
            let gap = a_at.map(|a| a.elapsed()).unwrap_or_default();
            assert!(
                gap >= Duration::from_millis(900) && gap < Duration::from_millis(2000),
                "B came {gap:?} after A"
            );
        }
        order.push(addr);
    }
    let pos = |a: &str| order.iter().position(|x| x == a);
    assert!(pos("/seq/a") < pos("/seq/ev"), "{order:?}");
    assert!(pos("/other-done") < pos("/seq/b"), "{order:?}");
    assert!(pos("/seq/b").is_some(), "{order:?}");
}

#[actix::test]
async fn transforms_apply_end_to_end() {
    // RU-9: 25 °C → 77 °F; a chain of map and round; a threshold to a string; a curve.
    let f = start(json!([
        {"id": "c2f", "trigger": {"type": "on_change", "pattern": "/temp-c"},
         "actions": [{"type": "set_from_trigger", "address": "/display/temp-f",
                      "transform": {"type": "scale", "factor": 1.8, "offset": 32}}]},
        {"id": "midi", "trigger": {"type": "on_change", "pattern": "/midi/cc"},
         "actions": [{"type": "set_from_trigger", "address": "/dmx/ch",
                      "transform": [{"type": "map", "in_min": 0, "in_max": 127, "out_min": 0, "out_max": 255},
                                    {"type": "round"}]},
                     {"type": "set_from_trigger", "address": "/dmx/state",
                      "transform": {"type": "threshold", "value": 64, "above": "on", "below": "off"}},
                     {"type": "set_from_trigger", "address": "/dmx/eased",
                      "transform": [{"type": "map", "in_min": 0, "in_max": 127, "out_min": 0, "out_max": 1},
                                    {"type": "ease_in"}, {"type": "round", "decimals": 3}]}]},
        {"id": "bad", "trigger": {"type": "on_change", "pattern": "/text"},
         "actions": [{"type": "set_from_trigger", "address": "/text-x2",
                      "transform": {"type": "scale", "factor": 2}}]}
    ]))
    .await;
    let mut sub = f.client.subscribe("/**").await.expect("sub");
    f.client.set("/temp-c", 25).await.expect("set");
    assert_eq!(
        next_at(&mut sub, "/display/temp-f", WAIT).await,
        Some(Value::Float(77.0))
    );
    f.client.set("/midi/cc", 127).await.expect("set");
    assert_eq!(
        next_at(&mut sub, "/dmx/ch", WAIT).await,
        Some(Value::Int(255))
    );
    assert_eq!(
        next_at(&mut sub, "/dmx/state", WAIT).await,
        Some("on".into())
    );
    assert_eq!(
        next_at(&mut sub, "/dmx/eased", WAIT).await,
        Some(Value::Float(1.0))
    );
    // A value the transform cannot take: no write, the rule shows the error.
    f.client.set("/text", "abc").await.expect("set");
    assert!(
        wait_until(|| async {
            rule_view(f.port, "bad").await["last_error"]
                .as_str()
                .is_some_and(|e| e.contains("not a number"))
        })
        .await
    );
}

#[actix::test]
async fn cooldown_limits_firings() {
    // RU-10: two triggers 100 ms apart with cooldown 1 → one firing; after it, fires again.
    let f = start(json!([{
        "id": "cool", "cooldown": 1,
        "trigger": {"type": "on_change", "pattern": "/btn"},
        "actions": [{"type": "set_from_trigger", "address": "/btn-out"}]
    }]))
    .await;
    f.client.set("/btn", 1).await.expect("set");
    tokio::time::sleep(Duration::from_millis(100)).await;
    f.client.set("/btn", 2).await.expect("set");
    assert!(wait_until(|| async { fire_count(f.port, "cool").await == 1 }).await);
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(fire_count(f.port, "cool").await, 1);
    tokio::time::sleep(Duration::from_millis(800)).await;
    f.client.set("/btn", 3).await.expect("set");
    assert!(wait_until(|| async { fire_count(f.port, "cool").await == 2 }).await);
}

#[actix::test]
async fn chains_run_and_self_triggers_do_not_loop() {
    // RU-11: A on /a sets /b; B on /b sets /c; C on /c publishes; a rule on /x/** that sets
    // /x/y fires once.
    let f = start(json!([
        on_change("A", "/a", json!([{"type": "set_from_trigger", "address": "/b", "transform": {"type": "offset", "value": 1}}])),
        on_change("B", "/b", json!([{"type": "set_from_trigger", "address": "/c", "transform": {"type": "offset", "value": 1}}])),
        on_change("C", "/c", json!([{"type": "publish", "address": "/chain/done"}])),
        {"id": "E", "trigger": {"type": "on_event", "pattern": "/chain/done"},
         "actions": [set("/chain/seen", json!(true))]},
        on_change("self", "/x/**", json!([set("/x/y", json!(1))])),
        {"id": "off", "enabled": false, "trigger": {"type": "on_change", "pattern": "/a"},
         "actions": [set("/off", json!(1))]}
    ]))
    .await;
    let mut sub = f.client.subscribe("/**").await.expect("sub");
    f.client.set("/a", 1).await.expect("set");
    assert_eq!(next_at(&mut sub, "/c", WAIT).await, Some(Value::Int(3)));
    assert_eq!(
        next_at(&mut sub, "/chain/seen", WAIT).await,
        Some(Value::Bool(true))
    );
    f.client.set("/x/a", 0).await.expect("set");
    assert_eq!(next_at(&mut sub, "/x/y", WAIT).await, Some(Value::Int(1)));
    assert!(
        next_at(&mut sub, "/x/y", Duration::from_millis(300))
            .await
            .is_none(),
        "no second /x/y"
    );
    assert_eq!(fire_count(f.port, "self").await, 1);
    assert_eq!(fire_count(f.port, "off").await, 0, "disabled");
    for id in ["A", "B", "C", "E"] {
        assert_eq!(fire_count(f.port, id).await, 1, "{id}");
    }
}

#[actix::test]
async fn a_loop_between_two_rules_is_halted_at_the_chain_limit() {
    let f = start_with(
        json!([
            on_change("ping", "/loop/a", json!([{"type": "set_from_trigger", "address": "/loop/b", "transform": {"type": "offset", "value": 1}}])),
            on_change("pong", "/loop/b", json!([{"type": "set_from_trigger", "address": "/loop/a", "transform": {"type": "offset", "value": 1}}]))
        ]),
        6,
    )
    .await;
    f.client.set("/loop/a", 0).await.expect("set");
    assert!(
        wait_until(|| async {
            http(f.port, "GET", "/api/v1/rules", None).await.1["chain_halts"] == 1
        })
        .await
    );
    tokio::time::sleep(Duration::from_millis(200)).await;
    let (_, body) = http(f.port, "GET", "/api/v1/rules", None).await;
    assert_eq!(body["chain_halts"], 1, "{body}");
    assert_eq!(body["max_chain"], 6);
    // depth 0..5 fire: ping at 0, 2, 4; pong at 1, 3, 5; pong's write at depth 6 is halted.
    assert_eq!(fire_count(f.port, "ping").await, 3);
    assert_eq!(fire_count(f.port, "pong").await, 3);
    let ping = rule_view(f.port, "ping").await;
    assert!(
        ping["last_error"]
            .as_str()
            .is_some_and(|e| e.contains("chain halted") && e.contains("rule:pong")),
        "{ping}"
    );
    assert_eq!(
        f.client.get("/loop/a").await.expect("get").value,
        Value::Int(6)
    );
    // A new outside write starts a new chain.
    f.client.set("/loop/a", 100).await.expect("set");
    assert!(
        wait_until(|| async {
            http(f.port, "GET", "/api/v1/rules", None).await.1["chain_halts"] == 2
        })
        .await
    );
}

#[actix::test]
async fn reload_swaps_rules_atomically_and_keeps_them_on_a_bad_file() {
    let f = start(json!([on_change(
        "one",
        "/r/in",
        json!([set("/r/out", json!("one"))])
    )]))
    .await;
    let mut sub = f.client.subscribe("/r/out").await.expect("sub");
    f.client.set("/r/in", 1).await.expect("set");
    assert_eq!(next_at(&mut sub, "/r/out", WAIT).await, Some("one".into()));

    // A bad file: 400 naming the rule and field; the old rule keeps running.
    write_rules(
        &f.file,
        &json!([
            on_change("two", "/r/in", json!([])),
            on_change("three", "/r/in", json!([set("/r/out", json!(3))]))
        ]),
    );
    let (status, body) = http(f.port, "POST", "/api/v1/rules/reload", None).await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(
        body["error"],
        "rule \"two\" (#0): actions: a rule needs at least one action"
    );
    f.client.set("/r/in", 2).await.expect("set");
    assert_eq!(next_at(&mut sub, "/r/out", WAIT).await, Some("one".into()));
    std::fs::write(&f.file, "{not json").expect("writes");
    assert_eq!(
        http(f.port, "POST", "/api/v1/rules/reload", None).await.0,
        400
    );

    // A good file replaces them; the count of a rule that stays is kept.
    write_rules(
        &f.file,
        &json!({"rules": [on_change("one", "/r/other", json!([set("/r/x", json!(0))])),
                          on_change("two", "/r/in", json!([set("/r/out", json!("two"))]))]}),
    );
    let (status, body) = http(f.port, "POST", "/api/v1/rules/reload", None).await;
    assert_eq!((status, &body["rules"]), (200, &json!(2)), "{body}");
    f.client.set("/r/in", 3).await.expect("set");
    assert_eq!(next_at(&mut sub, "/r/out", WAIT).await, Some("two".into()));
    assert!(next_at(&mut sub, "/r/out", Duration::from_millis(200))
        .await
        .is_none());
    assert_eq!(fire_count(f.port, "one").await, 2);
    assert_eq!(fire_count(f.port, "two").await, 1);
}

#[actix::test]
async fn a_bad_file_fails_startup() {
    // RU-1, RU-2.
    let file = temp_dir().join("rules.json");
    let start = |rules: Json| {
        write_rules(&file, &rules);
        Relay::start(RelayConfig {
            host: "127.0.0.1".into(),
            port: 0,
            rules: Some(file.clone()),
            ..RelayConfig::default()
        })
    };
    let no_actions = start(json!([{"id": "r", "trigger": {"type": "on_change", "pattern": "/a"}}]));
    match no_actions {
        Err(RelayError::Rules(e)) => assert_eq!(
            e.to_string(),
            "rule \"r\" (#0): actions: a rule needs at least one action"
        ),
        Err(e) => panic!("wrong error: {e}"),
        Ok(_) => panic!("a rule without actions was accepted"),
    }
    let dup = start(json!([
        on_change("d", "/a", json!([set("/b", json!(1))])),
        on_change("d", "/a", json!([set("/b", json!(1))]))
    ]));
    assert!(matches!(dup, Err(RelayError::Rules(_))));
    let missing = Relay::start(RelayConfig {
        host: "127.0.0.1".into(),
        port: 0,
        rules: Some(file.with_file_name("nope.json")),
        ..RelayConfig::default()
    });
    assert!(matches!(missing, Err(RelayError::Rules(_))));
    // The same format in TOML.
    let toml = file.with_file_name("rules.toml");
    std::fs::write(
        &toml,
        "[[rules]]\nid = \"t\"\ntrigger = { type = \"on_event\", pattern = \"/go\" }\nactions = [{ type = \"set\", address = \"/went\", value = true }]\n",
    )
    .expect("writes");
    let from_toml = Relay::start(RelayConfig {
        host: "127.0.0.1".into(),
        port: 0,
        rules: Some(toml),
        ..RelayConfig::default()
    });
    assert!(from_toml.is_ok(), "{:?}", from_toml.err());
    // The complete example of docs/rules.md loads.
    let example = concat!(env!("CARGO_MANIFEST_DIR"), "/../deploy/rules.example.json");
    let ok = Relay::start(RelayConfig {
        host: "127.0.0.1".into(),
        port: 0,
        rules: Some(PathBuf::from(example)),
        ..RelayConfig::default()
    });
    assert!(ok.is_ok(), "{:?}", ok.err());
}

#[actix::test]
async fn without_rules_the_api_answers_404() {
    let (_relay, port) = common::relay(RelayConfig::default());
    assert_eq!(http(port, "GET", "/api/v1/rules", None).await.0, 404);
    assert_eq!(
        http(port, "POST", "/api/v1/rules/reload", None).await.0,
        404
    );
}

#[actix::test]
async fn with_auth_the_api_needs_the_admin_token() {
    let dir = temp_dir();
    let file = dir.join("rules.json");
    write_rules(
        &file,
        &json!([on_change("a", "/a", json!([set("/b", json!(1))]))]),
    );
    let token_file = dir.join("admin.token");
    let (_relay, port) = common::relay(RelayConfig {
        rules: Some(file),
        auth: Some(clasp_actors::AuthConfig {
            db: dir.join("auth.redb"),
            admin_token_file: Some(token_file.clone()),
            ..Default::default()
        }),
        ..RelayConfig::default()
    });
    let admin = std::fs::read_to_string(&token_file).expect("admin token");
    let admin = admin.trim();
    assert_eq!(http(port, "GET", "/api/v1/rules", None).await.0, 401);
    assert_eq!(
        http(port, "GET", "/api/v1/rules", Some("wrong")).await.0,
        401
    );
    assert_eq!(
        http(port, "POST", "/api/v1/rules/reload", None).await.0,
        401
    );
    let (status, body) = http(port, "GET", "/api/v1/rules", Some(admin)).await;
    assert_eq!((status, &body["rules"][0]["id"]), (200, &json!("a")));
    assert_eq!(
        http(port, "POST", "/api/v1/rules/reload", Some(admin))
            .await
            .0,
        200
    );
}

#[actix::test]
async fn event_loops_are_halted_and_self_published_events_do_not_refire() {
    let f = start_with(
        json!([
            {"id": "tick", "trigger": {"type": "on_event", "pattern": "/ev/tick"},
             "actions": [{"type": "publish", "address": "/ev/tock", "value": "t"}]},
            {"id": "tock", "trigger": {"type": "on_event", "pattern": "/ev/tock"},
             "actions": [{"type": "publish", "address": "/ev/tick", "value": "t"}]},
            {"id": "echo", "trigger": {"type": "on_event", "pattern": "/self/**"},
             "actions": [{"type": "publish", "address": "/self/out", "value": 1}]}
        ]),
        4,
    )
    .await;
    f.client.emit("/ev/tick", "go").await.expect("emit");
    assert!(
        wait_until(|| async {
            http(f.port, "GET", "/api/v1/rules", None).await.1["chain_halts"] == 1
        })
        .await
    );
    tokio::time::sleep(Duration::from_millis(200)).await;
    // Depths 0..3 fire: tick at 0 and 2, tock at 1 and 3.
    assert_eq!(fire_count(f.port, "tick").await, 2);
    assert_eq!(fire_count(f.port, "tock").await, 2);
    f.client.emit("/self/in", 0).await.expect("emit");
    assert!(wait_until(|| async { fire_count(f.port, "echo").await == 1 }).await);
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(
        fire_count(f.port, "echo").await,
        1,
        "its own event does not refire it"
    );
}
