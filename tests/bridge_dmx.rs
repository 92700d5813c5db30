//! The DMX bridge against a pty pair made by socat, with an independent Python peer
//! (`tests/bridges/dmx_peer.py`, pyserial) playing the USB interface: it checks the ENTTEC
//! Pro and Open DMX framing byte for byte and feeds Pro input frames (labels 5 and 9).
//! Unplugging is shown by killing socat (the pty vanishes) and starting it again.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use clasp::Client;
use clasp_proto::Value;
use common::*;
use serde_json::Value as Json;

const WAIT: Duration = Duration::from_secs(5);

/// `socat pty,link=A pty,link=B`: a serial line whose ends are A (the bridge) and B (the peer).
struct Socat {
    child: Child,
    a: PathBuf,
    b: PathBuf,
}

impl Socat {
    fn start(dir: &Path) -> Socat {
        let (a, b) = (dir.join("dmxA"), dir.join("dmxB"));
        let child = Command::new("socat")
            .arg(format!("pty,raw,echo=0,link={}", a.display()))
            .arg(format!("pty,raw,echo=0,link={}", b.display()))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("socat starts (scripts/setup.sh installs it)");
        let s = Socat { child, a, b };
        let end = Instant::now() + WAIT;
        while !(s.a.exists() && s.b.exists()) {
            assert!(
                Instant::now() < end,
                "socat made no pty pair within {WAIT:?}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        s
    }

    /// Pulls the plug: socat exits, both ptys and their links vanish.
    fn unplug(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let end = Instant::now() + WAIT;
        while self.a.exists() && Instant::now() < end {
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = std::fs::remove_file(&self.a);
        let _ = std::fs::remove_file(&self.b);
    }
}

impl Drop for Socat {
    fn drop(&mut self) {
        self.unplug();
    }
}

/// The Python interface peer on end B.
struct Peer {
    child: Child,
    stdin: ChildStdin,
    lines: mpsc::Receiver<Json>,
}

impl Peer {
    fn start(mode: &str, device: &Path) -> Peer {
        let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/bridges/dmx_peer.py");
        let mut child = Command::new("python3")
            .arg(script)
            .args([mode, &device.display().to_string()])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("python3 starts");
        let stdin = child.stdin.take().expect("piped stdin");
        let out = child.stdout.take().expect("piped stdout");
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                let v =
                    serde_json::from_str(&line).unwrap_or_else(|e| panic!("peer: {line:?}: {e}"));
                if tx.send(v).is_err() {
                    break;
                }
            }
        });
        let p = Peer {
            child,
            stdin,
            lines,
        };
        let first = p.lines.recv_timeout(WAIT).expect("the peer starts");
        assert_eq!(first["ready"], true, "{first}");
        p
    }

    /// Sends raw bytes to the bridge.
    fn send(&mut self, bytes: &[u8]) {
        let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        writeln!(self.stdin, "{hex}").expect("peer stdin");
        self.stdin.flush().expect("peer stdin");
    }

    /// The next frame whose slots satisfy `want`, within `within`; framing errors fail.
    fn frame_where(&self, within: Duration, want: impl Fn(&[u64]) -> bool) -> Vec<u64> {
        let end = Instant::now() + within;
        while let Some(left) = end.checked_duration_since(Instant::now()) {
            let Ok(v) = self.lines.recv_timeout(left) else {
                break;
            };
            assert!(v.get("error").is_none(), "framing error: {v}");
            let slots: Vec<u64> = v["slots"]
                .as_array()
                .unwrap_or_else(|| panic!("not a frame: {v}"))
                .iter()
                .filter_map(Json::as_u64)
                .collect();
            if want(&slots) {
                return slots;
            }
        }
        panic!("no matching DMX frame within {within:?}");
    }

