//! Federation end to end: real relay processes (a hub and leaves) on loopback, the official
//! JS client and the Rust client on different sites (FEATURES FE-1..7, issue 9).

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use clasp::Client;
use clasp_proto::Value;
use common::*;
use serde_json::Value as Json;

/// Everything a test waits for is bounded by this.
const WITHIN: Duration = Duration::from_secs(15);

fn hub(extra: &[&str]) -> Relay {
    let mut args = vec!["--name", "hub", "--federation-id", "hub"];
    args.extend_from_slice(extra);
    Relay::start(&args)
}

fn leaf(id: &str, namespace: &str, hubs: &[&Relay], extra: &[&str]) -> Relay {
    let urls: Vec<String> = hubs.iter().map(|h| h.url()).collect();
    let mut args: Vec<&str> = vec!["--federation-id", id, "--federation-namespace", namespace];
    for u in &urls {
        args.extend_from_slice(&["--federation-hub", u]);
    }
    args.extend_from_slice(extra);
    Relay::start(&args)
}

fn health(relay: &Relay) -> Json {
    health_at("127.0.0.1", relay.port)
}

fn health_at(host: &str, port: u16) -> Json {
    ureq::get(&format!("http://{host}:{port}/health"))
        .timeout(Duration::from_secs(2))
        .call()
        .ok()
        .and_then(|r| r.into_json().ok())
        .unwrap_or(Json::Null)
}

