//! Harness of the Art-Net and sACN bridge tests: the independent peers of
//! `tests/bridges/artnet_sacn_peer.py` (stupidArtnet, sacn) as processes whose JSON lines are
//! read with bounded waits, the Rust client, and the relay's bridge counters.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::net::UdpSocket;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use clasp::{Client, Update};

/// Longest wait for one expected line or update.
pub const WAIT: Duration = Duration::from_secs(5);

/// A UDP port that was free a moment ago.
pub fn udp_port() -> u16 {
    let s = UdpSocket::bind("127.0.0.1:0").expect("bind an ephemeral UDP port");
    s.local_addr().expect("local addr").port()
}

fn script() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/bridges/artnet_sacn_peer.py")
}

/// A running peer whose stdout lines are collected; killed when dropped.
pub struct Peer {
    child: Child,
    lines: mpsc::Receiver<String>,
    what: String,
}

impl Peer {
    /// Starts `artnet_sacn_peer.py <args>`.
    pub fn spawn(args: &[&str]) -> Peer {
        let what = format!("artnet_sacn_peer.py {}", args.join(" "));
        let mut child = Command::new("python3")
            .arg(script())
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| panic!("{what}: cannot start: {e}"));
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Peer { child, lines, what }
    }

    /// Starts a listening peer and waits for its `{"ready": true}`.
    pub fn listening(args: &[&str]) -> Peer {
        let p = Peer::spawn(args);
        let first = p.json();
        assert_eq!(first["ready"], true, "{}: {first}", p.what);
        p
    }

    /// The next JSON line within `within`, if any.
    pub fn json_within(&self, within: Duration) -> Option<serde_json::Value> {
        let line = self.lines.recv_timeout(within).ok()?;
        Some(serde_json::from_str(&line).unwrap_or_else(|e| panic!("{}: {line:?}: {e}", self.what)))
    }

    /// The next JSON line; panics after [`WAIT`].
    pub fn json(&self) -> serde_json::Value {
        self.json_within(WAIT)
            .unwrap_or_else(|| panic!("{}: no output within {WAIT:?}", self.what))
    }

    /// Every JSON line for `within` (or until the peer exits).
    pub fn all(&self, within: Duration) -> Vec<serde_json::Value> {
        let end = Instant::now() + within;
        let mut out = Vec::new();
        while let Some(left) = end.checked_duration_since(Instant::now()) {
            match self.json_within(left) {
                Some(v) => out.push(v),
                None => break,
            }
        }
        out
    }

    /// Waits (at most `within`) for the peer to exit; its exit success.
    pub fn finish(&mut self, within: Duration) -> bool {
        let end = Instant::now() + within;
        while Instant::now() < end {
            if let Ok(Some(status)) = self.child.try_wait() {
                return status.success();
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        false
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs a short peer command to completion; its JSON lines.
pub fn run_peer(args: &[&str]) -> Vec<serde_json::Value> {
    let mut p = Peer::spawn(args);
    let ok = p.finish(Duration::from_secs(30));
    let lines = p.all(Duration::from_millis(100));
    assert!(ok, "artnet_sacn_peer.py {args:?} failed: {lines:?}");
    lines
}

/// A current-thread runtime for the async client.
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
}

/// The Rust client, connected.
pub async fn client(url: &str) -> Client {
    Client::builder(url)
        .name("dmx-test")
        .connect()
        .await
        .expect("the Rust client connects")
}

/// Collects updates until `n` arrived or `within` passed.
pub async fn collect(sub: &mut clasp::Subscription, n: usize, within: Duration) -> Vec<Update> {
    let end = tokio::time::Instant::now() + within;
    let mut got = Vec::new();
    while got.len() < n {
        match tokio::time::timeout_at(end, sub.next()).await {
            Ok(Some(u)) => got.push(u),
            _ => break,
        }
    }
    got
}

/// Waits (at most [`WAIT`]) until `address` holds `want`; the last value seen otherwise.
pub async fn wait_value(c: &Client, address: &str, want: &clasp::proto::Value) {
    let end = Instant::now() + WAIT;
    let mut last = None;
    while Instant::now() < end {
        // An unknown address is not answered: bound each read.
        if let Ok(Ok(p)) = tokio::time::timeout(Duration::from_millis(300), c.get(address)).await {
            if &p.value == want {
                return;
            }
            last = Some(p.value);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{address} never became {want:?} within {WAIT:?} (last {last:?})");
}

/// A counter of the relay's bridge `bridge` from /metrics (`received`, `sent`, `bad_input`).
pub fn bridge_counter(relay_port: u16, bridge: &str, counter: &str) -> u64 {
    let page = ureq::get(&format!("http://127.0.0.1:{relay_port}/metrics"))
        .call()
        .expect("GET /metrics")
        .into_string()
        .expect("metrics text");
    let prefix = format!("clasp_bridge_{counter}_total{{bridge=\"{bridge}\"");
    page.lines()
        .find(|l| l.starts_with(&prefix))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no {prefix} in /metrics:\n{page}"))
}

/// The `levels` object of a peer line as (channel, level) pairs.
pub fn levels(line: &serde_json::Value) -> Vec<(u16, u64)> {
    let mut out: Vec<(u16, u64)> = line["levels"]
        .as_object()
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| Some((k.parse().ok()?, v.as_u64()?)))
                .collect()
        })
        .unwrap_or_default();
    out.sort_unstable();
    out
}

/// `clasp <kind> --target <relay> --interface 127.0.0.1 --listen <free port> <extra>`
/// (a standalone bridge); killed on drop.
pub struct Standalone {
    child: Child,
    pub port: u16,
}

impl Standalone {
    pub fn start(kind: &str, relay_url: &str, extra: &[&str]) -> Standalone {
        let port = udp_port();
        let child = Command::new(env!("CARGO_BIN_EXE_clasp"))
            .args([kind, "--target", relay_url, "--interface", "127.0.0.1"])
            .args(["--listen", &port.to_string()])
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| panic!("clasp {kind} cannot start: {e}"));
        Standalone { child, port }
    }
}

impl Drop for Standalone {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
