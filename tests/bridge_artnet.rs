//! The Art-Net bridge against independent peers: stupidArtnet's sender and
//! StupidArtnetServer (`tests/bridges/artnet_sacn_peer.py`), values checked with the Rust client.
//! Embedded (`clasp relay --artnet-port`) and standalone (`clasp artnet --target`), on
//! free loopback ports (real gear's 6454 is only the default).

mod common;
#[path = "common/dmx_ip.rs"]
mod dmx_ip;

use std::net::UdpSocket;
use std::time::{Duration, Instant};

use clasp::Client;
use clasp_proto::{SignalType, Value};
use common::Relay;
use dmx_ip::*;

/// A relay with the Art-Net bridge on a free port; extra relay flags.
fn embedded(extra: &[&str]) -> (Relay, u16) {
    let port = udp_port();
    let p = port.to_string();
    let mut args = vec!["--artnet-port", p.as_str()];
    args.extend_from_slice(extra);
    (Relay::start(&args), port)
}

/// Sends frames of universe 15 until the bridge on `port` maps one under `ns`: the bridge
/// is bound (it starts a moment after the relay's WebSocket port).
async fn wait_bridge(c: &Client, port: u16, ns: &str) {
    let probe = format!("{ns}/15/**");
    let mut sub = c.subscribe(&probe).await.expect("subscribes");
    let end = Instant::now() + Duration::from_secs(10);
    while Instant::now() < end {
        run_peer(&["artnet-send", &port.to_string(), "15", r#"{"1": 1}"#]);
        if sub.next_within(Duration::from_millis(300)).await.is_some() {
            return;
        }
    }
    panic!("the Art-Net bridge on UDP {port} never mapped a frame to {probe}");
}

fn send(port: u16, universe: u16, levels: &str) {
    run_peer(&[
        "artnet-send",
        &port.to_string(),
        &universe.to_string(),
        levels,
    ]);
}

// ---- inbound -------------------------------------------------------------------------

#[test]
fn frames_become_channel_params_and_only_changes_are_written() {
    let (relay, port) = embedded(&[]);
    runtime().block_on(async {
        let c = client(&relay.url()).await;
        wait_bridge(&c, port, "/artnet").await;
        let mut sub = c.subscribe("/artnet/0/**").await.expect("subscribes");

        // The first frame of a universe writes every channel it carries.
        send(port, 0, r#"{"1": 255, "7": 9, "512": 1}"#);
        let first = collect(&mut sub, 512, WAIT).await;
        assert_eq!(first.len(), 512, "one param per channel of the first frame");
        let get = |n: u16| {
            first
                .iter()
                .find(|u| u.address.as_str() == format!("/artnet/0/{n}"))
        };
        assert_eq!(get(1).map(|u| &u.value), Some(&Value::Int(255)));
        assert_eq!(get(7).map(|u| &u.value), Some(&Value::Int(9)));
        assert_eq!(get(512).map(|u| &u.value), Some(&Value::Int(1)));
        assert_eq!(get(2).map(|u| &u.value), Some(&Value::Int(0)));
        assert!(first.iter().all(|u| u.signal == SignalType::Param));

        // The same frame again writes nothing; one changed channel writes one param.
        send(port, 0, r#"{"1": 255, "7": 9, "512": 1}"#);
        send(port, 0, r#"{"1": 255, "7": 10, "512": 1}"#);
        let next = collect(&mut sub, 2, Duration::from_millis(1500)).await;
        assert_eq!(next.len(), 1, "only the changed channel: {next:?}");
        assert_eq!(next[0].address.as_str(), "/artnet/0/7");
        assert_eq!(next[0].value, Value::Int(10));

        // Stored as params: a client that never subscribed reads them.
        let late = client(&relay.url()).await;
        assert_eq!(
            late.get("/artnet/0/1").await.expect("param").value,
            Value::Int(255)
        );
    });
}

#[test]
fn universes_outside_the_filter_are_ignored() {
    let (relay, port) = embedded(&["--artnet-universes", "0-15"]);
    runtime().block_on(async {
        let c = client(&relay.url()).await;
        wait_bridge(&c, port, "/artnet").await;
        let mut ignored = c.subscribe("/artnet/20/**").await.expect("subscribes");
        let mut taken = c.subscribe("/artnet/3/2").await.expect("subscribes");
        send(port, 20, r#"{"1": 99}"#);
        send(port, 3, r#"{"2": 42}"#);
        let got = collect(&mut taken, 1, WAIT).await;
        assert_eq!(got.first().map(|u| &u.value), Some(&Value::Int(42)));
        // Universe 20 was sent first, on the same path: it would have arrived by now.
        let stray = collect(&mut ignored, 1, Duration::from_millis(500)).await;
        assert!(stray.is_empty(), "universe 20 must not appear: {stray:?}");
    });
}

#[test]
fn standalone_universe_mode_streams_whole_frames() {
    let relay = Relay::start(&[]);
    let bridge = Standalone::start(
        "artnet",
        &relay.url(),
        &["--mode", "universe", "--namespace", "/dmx"],
    );
    runtime().block_on(async {
        let c = client(&relay.url()).await;
        let mut sub = c.subscribe("/dmx/**").await.expect("subscribes");
        let end = Instant::now() + Duration::from_secs(10);
        let update = loop {
            assert!(
                Instant::now() < end,
                "no universe stream from the standalone bridge"
            );
            send(bridge.port, 4, r#"{"1": 10, "512": 20}"#);
            if let Some(u) = sub.next_within(Duration::from_millis(300)).await {
                break u;
            }
        };
        assert_eq!(update.address.as_str(), "/dmx/4");
        assert_eq!(update.signal, SignalType::Stream);
        let mut want = vec![0u8; 512];
        want[0] = 10;
        want[511] = 20;
        assert_eq!(update.value, Value::Bytes(want));
    });
}

#[test]
fn standalone_normalized_levels_map_both_ways() {
    let relay = Relay::start(&[]);
    let out = udp_port();
    let listener = Peer::listening(&["artnet-listen", &out.to_string(), "10", "1"]);
    let dest = format!("127.0.0.1:{out}");
    let bridge = Standalone::start("artnet", &relay.url(), &["--normalize", "--dest", &dest]);
    runtime().block_on(async {
        let c = client(&relay.url()).await;
        let mut sub = c.subscribe("/artnet/0/1").await.expect("subscribes");
        let end = Instant::now() + Duration::from_secs(10);
        let update = loop {
            assert!(Instant::now() < end, "no value from the standalone bridge");
            send(bridge.port, 0, r#"{"1": 51}"#);
            if let Some(u) = sub.next_within(Duration::from_millis(300)).await {
                break u;
            }
        };
        assert_eq!(update.value, Value::Float(0.2));

        c.set("/artnet/1/3", 0.5).await.expect("set");
        c.set("/artnet/1/4", 1.0).await.expect("set");
        // 1.5 is not a normalised level: refused, not sent.
        c.set("/artnet/1/5", 1.5).await.expect("set");
    });
    let want = vec![(3, 128), (4, 255)];
    let end = Instant::now() + WAIT;
    loop {
        let line = listener.json();
        if levels(&line) == want {
            break;
        }
        assert!(
            Instant::now() < end,
            "listener never saw {want:?} (last {line})"
        );
    }
}

// ---- outbound ------------------------------------------------------------------------

#[test]
fn clasp_writes_go_out_as_full_artdmx_frames_and_idle_universes_are_kept_alive() {
    let out = udp_port();
    let listener = Peer::listening(&["artnet-listen", &out.to_string(), "8", "2"]);
    let dest = format!("127.0.0.1:{out}");
    let (relay, _port) = embedded(&["--artnet-dest", &dest]);
    runtime().block_on(async {
        let c = client(&relay.url()).await;
        c.set("/artnet/2/100", 200).await.expect("set");
        c.set("/artnet/2/1", 1).await.expect("set");
        // Out of range: not a level, not sent.
        c.set("/artnet/2/2", 300).await.expect("set");
    });
    // Unchanged channels keep their levels; every frame carries all 512 channels.
    let end = Instant::now() + WAIT;
    let mut line;
    loop {
        line = listener.json();
        assert_eq!(line["len"], 512, "{line}");
        if levels(&line) == vec![(1, 1), (100, 200)] {
            break;
        }
        assert!(
            Instant::now() < end,
            "listener never saw both channels (last {line})"
        );
    }
    // Idle: re-sent at least once a second (keep-alive), and not at the refresh rate.
    let idle = listener.all(Duration::from_millis(3500));
    let mut times: Vec<f64> = vec![line["t"].as_f64().expect("t")];
    times.extend(idle.iter().filter_map(|l| l["t"].as_f64()));
    let gaps: Vec<f64> = times.windows(2).map(|w| w[1] - w[0]).collect();
    assert!(idle.len() >= 3, "keep-alive frames while idle: {idle:?}");
    assert!(
        idle.len() <= 6,
        "an idle universe is not re-sent at 44 Hz: {} frames",
        idle.len()
    );
    assert!(
        gaps.iter().all(|g| *g < 1.3),
        "a gap of more than a second while idle: {gaps:?}"
    );
    assert!(idle.iter().all(|l| levels(l) == vec![(1, 1), (100, 200)]));
}

#[test]
fn received_values_are_not_echoed_back_out() {
    let out = udp_port();
    let listener = Peer::listening(&["artnet-listen", &out.to_string(), "8", "0"]);
    let dest = format!("127.0.0.1:{out}");
    let (relay, port) = embedded(&["--artnet-dest", &dest]);
    runtime().block_on(async {
        let c = client(&relay.url()).await;
        let mut sub = c.subscribe("/artnet/0/9").await.expect("subscribes");
        send(port, 0, r#"{"9": 90}"#);
        let got = collect(&mut sub, 1, WAIT).await;
        assert_eq!(got.first().map(|u| &u.value), Some(&Value::Int(90)));
        assert!(
            listener.json_within(Duration::from_millis(1500)).is_none(),
            "a received frame went back out"
        );
        c.set("/artnet/0/5", 5).await.expect("set");
    });
    let line = listener.json();
    assert_eq!(
        levels(&line),
        vec![(5, 5)],
        "only CLASP's own writes go out"
    );
}

// ---- merging -------------------------------------------------------------------------

#[test]
fn htp_merges_two_sources_and_a_silent_source_times_out() {
    let (relay, port) = embedded(&[]);
    runtime().block_on(async {
        let c = client(&relay.url()).await;
        wait_bridge(&c, port, "/artnet").await;
        let p = port.to_string();
        // Source B: every 100 ms for 15 s. Source A: every 100 ms for 1.5 s, then silent.
        let _b = Peer::spawn(&[
            "artnet-send",
            &p,
            "1",
            r#"{"1": 150, "2": 50}"#,
            "150",
            "0.1",
        ]);
        let mut a = Peer::spawn(&[
            "artnet-send",
            &p,
            "1",
            r#"{"1": 100, "2": 200}"#,
            "15",
            "0.1",
        ]);
        wait_value(&c, "/artnet/1/1", &Value::Int(150)).await;
        wait_value(&c, "/artnet/1/2", &Value::Int(200)).await;
        assert!(a.finish(Duration::from_secs(20)), "source A failed");
        // A's last frame was sent before this instant.
        let since = Instant::now();
        tokio::time::sleep(Duration::from_millis(1500)).await;
        assert_eq!(
            c.get("/artnet/1/2").await.expect("param").value,
            Value::Int(200),
            "A left the merge before its 4 s timeout"
        );
        // After the 4 s source timeout only B counts.
        let end = Instant::now() + Duration::from_secs(8);
        loop {
            if c.get("/artnet/1/2").await.expect("param").value == Value::Int(50) {
                break;
            }
            assert!(Instant::now() < end, "source A never timed out");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert!(
            since.elapsed() >= Duration::from_secs(3),
            "timed out too early"
        );
        assert_eq!(
            c.get("/artnet/1/1").await.expect("param").value,
            Value::Int(150)
        );
    });
}

#[test]
fn ltp_follows_the_latest_change_without_flicker() {
    let relay = Relay::start(&[]);
    let bridge = Standalone::start("artnet", &relay.url(), &["--merge", "ltp"]);
    runtime().block_on(async {
        let c = client(&relay.url()).await;
        wait_bridge(&c, bridge.port, "/artnet").await;
        let p = bridge.port.to_string();
        // A sends 100 steadily; then B sends 30 (lower: HTP would keep 100).
        let _a = Peer::spawn(&["artnet-send", &p, "2", r#"{"1": 100}"#, "60", "0.1"]);
        wait_value(&c, "/artnet/2/1", &Value::Int(100)).await;
        let mut sub = c.subscribe("/artnet/2/1").await.expect("subscribes");
        send(bridge.port, 2, r#"{"1": 30}"#);
        wait_value(&c, "/artnet/2/1", &Value::Int(30)).await;
        // A keeps resending the same 100: the channel stays with B's latest change.
        let after = collect(&mut sub, 10, Duration::from_millis(1500)).await;
        let values: Vec<&Value> = after.iter().map(|u| &u.value).collect();
        // The subscription starts with the current value (100), then B's 30, and never back.
        let at = values.iter().position(|v| **v == Value::Int(30));
        assert!(
            at.is_some_and(|i| i + 1 == values.len()),
            "LTP flickered: {values:?}"
        );
    });
}

// ---- discovery and bad input ---------------------------------------------------------

#[test]
fn artpoll_is_answered_with_artpollreply() {
    let (relay, port) = embedded(&["--artnet-universes", "0-5"]);
    runtime().block_on(async {
        let c = client(&relay.url()).await;
        wait_bridge_any(&c, port).await;
    });
    let replies = run_peer(&["artnet-poll", &port.to_string()]);
    let universes: Vec<u64> = replies
        .iter()
        .flat_map(|r| r["universes"].as_array().cloned().unwrap_or_default())
        .filter_map(|u| u.as_u64())
        .collect();
    assert_eq!(universes, vec![0, 1, 2, 3, 4, 5], "{replies:?}");
    assert!(
        replies
            .iter()
            .all(|r| r["short_name"] == "CLASP" && r["ip"] == "127.0.0.1"),
        "{replies:?}"
    );
}

/// Waits until the bridge answers (universe 0 frame mapped), for relays whose filter
/// excludes the usual probe universe.
async fn wait_bridge_any(c: &Client, port: u16) {
    let mut sub = c.subscribe("/artnet/0/**").await.expect("subscribes");
    let end = Instant::now() + Duration::from_secs(10);
    while Instant::now() < end {
        send(port, 0, r#"{"1": 1}"#);
        if sub.next_within(Duration::from_millis(300)).await.is_some() {
            return;
        }
    }
    panic!("the Art-Net bridge on UDP {port} never mapped a frame");
}

#[test]
fn bad_packets_are_counted_and_never_fatal() {
    let (relay, port) = embedded(&[]);
    runtime().block_on(async {
        let c = client(&relay.url()).await;
        wait_bridge(&c, port, "/artnet").await;
        let before = bridge_counter(relay.port, "artnet:/artnet", "bad_input");
        let sock = UdpSocket::bind("127.0.0.1:0").expect("socket");
        // A valid ArtDmx header (universe 0, length 2) to corrupt.
        let mut good = b"Art-Net\0".to_vec();
        good.extend_from_slice(&[0x00, 0x50, 0, 14, 1, 0, 0, 0, 0, 2, 7, 7]);
        let mut wrong_header = good.clone();
        wrong_header[0] = b'X';
        let mut big_universe = good.clone();
        big_universe[15] = 0x80; // port-address 32768
        let mut long = good.clone();
        long[17] = 200; // length 200, 2 bytes of data
        for bad in [&good[..9], &wrong_header[..], &big_universe[..], &long[..]] {
            sock.send_to(bad, ("127.0.0.1", port)).expect("send");
        }
        let end = Instant::now() + WAIT;
        while bridge_counter(relay.port, "artnet:/artnet", "bad_input") < before + 4 {
            assert!(Instant::now() < end, "bad packets not counted");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        // Still serving.
        send(port, 6, r#"{"3": 33}"#);
        wait_value(&c, "/artnet/6/3", &Value::Int(33)).await;
        assert_eq!(
            bridge_counter(relay.port, "artnet:/artnet", "bad_input"),
            before + 4
        );
    });
}

#[test]
fn whole_frames_written_to_a_universe_address_go_out() {
    let out = udp_port();
    let listener = Peer::listening(&["artnet-listen", &out.to_string(), "8", "3"]);
    let dest = format!("127.0.0.1:{out}");
    let (relay, _port) = embedded(&["--artnet-dest", &dest]);
    runtime().block_on(async {
        let c = client(&relay.url()).await;
        // Bytes set levels from channel 1; an array of levels does too.
        c.set("/artnet/3", Value::Bytes(vec![1, 2, 3]))
            .await
            .expect("set");
        c.set(
            "/artnet/3",
            Value::Array(vec![Value::Int(9), Value::Int(8)]),
        )
        .await
        .expect("set");
    });
    let want = vec![(1, 9), (2, 8), (3, 3)];
    let end = Instant::now() + WAIT;
    loop {
        let line = listener.json();
        if levels(&line) == want {
            break;
        }
        assert!(
            Instant::now() < end,
            "listener never saw {want:?} (last {line})"
        );
    }
}