/// The relay's federation links as /health shows them.
fn links(relay: &Relay) -> Vec<Json> {
    health(relay)["federation"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

/// Waits until `relay` has `n` links in state `up`.
fn wait_up(relay: &Relay, n: usize) {
    wait_up_at("127.0.0.1", relay, n)
}

fn wait_up_at(host: &str, relay: &Relay, n: usize) {
    let deadline = Instant::now() + WITHIN;
    loop {
        let l = health_at(host, relay.port)["federation"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        if l.iter().filter(|l| l["state"] == "up").count() >= n {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "relay on {} did not get {n} federation links up: {l:#?}",
            relay.port
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
}

async fn connect(relay: &Relay) -> Client {
    Client::builder(relay.url())
        .name("fed-test")
        .connect()
        .await
        .expect("connects")
}

/// Polls `GET address` on `client` until it equals `want`.
async fn eventually(client: &Client, address: &str, want: Value) -> u64 {
    let deadline = Instant::now() + WITHIN;
    loop {
        if let Ok(p) = client.get(address).await {
            if p.value == want {
                return p.revision;
            }
        }
        assert!(Instant::now() < deadline, "{address} never became {want:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn code_of<T: std::fmt::Debug>(r: Result<T, clasp::ClientError>) -> u16 {
    match r {
        Err(clasp::ClientError::Server { code, .. }) => code,
        other => panic!("expected an ERROR from the relay, got {other:?}"),
    }
}

#[test]
fn official_js_clients_on_two_sites_share_one_address_space() {
    require_js_client();
    let h = hub(&[]);
    let a = leaf("site-a", "/site-a/**", &[&h], &[]);
    let b = leaf("site-b", "/site-b/**", &[&h], &[]);
    wait_up(&a, 1);
    wait_up(&b, 1);
    let mut cmd = node();
    cmd.arg(conformance_dir().join("js/federation.mjs"))
        .arg(a.url())
        .arg(b.url());
    run_ok(cmd, Duration::from_secs(60), "node js/federation.mjs");
}

#[test]
fn rust_clients_read_write_and_subscribe_across_sites() {
    let h = hub(&[]);
    let a = leaf("site-a", "/site-a/**", &[&h], &[]);
    let b = leaf("site-b", "/site-b/**", &[&h], &[]);
    wait_up(&a, 1);
    wait_up(&b, 1);
    rt().block_on(async {
        let ca = connect(&a).await;
        let cb = connect(&b).await;
        let ch = connect(&h).await;
        let mut sub = cb.subscribe("/site-a/**").await.expect("subscribes");
        let rev = ca.set("/site-a/level", 0.5).await.expect("owner write");
        assert_eq!(rev, 1);
        let got = sub.next_within(WITHIN).await.expect("live update on B");
        assert_eq!(got.address.as_str(), "/site-a/level");
        assert_eq!(got.value, Value::Float(0.5));
        assert_eq!(
            got.revision,
            Some(1),
            "the owner's revision crosses the federation"
        );
        assert_eq!(
            eventually(&ch, "/site-a/level", Value::Float(0.5)).await,
            1,
            "the hub mirrors it"
        );

        // A write on B into A's namespace is acknowledged with A's revision, once A has it.
        let rev = cb
            .set("/site-a/level", 0.75)
            .await
            .expect("forwarded write");
        assert_eq!(rev, 2, "revision assigned by the owner");
        let owner = ca.get("/site-a/level").await.expect("owner reads");
        assert_eq!((owner.value, owner.revision), (Value::Float(0.75), 2));
        let mirrored = cb
            .get("/site-a/level")
            .await
            .expect("B reads its own write back");
        assert_eq!(
            (mirrored.value, mirrored.revision),
            (Value::Float(0.75), 2),
            "read-your-writes"
        );

        // Events cross sites; a hub client writing a site's namespace is forwarded too.
        let mut events = ca.subscribe("/site-b/**").await.expect("subscribes");
        cb.emit("/site-b/cue", 3).await.expect("emits");
        let e = events.next_within(WITHIN).await.expect("event from B on A");
        assert_eq!(
            (e.address.as_str(), e.value.clone()),
            ("/site-b/cue", Value::Int(3))
        );
        ch.set("/site-b/from-hub", "x")
            .await
            .expect("hub client writes B's namespace");
        eventually(&cb, "/site-b/from-hub", Value::from("x")).await;

        // Addresses nobody declared stay local to each relay.
        ca.set("/local/only", 1).await.expect("local write");
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert!(cb.get("/local/only").await.is_err(), "not federated");
    });
}

#[test]
fn a_change_crosses_each_link_once_and_never_returns_to_its_origin() {
    let h = hub(&[]);
    let a = leaf("site-a", "/site-a/**", &[&h], &[]);
    let b = leaf("site-b", "/site-b/**", &[&h], &[]);
    wait_up(&a, 1);
    wait_up(&b, 1);
    let counts = |r: &Relay| -> (u64, u64) {
        links(r).iter().fold((0, 0), |(s, rc), l| {
            (
                s + l["sent"].as_u64().unwrap_or(0),
                rc + l["received"].as_u64().unwrap_or(0),
            )
        })
    };
    let (a0, b0, h0) = (counts(&a), counts(&b), counts(&h));
    rt().block_on(async {
        let ca = connect(&a).await;
        let cb = connect(&b).await;
        ca.set("/site-a/once", 1).await.expect("writes");
        ca.emit("/site-a/ping", 1).await.expect("emits");
        eventually(&cb, "/site-a/once", Value::Int(1)).await;
        tokio::time::sleep(Duration::from_millis(500)).await;
    });
    let (a1, b1, h1) = (counts(&a), counts(&b), counts(&h));
    assert_eq!(a1.0 - a0.0, 2, "A sent the SET and the event once");
    assert_eq!(a1.1 - a0.1, 0, "nothing came back to A");
    assert_eq!(h1.1 - h0.1, 2, "the hub received each once");
    assert_eq!(h1.0 - h0.0, 2, "the hub sent each once (to B only)");
    assert_eq!(b1.1 - b0.1, 2, "B received each once");
}

#[test]
fn ownership_errors_come_back_with_their_codes_and_a_lost_owner_gives_502() {
    let h = hub(&[]);
    let a = leaf(
        "site-a",
        "/site-a/**",
        &[&h],
        &["--federation-timeout", "800"],
    );
    let b = leaf(
        "site-b",
        "/site-b/**",
        &[&h],
        &["--federation-timeout", "800"],
    );
    wait_up(&a, 1);
    wait_up(&b, 1);
    let pid = a.child.id().to_string();
    rt().block_on(async {
        let ca = connect(&a).await;
        let cb = connect(&b).await;
        // A lock held on A refuses B's write with A's code (401, LockHeld).
        ca.set_with(
            "/site-a/locked",
            1,
            clasp::SetOptions {
                lock: true,
                ..Default::default()
            },
        )
        .await
        .expect("locks");
        eventually(&cb, "/site-a/locked", Value::Int(1)).await;
        assert_eq!(code_of(cb.set("/site-a/locked", 2).await), 401);
        // An expected revision that is not the owner's: 400 from the owner.
        ca.set("/site-a/rev", 0).await.expect("owner write");
        let stale = clasp::SetOptions {
            revision: Some(99),
            ..Default::default()
        };
        assert_eq!(code_of(cb.set_with("/site-a/rev", 1, stale).await), 400);
        // A bundle cannot span routers.
        let bundle = cb
            .bundle(vec![clasp::BundleItem::Set("/site-a/b".into(), 1.into())])
            .await;
        assert_eq!(code_of(bundle), 400);

        // The owner stops answering (SIGSTOP): the forwarded write times out with 502.
        assert!(std::process::Command::new("kill")
            .args(["-STOP", &pid])
            .status()
            .expect("kill")
            .success());
        let started = Instant::now();
        assert_eq!(code_of(cb.set("/site-a/x", 1).await), 502);
        assert!(
            started.elapsed() < Duration::from_secs(4),
            "answered after the 800 ms timeout"
        );
        assert!(std::process::Command::new("kill")
            .args(["-CONT", &pid])
            .status()
            .expect("kill")
            .success());
    });
    drop(a);
    // The owner is gone: writes to its namespace are refused at once with 502.
    rt().block_on(async {
        let cb = connect(&b).await;
        let deadline = Instant::now() + WITHIN;
        loop {
            let r = cb.set("/site-a/y", 1).await;
            let code = code_of(r);
            assert_eq!(code, 502);
            if links(&h).iter().all(|l| l["peer"] != "site-a") {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "the hub never noticed site-a left"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert_eq!(code_of(cb.set("/site-a/z", 1).await), 502);
    });
}

#[test]
fn an_overlapping_namespace_is_refused_with_a_clear_error() {
    let h = hub(&[]);
    let a = leaf("site-a", "/site-a/**", &[&h], &[]);
    wait_up(&a, 1);
    let c = leaf("site-c", "/site-a/lights/*", &[&h], &[]);
    let deadline = Instant::now() + WITHIN;
    loop {
        let l = links(&c);
        let err = l
            .first()
            .and_then(|l| l["last_error"].as_str())
            .unwrap_or("")
            .to_string();
        if err.contains("overlaps '/site-a/**' owned by 'site-a'") {
            break;
        }
        assert!(Instant::now() < deadline, "no refusal seen: {l:#?}");
        std::thread::sleep(Duration::from_millis(50));
    }
    // The refused leaf is not part of the federation; the hub still serves site-a.
    assert!(links(&h)
        .iter()
        .all(|l| l["peer"] != "site-c" || l["state"] != "up"));
    wait_up(&a, 1);
}

#[test]
fn a_chain_of_relays_forwards_both_ways() {
    // top <- mid <- leaf: mid is a leaf of top and the hub of leaf.
    let top = Relay::start(&[
        "--federation-id",
        "top",
        "--federation-namespace",
        "/top/**",
    ]);
    let mid = leaf("mid", "/mid/**", &[&top], &[]);
    let low = leaf("low", "/low/**", &[&mid], &[]);
    wait_up(&low, 1);
    wait_up(&mid, 2);
    rt().block_on(async {
        let ct = connect(&top).await;
        let cl = connect(&low).await;
        cl.set("/low/v", 1).await.expect("owner write");
        eventually(&ct, "/low/v", Value::Int(1)).await;
        assert_eq!(ct.set("/low/v", 2).await.expect("forwarded two hops"), 2);
        assert_eq!(cl.get("/low/v").await.expect("reads").value, Value::Int(2));
        ct.set("/top/t", 5).await.expect("top's own");
        eventually(&cl, "/top/t", Value::Int(5)).await;
        assert_eq!(cl.set("/top/t", 6).await.expect("forwarded up two hops"), 2);
        eventually(&ct, "/top/t", Value::Int(6)).await;
    });
}

#[test]
fn a_shared_federation_token_is_required_from_leaves() {
    let dir = auth::temp_dir("fed-token");
    let good = dir.join("good");
    let bad = dir.join("bad");
    std::fs::write(&good, "s3cret-federation\n").expect("writes");
    std::fs::write(&bad, "wrong").expect("writes");
    let (g, b) = (
        good.to_string_lossy().to_string(),
        bad.to_string_lossy().to_string(),
    );
    let h = hub(&["--federation-token", &g]);
    let ok = leaf("site-a", "/site-a/**", &[&h], &["--federation-token", &g]);
    let refused = leaf("site-b", "/site-b/**", &[&h], &["--federation-token", &b]);
    wait_up(&ok, 1);
    let deadline = Instant::now() + WITHIN;
    loop {
        let l = links(&refused);
        let err = l
            .first()
            .and_then(|l| l["last_error"].as_str())
            .unwrap_or("")
            .to_string();
        if err.contains("wrong federation token") || err.contains("authentication failed") {
            break;
        }
        assert!(Instant::now() < deadline, "no refusal seen: {l:#?}");
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(links(&h).iter().all(|l| l["peer"] != "site-b"));
}

#[test]
fn a_leaf_fails_over_to_its_second_hub() {
    let h1 = hub(&[]);
    let h2 = Relay::start(&["--federation-id", "hub-2"]);
    let a = leaf("site-a", "/site-a/**", &[&h1, &h2], &[]);
    let b = leaf("site-b", "/site-b/**", &[&h1, &h2], &[]);
    wait_up(&a, 1);
    wait_up(&b, 1);
    drop(h1);
    let deadline = Instant::now() + WITHIN;
    loop {
        let on_second = |r: &Relay| {
            links(r)
                .iter()
                .any(|l| l["state"] == "up" && l["url"].as_str() == Some(h2.url().as_str()))
        };
        if on_second(&a) && on_second(&b) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "leaves did not move to the second hub: {:#?}",
            links(&a)
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    rt().block_on(async {
        let ca = connect(&a).await;
        let cb = connect(&b).await;
        ca.set("/site-a/after-failover", true)
            .await
            .expect("writes");
        eventually(&cb, "/site-a/after-failover", Value::Bool(true)).await;
        assert_eq!(
            cb.set("/site-a/after-failover", false)
                .await
                .expect("forwarded"),
            2
        );
    });
}

#[test]
fn a_restarted_leaf_with_persistence_resyncs_both_ways() {
    let dir = auth::temp_dir("fed-persist");
    let state = dir.join("a.redb");
    let s = state.to_string_lossy().to_string();
    let h = hub(&[]);
    let b = leaf("site-b", "/site-b/**", &[&h], &[]);
    let persist = ["--journal", s.as_str()];
    let a = leaf("site-a", "/site-a/**", &[&h], &persist);
    wait_up(&a, 1);
    wait_up(&b, 1);
    rt().block_on(async {
        let ca = connect(&a).await;
        for i in 1..=3 {
            ca.set("/site-a/kept", i).await.expect("durable write");
        }
    });
    // SIGKILL: nothing is flushed on the way out.
    let mut a = a;
    let _ = a.child.kill();
    let _ = a.child.wait();
    rt().block_on(async {
        let cb = connect(&b).await;
        cb.set("/site-b/while-a-was-down", "news")
            .await
            .expect("B writes");
    });
    // Same id, same file, new port.
    let a = leaf("site-a", "/site-a/**", &[&h], &persist);
    wait_up(&a, 1);
    rt().block_on(async {
        let ca = connect(&a).await;
        let cb = connect(&b).await;
        eventually(&ca, "/site-b/while-a-was-down", Value::from("news")).await;
        let p = ca.get("/site-a/kept").await.expect("restored");
        assert_eq!((p.value, p.revision), (Value::Int(3), 3));
        assert_eq!(cb.get("/site-a/kept").await.expect("mirrored").revision, 3);
        assert_eq!(
            ca.set("/site-a/kept", 4)
                .await
                .expect("revisions keep growing"),
            4
        );
        eventually(&cb, "/site-a/kept", Value::Int(4)).await;
    });
}

/// A network namespace with a veth pair to the test's own namespace (`10.231.N.1` here,
/// `10.231.N.2` inside); deleted on drop, also when the test panics.
struct Netns {
    name: String,
    host_if: String,
    inner_if: String,
    host_ip: String,
    inner_ip: String,
}

fn ip(args: &[&str]) {
    let out = std::process::Command::new("ip")
        .args(args)
        .output()
        .expect("runs ip");
    assert!(
        out.status.success(),
        "ip {} failed: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn tc(args: &[&str]) {
    let out = std::process::Command::new("tc")
        .args(args)
        .output()
        .expect("runs tc");
    assert!(
        out.status.success(),
        "tc {} failed: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
}

impl Netns {
    fn new() -> Netns {
        let n = std::process::id() % 250 + 1;
        let name = format!("clasp-fed-{}", std::process::id());
        let ns = Netns {
            host_if: format!("cfh{}", std::process::id() % 1_000_000),
            inner_if: format!("cfn{}", std::process::id() % 1_000_000),
            host_ip: format!("10.231.{n}.1"),
            inner_ip: format!("10.231.{n}.2"),
            name,
        };
        ip(&["netns", "add", &ns.name]);
        ip(&[
            "link",
            "add",
            &ns.host_if,
            "type",
            "veth",
            "peer",
            "name",
            &ns.inner_if,
        ]);
        ip(&["link", "set", &ns.inner_if, "netns", &ns.name]);
        ip(&[
            "addr",
            "add",
            &format!("{}/30", ns.host_ip),
            "dev",
            &ns.host_if,
        ]);
        ip(&["link", "set", &ns.host_if, "up"]);
        ns.exec_ip(&[
            "addr",
            "add",
            &format!("{}/30", ns.inner_ip),
            "dev",
            &ns.inner_if,
        ]);
        ns.exec_ip(&["link", "set", &ns.inner_if, "up"]);
        ns.exec_ip(&["link", "set", "lo", "up"]);
        ns
    }

    fn exec_ip(&self, args: &[&str]) {
        let mut full = vec!["netns", "exec", &self.name, "ip"];
        full.extend_from_slice(args);
        ip(&full);
    }

    /// A command run inside the namespace.
    fn command(&self, program: &str) -> std::process::Command {
        let mut c = std::process::Command::new("ip");
        c.args(["netns", "exec", &self.name, program]);
        c
    }

    /// Delay and loss on both ends of the link (tc netem), or none.
    fn impair(&self, netem: Option<&str>) {
        for (inside, dev) in [(false, &self.host_if), (true, &self.inner_if)] {
            let mut args: Vec<String> = Vec::new();
            if inside {
                args.extend(["netns", "exec", &self.name, "tc"].map(String::from));
            }
            match netem {
                Some(spec) => {
                    args.extend(
                        ["qdisc", "replace", "dev", dev, "root", "netem"].map(String::from),
                    );
                    args.extend(spec.split_whitespace().map(String::from));
                }
                None => args.extend(["qdisc", "del", "dev", dev, "root"].map(String::from)),
            }
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            if inside {
                ip(&args);
            } else {
                tc(&args);
            }
        }
    }

    /// Whether the kernel has the netem qdisc (some VM kernels are built without it).
    fn has_netem(&self) -> bool {
        let probe = std::process::Command::new("tc")
            .args([
                "qdisc",
                "add",
                "dev",
                &self.host_if,
                "root",
                "netem",
                "delay",
                "1ms",
            ])
            .output()
            .is_ok_and(|o| o.status.success());
        if probe {
            let _ = std::process::Command::new("tc")
                .args(["qdisc", "del", "dev", &self.host_if, "root"])
                .status();
        }
        probe
    }

    /// Cuts (or restores) the link: both ends see the carrier go.
    fn cut(&self, down: bool) {
        ip(&[
            "link",
            "set",
            &self.host_if,
            if down { "down" } else { "up" },
        ]);
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = std::process::Command::new("ip")
            .args(["link", "del", &self.host_if])
            .status();
        let _ = std::process::Command::new("ip")
            .args(["netns", "del", &self.name])
            .status();
    }
}

/// A relay bound to `host` (the common harness binds 127.0.0.1), optionally inside `ns`.
fn relay_on(ns: Option<&Netns>, host: &str, extra: &[&str]) -> Relay {
    let port = free_port();
    let bin = env!("CARGO_BIN_EXE_clasp");
    let mut cmd = match ns {
        Some(ns) => ns.command(bin),
        None => std::process::Command::new(bin),
    };
    cmd.args([
        "relay",
        "--host",
        host,
        "--ws-port",
        &port.to_string(),
        "--log-level",
        "warn",
    ])
    .args(extra)
    .stdin(std::process::Stdio::null())
    .stdout(std::process::Stdio::null());
    let child = cmd.spawn().expect("the relay starts");
    let relay = Relay { child, port };
    // Health answers once it listens (checked from inside the namespace when there is one).
    let deadline = Instant::now() + WITHIN;
    loop {
        let url = format!(
            "http://{}:{}/health",
            if host == "0.0.0.0" { "127.0.0.1" } else { host },
            port
        );
        let up = match ns {
            Some(ns) => ns
                .command("curl")
                .args(["-sf", "-o", "/dev/null", &url])
                .status()
                .is_ok_and(|s| s.success()),
            None => ureq::get(&url)
                .timeout(Duration::from_secs(1))
                .call()
                .is_ok(),
        };
        if up {
            return relay;
        }
        assert!(
            Instant::now() < deadline,
            "relay on {host}:{port} never listened"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// `clasp get` run inside `ns` against a relay there: the value as JSON text, if any.
fn get_in(ns: &Netns, port: u16, address: &str) -> Option<String> {
    let out = ns
        .command(env!("CARGO_BIN_EXE_clasp"))
        .args([
            "--url",
            &format!("ws://127.0.0.1:{port}"),
            "--timeout",
            "2",
            "get",
            address,
        ])
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    out.status.success().then_some(text)
}

fn set_in(ns: &Netns, port: u16, address: &str, value: &str) {
    let out = ns
        .command(env!("CARGO_BIN_EXE_clasp"))
        .args([
            "--url",
            &format!("ws://127.0.0.1:{port}"),
            "set",
            address,
            value,
        ])
        .output()
        .expect("runs clasp set");
    assert!(
        out.status.success(),
        "clasp set failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn a_partitioned_site_keeps_working_and_both_sides_converge_when_it_heals() {
    let ns = Netns::new();
    // The hub listens on our end of the veth; leaf B beside it, leaf A inside the namespace.
    let h = relay_on(None, &ns.host_ip, &["--federation-id", "hub"]);
    let hub_url = format!("ws://{}:{}", ns.host_ip, h.port);
    let fed = |id: &'static str, n: &'static str| {
        vec![
            "--federation-id".to_string(),
            id.to_string(),
            "--federation-namespace".to_string(),
            n.to_string(),
            "--federation-hub".to_string(),
            hub_url.clone(),
            "--federation-timeout".to_string(),
            "800".to_string(),
        ]
    };
    let a_args = fed("site-a", "/site-a/**");
    let a = relay_on(
        Some(&ns),
        "0.0.0.0",
        &a_args.iter().map(String::as_str).collect::<Vec<_>>(),
    );
    let b_args = fed("site-b", "/site-b/**");
    let b = relay_on(
        None,
        "127.0.0.1",
        &b_args.iter().map(String::as_str).collect::<Vec<_>>(),
    );
    wait_up(&b, 1);
    wait_up_at(&ns.host_ip, &h, 2);

    // A slow, lossy link (30 ms each way, 3 % loss) where the kernel has netem: every
    // write still arrives, in order.
    let netem = ns.has_netem();
    if netem {
        ns.impair(Some("delay 30ms loss 3%"));
    } else {
        eprintln!("NOTE: this kernel has no sch_netem; the lossy-link phase runs unimpaired");
    }
    for i in 1..=20 {
        set_in(&ns, a.port, "/site-a/fader", &i.to_string());
    }
    rt().block_on(async {
        let cb = connect(&b).await;
        assert_eq!(eventually(&cb, "/site-a/fader", Value::Int(20)).await, 20);
    });
    if netem {
        ns.impair(None);
    }

    // Cut the site off; both sides keep serving their own clients.
    ns.cut(true);
    set_in(
        &ns,
        a.port,
        "/site-a/during",
        "\"written on a while cut off\"",
    );
    rt().block_on(async {
        let cb = connect(&b).await;
        cb.set("/site-b/during", "written on b while a was cut off")
            .await
            .expect("B's own namespace is unaffected");
        // A's namespace is unreachable from B: refused, never silently kept.
        assert_eq!(code_of(cb.set("/site-a/during", "from b").await), 502);
    });
    // Long enough for both ends to declare the link dead (6 s of silence).
    std::thread::sleep(Duration::from_secs(8));
    ns.cut(false);

    let deadline = Instant::now() + Duration::from_secs(45);
    loop {
        let on_a = get_in(&ns, a.port, "/site-b/during").unwrap_or_default();
        let on_b = rt().block_on(async {
            let cb = connect(&b).await;
            cb.get("/site-a/during").await.ok().map(|p| p.value)
        });
        if on_a.contains("written on b") && on_b == Some(Value::from("written on a while cut off"))
        {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no convergence after the heal: on A {on_a:?}, on B {on_b:?}; links of A: {:#?}",
            links(&b)
        );
        std::thread::sleep(Duration::from_millis(250));
    }
    // The owner's value won on both sides, with the owner's revision.
    let on_a = get_in(&ns, a.port, "/site-a/during").unwrap_or_default();
    assert!(
        on_a.contains("written on a while cut off") && on_a.contains("revision 1"),
        "{on_a}"
    );
}

#[test]
fn link_state_lag_and_sync_show_in_metrics_and_readiness() {
    // A leaf whose hub is not there yet is not ready, and says why.
    let hub_port = free_port();
    let hub_url = format!("ws://127.0.0.1:{hub_port}");
    let a = Relay::start(&[
        "--federation-id",
        "site-a",
        "--federation-namespace",
        "/site-a/**",
        "--federation-hub",
        &hub_url,
    ]);
    let ready = || match ureq::get(&format!("http://127.0.0.1:{}/ready", a.port))
        .timeout(Duration::from_secs(2))
        .call()
    {
        Ok(r) => (r.status(), r.into_string().unwrap_or_default()),
        Err(ureq::Error::Status(code, r)) => (code, r.into_string().unwrap_or_default()),
        Err(e) => panic!("GET /ready: {e}"),
    };
    let (code, body) = ready();
    assert_eq!(code, 503, "{body}");
    assert!(body.contains("federation uplink"), "{body}");
    let down = scrape_metrics(a.port);
    let label = format!("peer=,role=uplink,url={hub_url}");
    assert_eq!(
        down.get(&format!("clasp_federation_link_up{{{label}}}")),
        Some(&0.0),
        "{down:?}"
    );

    // The hub comes up on that port: the leaf syncs, becomes ready, and the link's figures show.
    let mut h = Command::new(env!("CARGO_BIN_EXE_clasp"));
    h.args([
        "relay",
        "--host",
        "127.0.0.1",
        "--ws-port",
        &hub_port.to_string(),
        "--log-level",
        "warn",
        "--federation-id",
        "hub",
    ]);
    let h = Relay {
        child: h.spawn().expect("hub starts"),
        port: hub_port,
    };
    wait_up(&a, 1);
    let deadline = Instant::now() + WITHIN;
    while ready().0 != 200 {
        assert!(Instant::now() < deadline, "never ready: {:?}", ready());
        std::thread::sleep(Duration::from_millis(100));
    }
    // A PING round trip (every 2 s) gives the lag.
    std::thread::sleep(Duration::from_millis(2500));
    let up = scrape_metrics(a.port);
    let label = format!("peer=hub,role=uplink,url={hub_url}");
    assert_eq!(
        up.get(&format!("clasp_federation_link_up{{{label}}}")),
        Some(&1.0),
        "{up:?}"
    );
    assert!(up
        .get(&format!("clasp_federation_link_lag_seconds{{{label}}}"))
        .is_some_and(|v| *v > 0.0 && *v < 1.0));
    let synced = up
        .get(&format!(
            "clasp_federation_last_sync_timestamp_seconds{{{label}}}"
        ))
        .copied()
        .unwrap_or(0.0);
    assert!(synced > 1.7e9, "a Unix time: {synced}");
    assert!(up
        .get(&format!("clasp_federation_connects_total{{{label}}}"))
        .is_some_and(|v| *v >= 1.0));
    let hub_side = scrape_metrics(h.port);
    assert!(
        hub_side.iter().any(|(k, v)| k
            .starts_with("clasp_federation_link_up{peer=site-a,role=downlink")
            && *v == 1.0),
        "{hub_side:?}"
    );
    drop(h);
    // Losing the hub later does not make the site unready: it keeps serving its clients.
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(ready().0, 200);
}

#[test]
fn with_auth_a_leaf_needs_a_token_scoped_to_the_namespaces_it_declares() {
    let h = auth::AuthRelay::start("fed-auth-hub", &["--federation-id", "hub"]);
    let token = |scopes: &[&str]| {
        let (status, body) = h.post(
            "/auth/guest",
            serde_json::json!({ "scopes": scopes }),
            Some(&h.admin),
        );
        assert_eq!(status, 200, "{body}");
        body["token"].as_str().expect("token").to_string()
    };
    let dir = auth::temp_dir("fed-auth-leaves");
    let good = dir.join("a.token");
    std::fs::write(
        &good,
        token(&["read:/site-a/**", "write:/site-a/**", "read:/site-b/**"]),
    )
    .expect("writes");
    let narrow = dir.join("b.token");
    std::fs::write(&narrow, token(&["read:/site-b/**"])).expect("writes");
    let (g, n) = (
        good.to_string_lossy().to_string(),
        narrow.to_string_lossy().to_string(),
    );
    let a = leaf(
        "site-a",
        "/site-a/**",
        &[&h.relay],
        &["--federation-token", &g],
    );
    let b = leaf(
        "site-b",
        "/site-b/**",
        &[&h.relay],
        &["--federation-token", &n],
    );
    wait_up(&a, 1);
    // Read-only on its namespace: B may not own it.
    let deadline = Instant::now() + WITHIN;
    loop {
        let err = links(&b)
            .first()
            .and_then(|l| l["last_error"].as_str().map(str::to_string))
            .unwrap_or_default();
        if err.contains("403") && err.contains("insufficient scope for namespace: /site-b/**") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no scope refusal: {:#?}",
            links(&b)
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    // A's token works end to end: its writes reach a hub client with an admin token.
    rt().block_on(async {
        let ca = connect(&a).await;
        ca.set("/site-a/authed", 1).await.expect("writes");
        let admin = auth::connect(&h.relay.url(), &h.admin)
            .await
            .expect("admin connects");
        eventually(&admin, "/site-a/authed", Value::Int(1)).await;
    });
}