    /// Frames received in `window`; framing errors fail.
    fn count(&self, window: Duration) -> usize {
        let end = Instant::now() + window;
        let mut n = 0;
        while let Some(left) = end.checked_duration_since(Instant::now()) {
            match self.lines.recv_timeout(left) {
                Ok(v) => {
                    assert!(v.get("error").is_none(), "framing error: {v}");
                    n += 1;
                }
                Err(_) => break,
            }
        }
        n
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("clasp-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
}

/// One sample of the relay's /metrics page (`None` if absent).
fn metric(port: u16, key: &str) -> Option<f64> {
    let page = ureq::get(&format!("http://127.0.0.1:{port}/metrics"))
        .call()
        .ok()?
        .into_string()
        .ok()?;
    page.lines()
        .find_map(|l| l.strip_prefix(key)?.trim().parse().ok())
}

/// Waits until the metric has `want` (bounded).
fn wait_metric(port: u16, key: &str, want: impl Fn(f64) -> bool) -> f64 {
    let end = Instant::now() + Duration::from_secs(10);
    loop {
        let v = metric(port, key);
        if let Some(v) = v.filter(|v| want(*v)) {
            return v;
        }
        assert!(Instant::now() < end, "{key} is {v:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// ENTTEC Pro message by hand (label, data).
fn pro_msg(label: u8, data: &[u8]) -> Vec<u8> {
    let len = data.len() as u16;
    let mut m = vec![0x7E, label];
    m.extend_from_slice(&len.to_le_bytes());
    m.extend_from_slice(data);
    m.push(0xE7);
    m
}

const UP: &str = "clasp_bridge_up{bridge=\"dmx:/dmx\",kind=\"dmx\"}";
const BAD: &str = "clasp_bridge_bad_input_total{bridge=\"dmx:/dmx\",kind=\"dmx\"}";

#[test]
fn pro_output_is_framed_exactly_and_input_frames_become_sets() {
    let dir = temp_dir("dmx-pro");
    let socat = Socat::start(&dir);
    let mut peer = Peer::start("pro", &socat.b);
    let a = socat.a.display().to_string();
    let relay = Relay::start(&["--dmx-port", &a]);
    wait_metric(relay.port, UP, |v| v == 1.0);
    let rt = runtime();
    let c: Client = rt.block_on(async {
        Client::builder(relay.url())
            .name("dmx-test")
            .connect()
            .await
            .expect("connects")
    });

    // Output: a whole 512-slot label 6 frame with the levels set (the peer checks framing).
    rt.block_on(async {
        c.set("/dmx/1", 255i64).await.expect("set");
        c.set("/dmx/512", 7i64).await.expect("set");
        c.set("/dmx/100", 0.6f64 * 255.0).await.expect("set");
    });
    // A change goes out at once, so the three may arrive in more than one frame.
    let slots = peer.frame_where(WAIT, |s| {
        s.first() == Some(&255) && s.get(511) == Some(&7) && s.get(99) == Some(&153)
    });
    assert_eq!(slots.len(), 512);
    assert!(slots
        .iter()
        .enumerate()
        .all(|(i, l)| [0, 99, 511].contains(&i) || *l == 0));
    // Idle: the keep-alive still sends a frame at least once a second.
    let idle = peer.count(Duration::from_millis(2500));
    assert!(idle >= 2, "{idle} frames in 2.5 s of idle");
    // Moving levels: frames follow at the refresh rate (figure printed, not asserted).
    let start = Instant::now();
    rt.block_on(async {
        for i in 0..40i64 {
            c.set("/dmx/2", i).await.expect("set");
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    });
    let moving = peer.count(Duration::from_millis(100));
    eprintln!(
        "dmx pro: {idle} idle frames in 2.5 s; frames while moving: {:?} (+{moving} after)",
        start.elapsed()
    );
    peer.frame_where(WAIT, |s| s.get(1) == Some(&39));

    // Input: label 5 (whole frame) and label 9 (change of state) become SETs.
    let mut sub = rt.block_on(async { c.subscribe("/dmx/**").await.expect("subscribes") });
    peer.send(&pro_msg(5, &[0, 0, 10, 20, 30]));
    let mut seen = std::collections::HashMap::new();
    rt.block_on(async {
        let end = tokio::time::Instant::now() + WAIT;
        while seen.get("/dmx/3") != Some(&Value::Int(30)) {
            let Ok(Some(u)) = tokio::time::timeout_at(end, sub.next()).await else {
                break;
            };
            seen.insert(u.address.as_str().to_string(), u.value);
        }
    });
    assert_eq!(seen.get("/dmx/1"), Some(&Value::Int(10)), "{seen:?}");
    assert_eq!(seen.get("/dmx/2"), Some(&Value::Int(20)), "{seen:?}");
    assert_eq!(seen.get("/dmx/3"), Some(&Value::Int(30)), "{seen:?}");
    // Label 9: start block 0, bit 5 → channel 5 = 99; block 1 bit 1 → channel 9 = 42.
    peer.send(&pro_msg(9, &[0, 0b0010_0000, 0, 0, 0, 0, 99]));
    peer.send(&pro_msg(9, &[1, 0b10, 0, 0, 0, 0, 42]));
    let got = rt.block_on(async {
        let mut got = Vec::new();
        let end = tokio::time::Instant::now() + WAIT;
        while got.len() < 2 {
            let Ok(Some(u)) = tokio::time::timeout_at(end, sub.next()).await else {
                break;
            };
            if u.address.as_str() != "/dmx/1" {
                got.push((u.address.as_str().to_string(), u.value));
            }
        }
        got
    });
    assert_eq!(
        got,
        [
            ("/dmx/5".to_string(), Value::Int(99)),
            ("/dmx/9".to_string(), Value::Int(42))
        ]
    );

    // Bad input: stray bytes, an impossible length, a short label 9, a missing end byte,
    // a receive error status; all counted, and the next good frame still goes through.
    let before = metric(relay.port, BAD).unwrap_or(0.0);
    peer.send(&[1, 2, 3]);
    peer.send(&[0x7E, 5, 0xFF, 0xFF]);
    peer.send(&pro_msg(9, &[0, 1]));
    peer.send(&[0x7E, 5, 3, 0, 0, 0, 1, 0x00]);
    peer.send(&pro_msg(5, &[2, 0, 1]));
    peer.send(&pro_msg(5, &[0, 0, 11]));
    let u = rt.block_on(async {
        let end = tokio::time::Instant::now() + WAIT;
        loop {
            let Ok(Some(u)) = tokio::time::timeout_at(end, sub.next()).await else {
                return None;
            };
            if u.address.as_str() == "/dmx/1" {
                return Some(u.value);
            }
        }
    });
    assert_eq!(u, Some(Value::Int(11)));
    let after = wait_metric(relay.port, BAD, |v| v >= before + 5.0);
    assert!(after >= before + 5.0);
    assert_eq!(
        metric(relay.port, UP),
        Some(1.0),
        "bad input never takes the bridge down"
    );
}

#[test]
fn open_dmx_sends_513_byte_frames_continuously_standalone() {
    let dir = temp_dir("dmx-open");
    let socat = Socat::start(&dir);
    let peer = Peer::start("open", &socat.b);
    let relay = Relay::start(&[]);
    let a = socat.a.display().to_string();
    let mut bridge = Command::new(env!("CARGO_BIN_EXE_clasp"));
    bridge
        .args([
            "dmx",
            "--device",
            "open",
            "--direction",
            "output",
            "--port",
            &a,
            "--target",
            &relay.url(),
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit());
    let mut bridge = bridge.spawn().expect("clasp dmx starts");
    let rt = runtime();
    rt.block_on(async {
        let c = Client::builder(relay.url())
            .name("dmx-test")
            .connect()
            .await
            .expect("connects");
        c.set("/dmx/1", 200i64).await.expect("set");
        c.set("/dmx/3", 3i64).await.expect("set");
    });
    let slots = peer.frame_where(Duration::from_secs(10), |s| s.first() == Some(&200));
    assert_eq!(slots.len(), 512);
    assert_eq!(slots[2], 3);
    // Open DMX has no memory: frames keep coming while nothing changes.
    let n = peer.count(Duration::from_secs(1));
    eprintln!("open dmx: {n} frames in 1 s idle at --refresh 40");
    assert!(n >= 10, "only {n} frames in a second");
    let _ = bridge.kill();
    let _ = bridge.wait();
}

#[test]
fn an_unplugged_interface_is_reported_and_reopened_with_its_levels() {
    let dir = temp_dir("dmx-unplug");
    let mut socat = Socat::start(&dir);
    let peer = Peer::start("pro", &socat.b);
    let a = socat.a.display().to_string();
    let relay = Relay::start(&["--dmx-port", &a]);
    wait_metric(relay.port, UP, |v| v == 1.0);
    let rt = runtime();
    let c: Client = rt.block_on(async {
        Client::builder(relay.url())
            .name("dmx-test")
            .connect()
            .await
            .expect("connects")
    });
    rt.block_on(async { c.set("/dmx/1", 255i64).await.expect("set") });
    peer.frame_where(WAIT, |s| s.first() == Some(&255));

    drop(peer);
    socat.unplug();
    wait_metric(relay.port, UP, |v| v == 0.0);
    // Levels set while the interface is away are kept for when it returns.
    rt.block_on(async { c.set("/dmx/2", 9i64).await.expect("set") });
    std::thread::sleep(Duration::from_millis(1500));

    let socat = Socat::start(&dir);
    let peer = Peer::start("pro", &socat.b);
    wait_metric(relay.port, UP, |v| v == 1.0);
    let slots = peer.frame_where(Duration::from_secs(10), |s| {
        s.first() == Some(&255) && s.get(1) == Some(&9)
    });
    assert_eq!(slots.len(), 512);
    rt.block_on(async { c.set("/dmx/3", 33i64).await.expect("set") });
    peer.frame_where(WAIT, |s| s.get(2) == Some(&33));
}

#[test]
fn dmx_and_midi_tables_in_a_config_file_are_checked() {
    let dir = temp_dir("dmx-config");
    let good = dir.join("good.toml");
    std::fs::write(
        &good,
        "[[bridge]]\nkind = \"dmx\"\nport = \"/dev/ttyUSB0\"\ndevice = \"open\"\ndirection = \"output\"\nchannels = \"1-48\"\n\n\
         [[bridge]]\nkind = \"midi\"\ndevice = \"Launchpad\"\nnamespace = \"/midi/launchpad\"\nno_echo = true\ncc14 = [7]\n",
    )
    .expect("write");
    let out = Command::new(env!("CARGO_BIN_EXE_clasp"))
        .args(["config", "check"])
        .arg(&good)
        .output()
        .expect("runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("2 bridges"));
    for (bad, says) in [
        ("kind = \"dmx\"\nchannels = \"0-3\"", "channels"),
        (
            "kind = \"dmx\"\ndevice = \"open\"\ndirection = \"input\"",
            "direction",
        ),
        ("kind = \"midi\"\ncc14 = [40]", "cc14"),
        (
            "kind = \"midi\"\ndevice = \"a\"\nvirtual = \"b\"",
            "virtual",
        ),
    ] {
        let file = dir.join("bad.toml");
        std::fs::write(&file, format!("[[bridge]]\n{bad}\n")).expect("write");
        let out = Command::new(env!("CARGO_BIN_EXE_clasp"))
            .args(["config", "check"])
            .arg(&file)
            .output()
            .expect("runs");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success() && err.contains(says), "{bad}: {err}");
    }
}
