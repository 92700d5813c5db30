//! The MIDI bridge against independent peers: mido (Python) encoding and decoding bytes on
//! a raw byte stream (a socat pty pair, and a FIFO: FEATURES MIDI-8), and a second midir
//! client on a userspace JACK server (`jackd -d dummy`) the test starts under a name of its
//! own. Every mapping rule both ways; broken input counted, never fatal.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use clasp::Client;
use clasp_proto::Value;
use common::*;
use serde_json::{json, Value as Json};

const WAIT: Duration = Duration::from_secs(5);

struct Kill(Child);

impl Drop for Kill {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("clasp-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

/// A socat pty pair; returns (guard, bridge end, peer end).
fn pty_pair(dir: &Path) -> (Kill, PathBuf, PathBuf) {
    let (a, b) = (dir.join("midiA"), dir.join("midiB"));
    // Links a killed socat left behind.
    let _ = std::fs::remove_file(&a);
    let _ = std::fs::remove_file(&b);
    let child = Command::new("socat")
        .arg(format!("pty,raw,echo=0,link={}", a.display()))
        .arg(format!("pty,raw,echo=0,link={}", b.display()))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("socat starts");
    let guard = Kill(child);
    let end = Instant::now() + WAIT;
    while !(a.exists() && b.exists()) {
        assert!(Instant::now() < end, "no pty pair");
        std::thread::sleep(Duration::from_millis(20));
    }
    (guard, a, b)
}

/// The mido peer.
struct Peer {
    _child: Kill,
    stdin: ChildStdin,
    lines: mpsc::Receiver<Json>,
}

impl Peer {
    fn start(device: &Path, extra: &[&str]) -> Peer {
        let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/bridges/midi_peer.py");
        let mut child = Command::new("python3")
            .arg(script)
            .arg(device)
            .args(extra)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("python3 starts");
        let stdin = child.stdin.take().expect("stdin");
        let out = child.stdout.take().expect("stdout");
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                if tx
                    .send(serde_json::from_str(&line).unwrap_or(Json::Null))
                    .is_err()
                {
                    break;
                }
            }
        });
        let p = Peer {
            _child: Kill(child),
            stdin,
            lines,
        };
        assert_eq!(
            p.lines.recv_timeout(WAIT).expect("peer starts")["ready"],
            true
        );
        p
    }

    fn send(&mut self, msg: Json) {
        writeln!(self.stdin, "{msg}").expect("peer stdin");
        self.stdin.flush().expect("peer stdin");
    }

    fn next(&self) -> Json {
        self.lines
            .recv_timeout(WAIT)
            .expect("the peer received a MIDI message")
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
}

/// Emits an event and makes sure it left: the client only runs inside `block_on`, and an
/// emit has no answer, so a PING round trip follows it.
async fn emit(c: &Client, address: &str, value: impl Into<Value>) {
    c.emit(address, value).await.expect("emit");
    c.ping().await.expect("ping");
}

fn metric(port: u16, key: &str) -> Option<f64> {
    let page = ureq::get(&format!("http://127.0.0.1:{port}/metrics"))
        .call()
        .ok()?
        .into_string()
        .ok()?;
    page.lines()
        .find_map(|l| l.strip_prefix(key)?.trim().parse().ok())
}

fn wait_metric(port: u16, key: &str, want: impl Fn(f64) -> bool) {
    let end = Instant::now() + Duration::from_secs(10);
    loop {
        let v = metric(port, key);
        if v.is_some_and(&want) {
            return;
        }
        assert!(Instant::now() < end, "{key} is {v:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

const UP: &str = "clasp_bridge_up{bridge=\"midi:/midi\",kind=\"midi\"}";
const BAD: &str = "clasp_bridge_bad_input_total{bridge=\"midi:/midi\",kind=\"midi\"}";

/// A subscription to `{prefix}/**` that is known to be live: a probe param under it has come
/// back (events published before the relay registered it would be missed, params not).
/// `_probe` is no MIDI path, so the bridge does not send it to the device.
async fn subscribed(c: &Client, prefix: &str) -> clasp::Subscription {
    let mut sub = c
        .subscribe(&format!("{prefix}/**"))
        .await
        .expect("subscribes");
    let probe = format!("{prefix}/_probe");
    c.set(&probe, 1i64).await.expect("set");
    let end = tokio::time::Instant::now() + WAIT;
    loop {
        match tokio::time::timeout_at(end, sub.next()).await {
            Ok(Some(u)) if u.address.as_str() == probe => return sub,
            Ok(Some(_)) => {}
            _ => panic!("the subscription to {prefix}/** never delivered its probe"),
        }
    }
}

/// Collects updates until every `(address, value)` in `want` was seen (bounded).
async fn expect_all(sub: &mut clasp::Subscription, want: &[(&str, Value)]) {
    let mut missing: Vec<(String, Value)> = want
        .iter()
        .map(|(a, v)| (a.to_string(), v.clone()))
        .collect();
    let end = tokio::time::Instant::now() + WAIT;
    let mut seen = Vec::new();
    while !missing.is_empty() {
        let Ok(Some(u)) = tokio::time::timeout_at(end, sub.next()).await else {
            break;
        };
        let got = (u.address.as_str().to_string(), u.value.clone());
        missing.retain(|m| *m != got);
        seen.push(got);
    }
    assert!(missing.is_empty(), "missing {missing:?}; saw {seen:?}");
}

#[test]
fn raw_stream_maps_every_rule_both_ways_with_mido() {
    let dir = temp_dir("midi-raw");
    let (_socat, a, b) = pty_pair(&dir);
    let mut peer = Peer::start(&b, &[]);
    let relay = Relay::start(&["--midi-device", &a.display().to_string()]);
    wait_metric(relay.port, UP, |v| v == 1.0);
    let rt = runtime();
    let c = rt.block_on(async {
        Client::builder(relay.url())
            .name("midi-test")
            .connect()
            .await
            .expect("connects")
    });
    let mut sub = rt.block_on(subscribed(&c, "/midi"));

    // Inbound: mido encodes, the bridge maps.
    for m in [
        json!({"type": "control_change", "channel": 0, "control": 74, "value": 127}),
        json!({"type": "note_on", "channel": 1, "note": 60, "velocity": 127}),
        json!({"type": "note_off", "channel": 1, "note": 61, "velocity": 30}),
        json!({"type": "program_change", "channel": 2, "program": 5}),
        json!({"type": "pitchwheel", "channel": 0, "pitch": 0}),
        json!({"type": "aftertouch", "channel": 3, "value": 0}),
        json!({"type": "polytouch", "channel": 0, "note": 62, "value": 127}),
        json!({"type": "clock"}),
        json!({"type": "start"}),
        json!({"type": "continue"}),
        json!({"type": "stop"}),
        json!({"type": "sysex", "data": [1, 2, 3]}),
        json!({"type": "songpos", "pos": 128}),
        // Running status: two CCs after one status byte.
        json!({"raw": "b00740087f"}),
    ] {
        peer.send(m);
    }
    rt.block_on(expect_all(
        &mut sub,
        &[
            ("/midi/ch/1/cc/74", Value::Float(1.0)),
            ("/midi/ch/2/note/60", Value::Float(1.0)),
            ("/midi/ch/2/note/61", Value::Float(0.0)),
            ("/midi/ch/3/program", Value::Int(5)),
            ("/midi/ch/1/pitch", Value::Float(0.5)),
            ("/midi/ch/4/pressure", Value::Float(0.0)),
            ("/midi/ch/1/poly/62", Value::Float(1.0)),
            ("/midi/sys/clock", Value::Null),
            ("/midi/sys/start", Value::Null),
            ("/midi/sys/continue", Value::Null),
            ("/midi/sys/stop", Value::Null),
            ("/midi/sys/sysex", Value::Bytes(vec![1, 2, 3])),
            ("/midi/sys/songpos", Value::Int(128)),
            ("/midi/ch/1/cc/7", Value::Float(64.0 / 127.0)),
            ("/midi/ch/1/cc/8", Value::Float(1.0)),
        ],
    ));
    // The echo of our own values comes back to the device (no --no-echo): drain it.
    while peer.lines.recv_timeout(Duration::from_millis(500)).is_ok() {}

    // Broken input: an end of SysEx out of place (it also ends the running status), stray
    // data bytes, a note cut short, undefined status bytes; counted, and the stream goes on.
    let before = metric(relay.port, BAD).unwrap_or(0.0);
    peer.send(json!({"raw": "f70102903cf4f9"}));
    peer.send(json!({"type": "control_change", "channel": 0, "control": 1, "value": 0}));
    rt.block_on(expect_all(
        &mut sub,
        &[("/midi/ch/1/cc/1", Value::Float(0.0))],
    ));
    wait_metric(relay.port, BAD, |v| v >= before + 5.0);
    while peer.lines.recv_timeout(Duration::from_millis(300)).is_ok() {}

    // Outbound: CLASP writes become MIDI that mido decodes.
    rt.block_on(async {
        c.set("/midi/ch/1/cc/74", 0.5).await.expect("set");
    });
    assert_eq!(
        peer.next(),
        json!({"type": "control_change", "time": 0, "channel": 0, "control": 74, "value": 64})
    );
    rt.block_on(async { emit(&c, "/midi/ch/10/note/36", 1.0).await });
    assert_eq!(
        peer.next(),
        json!({"type": "note_on", "time": 0, "channel": 9, "note": 36, "velocity": 127})
    );
    rt.block_on(async { emit(&c, "/midi/ch/10/note/36", 0.0).await });
    assert_eq!(
        peer.next(),
        json!({"type": "note_off", "time": 0, "channel": 9, "note": 36, "velocity": 0})
    );
    rt.block_on(async { c.set("/midi/ch/1/pitch", 1.0).await.expect("set") });
    assert_eq!(
        peer.next(),
        json!({"type": "pitchwheel", "time": 0, "channel": 0, "pitch": 8191})
    );
    rt.block_on(async { c.set("/midi/ch/16/program", 42i64).await.expect("set") });
    assert_eq!(
        peer.next(),
        json!({"type": "program_change", "time": 0, "channel": 15, "program": 42})
    );
    rt.block_on(async { c.set("/midi/ch/1/pressure", 1.0).await.expect("set") });
    assert_eq!(
        peer.next(),
        json!({"type": "aftertouch", "time": 0, "channel": 0, "value": 127})
    );
    rt.block_on(async { c.set("/midi/ch/1/poly/5", 0.0).await.expect("set") });
    assert_eq!(
        peer.next(),
        json!({"type": "polytouch", "time": 0, "channel": 0, "note": 5, "value": 0})
    );
    rt.block_on(async { emit(&c, "/midi/sys/sysex", Value::Bytes(vec![0x7D, 1])).await });
    assert_eq!(
        peer.next(),
        json!({"type": "sysex", "time": 0, "data": [0x7D, 1]})
    );
    rt.block_on(async { emit(&c, "/midi/sys/start", Value::Null).await });
    assert_eq!(peer.next(), json!({"type": "start", "time": 0}));
    assert_eq!(metric(relay.port, UP), Some(1.0));
}

#[test]
fn no_echo_keeps_a_device_from_hearing_itself() {
    let dir = temp_dir("midi-noecho");
    let (_socat, a, b) = pty_pair(&dir);
    let mut peer = Peer::start(&b, &[]);
    let relay = Relay::start(&[]);
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_clasp"));
    cmd.args([
        "midi",
        "--no-echo",
        "--device",
        &a.display().to_string(),
        "--target",
        &relay.url(),
    ])
    .stdin(Stdio::null())
    .stdout(Stdio::null())
    .stderr(Stdio::inherit());
    let _bridge = Kill(cmd.spawn().expect("clasp midi starts"));
    let rt = runtime();
    let c = rt.block_on(async {
        Client::builder(relay.url())
            .name("midi-test")
            .connect()
            .await
            .expect("connects")
    });
    let mut sub = rt.block_on(subscribed(&c, "/midi"));
    // The standalone bridge connects a moment later: send until the router sees it.
    let end = Instant::now() + Duration::from_secs(10);
    loop {
        peer.send(json!({"type": "control_change", "channel": 0, "control": 20, "value": 127}));
        if rt
            .block_on(sub.next_within(Duration::from_millis(300)))
            .is_some()
        {
            break;
        }
        assert!(
            Instant::now() < end,
            "the standalone MIDI bridge never delivered"
        );
    }
    assert!(
        peer.lines.recv_timeout(Duration::from_millis(800)).is_err(),
        "the device heard its own CC back"
    );
    // A value from elsewhere still reaches it.
    rt.block_on(async { c.set("/midi/ch/1/cc/20", 0.0).await.expect("set") });
    assert_eq!(peer.next()["value"], 0);
}

#[test]
fn a_fifo_of_mido_bytes_feeds_the_bridge() {
    let dir = temp_dir("midi-fifo");
    let fifo = dir.join("in.midi");
    let status = Command::new("mkfifo").arg(&fifo).status().expect("mkfifo");
    assert!(status.success());
    let relay = Relay::start(&[
        "--midi-device",
        &fifo.display().to_string(),
        "--midi-namespace",
        "/midi/pad",
    ]);
    wait_metric(
        relay.port,
        "clasp_bridge_up{bridge=\"midi:/midi/pad\",kind=\"midi\"}",
        |v| v == 1.0,
    );
    let rt = runtime();
    let c = rt.block_on(async {
        Client::builder(relay.url())
            .name("midi-test")
            .connect()
            .await
            .expect("connects")
    });
    let mut sub = rt.block_on(subscribed(&c, "/midi/pad"));
    let mut peer = Peer::start(&fifo, &["--write-only"]);
    peer.send(json!({"type": "control_change", "channel": 0, "control": 74, "value": 127}));
    rt.block_on(expect_all(
        &mut sub,
        &[("/midi/pad/ch/1/cc/74", Value::Float(1.0))],
    ));
    drop(peer);
    // The writer went away; the next one is read all the same.
    let mut peer = Peer::start(&fifo, &["--write-only"]);
    peer.send(json!({"type": "note_on", "channel": 0, "note": 1, "velocity": 127}));
    rt.block_on(expect_all(
        &mut sub,
        &[("/midi/pad/ch/1/note/1", Value::Float(1.0))],
    ));
}

/// A JACK server of the test's own (`jackd -n NAME -d dummy`); clients find it by
/// `JACK_DEFAULT_SERVER`.
/// Stops the JACK server with SIGTERM (so it removes its shared-memory files), waiting at most
/// a few seconds before killing it.
struct Jack(Child);

impl Drop for Jack {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.0.id().to_string()])
            .status();
        let end = Instant::now() + WAIT;
        while Instant::now() < end {
            if let Ok(Some(_)) = self.0.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn jackd(name: &str) -> Jack {
    let child = Command::new("jackd")
        .args([
            "--no-realtime",
            "-n",
            name,
            "-d",
            "dummy",
            "-r",
            "48000",
            "-p",
            "256",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("jackd starts (scripts/setup.sh installs jackd2)");
    let guard = Jack(child);
    std::env::set_var("JACK_DEFAULT_SERVER", name);
    let end = Instant::now() + Duration::from_secs(10);
    while midir::MidiInput::new("probe").is_err() {
        assert!(Instant::now() < end, "the JACK server never came up");
        std::thread::sleep(Duration::from_millis(100));
    }
    guard
}

#[test]
fn jack_ports_both_ways_with_a_second_midir_client() {
    use midir::os::unix::{VirtualInput, VirtualOutput};
    let server = format!("clasp-test-{}", std::process::id());
    let _jack = jackd(&server);
    // The peer: a virtual output (what it plays) and a virtual input (what it hears).
    let out = midir::MidiOutput::new("peer").expect("JACK client");
    let mut play = out.create_virtual("desk").expect("virtual output");
    let (tx, heard) = mpsc::channel::<Vec<u8>>();
    let inp = midir::MidiInput::new("peer-in").expect("JACK client");
    let _hear = inp
        .create_virtual(
            "desk",
            move |_, bytes, _| {
                let _ = tx.send(bytes.to_vec());
            },
            (),
        )
        .expect("virtual input");

    let env = [("JACK_DEFAULT_SERVER", server.as_str())];
    let list = Command::new(env!("CARGO_BIN_EXE_clasp"))
        .args(["midi", "--list"])
        .envs(env)
        .output()
        .expect("runs");
    let text = String::from_utf8_lossy(&list.stdout);
    assert!(
        list.status.success() && text.contains("peer:desk"),
        "{text}"
    );

    let relay = Relay::start_with_env(&["--midi-device", "desk"], &env);
    wait_metric(relay.port, UP, |v| v == 1.0);
    let rt = runtime();
    let c = rt.block_on(async {
        Client::builder(relay.url())
            .name("midi-test")
            .connect()
            .await
            .expect("connects")
    });
    let mut sub = rt.block_on(subscribed(&c, "/midi"));
    play.send(&[0xB0, 74, 127]).expect("send");
    play.send(&[0x91, 60, 64]).expect("send");
    rt.block_on(expect_all(
        &mut sub,
        &[
            ("/midi/ch/1/cc/74", Value::Float(1.0)),
            ("/midi/ch/2/note/60", Value::Float(64.0 / 127.0)),
        ],
    ));
    while heard.recv_timeout(Duration::from_millis(500)).is_ok() {}
    rt.block_on(async { c.set("/midi/ch/1/cc/74", 0.5).await.expect("set") });
    assert_eq!(
        heard.recv_timeout(WAIT).expect("the peer hears the CC"),
        [0xB0, 74, 64]
    );
    rt.block_on(async { c.set("/midi/ch/1/pitch", 0.5).await.expect("set") });
    assert_eq!(
        heard.recv_timeout(WAIT).expect("the peer hears the bend"),
        [0xE0, 0, 0x40]
    );
}

#[test]
fn without_a_jack_server_the_failure_is_a_clear_message() {
    let out = Command::new(env!("CARGO_BIN_EXE_clasp"))
        .args(["midi", "--list"])
        .env(
            "JACK_DEFAULT_SERVER",
            format!("clasp-absent-{}", std::process::id()),
        )
        .env("JACK_NO_START_SERVER", "1")
        .output()
        .expect("runs");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "listing without a server succeeded");
    assert!(err.contains("JACK server"), "{err}");
    assert!(!err.contains("panicked"), "{err}");
}

#[test]
fn a_virtual_port_beside_a_device_each_in_its_own_namespace() {
    let server = format!("clasp-test-v-{}", std::process::id());
    let _jack = jackd(&server);
    let env = [("JACK_DEFAULT_SERVER", server.as_str())];
    // A device the embedded bridge opens, under /midi.
    let out = midir::MidiOutput::new("peer").expect("JACK client");
    use midir::os::unix::VirtualOutput;
    let mut device = out.create_virtual("keys").expect("virtual output");
    let relay = Relay::start_with_env(&["--midi-device", "keys"], &env);
    wait_metric(relay.port, UP, |v| v == 1.0);
    // A standalone bridge with a virtual port of its own, under /midi/v.
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_clasp"));
    cmd.args([
        "midi",
        "--virtual",
        "vport",
        "--namespace",
        "/midi/v",
        "--target",
        &relay.url(),
    ])
    .envs(env)
    .stdin(Stdio::null())
    .stdout(Stdio::null())
    .stderr(Stdio::inherit());
    let _bridge = Kill(cmd.spawn().expect("clasp midi starts"));
    // Another program connects to the virtual port, both ways.
    let find = |names: Vec<String>| names.into_iter().position(|n| n.contains("vport"));
    let end = Instant::now() + Duration::from_secs(10);
    let (to_v, from_v) = loop {
        let o = midir::MidiOutput::new("app").expect("JACK client");
        let i = midir::MidiInput::new("app-in").expect("JACK client");
        let on: Vec<String> = o
            .ports()
            .iter()
            .map(|p| o.port_name(p).unwrap_or_default())
            .collect();
        let inn: Vec<String> = i
            .ports()
            .iter()
            .map(|p| i.port_name(p).unwrap_or_default())
            .collect();
        if let (Some(a), Some(b)) = (find(on), find(inn)) {
            let op = o.ports().get(a).cloned().expect("port");
            let ip = i.ports().get(b).cloned().expect("port");
            let (tx, rx) = mpsc::channel::<Vec<u8>>();
            let conn_in = i
                .connect(
                    &ip,
                    "in",
                    move |_, bytes, _| {
                        let _ = tx.send(bytes.to_vec());
                    },
                    (),
                )
                .expect("connects to the virtual output");
            let conn_out = o
                .connect(&op, "out")
                .expect("connects to the virtual input");
            break ((conn_out, conn_in), rx);
        }
        assert!(Instant::now() < end, "the virtual port never appeared");
        std::thread::sleep(Duration::from_millis(100));
    };
    let (mut to_v, _keep) = to_v;
    let rt = runtime();
    let c = rt.block_on(async {
        Client::builder(relay.url())
            .name("midi-test")
            .connect()
            .await
            .expect("connects")
    });
    let mut sub = rt.block_on(subscribed(&c, "/midi"));
    device.send(&[0xB0, 1, 0]).expect("send");
    rt.block_on(expect_all(
        &mut sub,
        &[("/midi/ch/1/cc/1", Value::Float(0.0))],
    ));
    // The standalone bridge may still be connecting to the relay: send until it delivers.
    let end = Instant::now() + Duration::from_secs(10);
    loop {
        to_v.send(&[0xB2, 1, 127]).expect("send");
        let got = rt.block_on(sub.next_within(Duration::from_millis(300)));
        if got.is_some_and(|u| {
            u.address.as_str() == "/midi/v/ch/3/cc/1" && u.value == Value::Float(1.0)
        }) {
            break;
        }
        assert!(
            Instant::now() < end,
            "nothing from the virtual port reached the relay"
        );
    }
    while from_v.recv_timeout(Duration::from_millis(500)).is_ok() {}
    // A write under /midi/v reaches only the virtual port's listener.
    rt.block_on(async { c.set("/midi/v/ch/1/program", 3i64).await.expect("set") });
    assert_eq!(
        from_v.recv_timeout(WAIT).expect("the app hears it"),
        [0xC0, 3]
    );
}

#[test]
fn a_raw_device_that_vanishes_is_reported_and_reopened() {
    let dir = temp_dir("midi-unplug");
    let (socat, a, b) = pty_pair(&dir);
    let peer = Peer::start(&b, &[]);
    let relay = Relay::start(&["--midi-device", &a.display().to_string()]);
    wait_metric(relay.port, UP, |v| v == 1.0);
    drop(peer);
    drop(socat);
    wait_metric(relay.port, UP, |v| v == 0.0);
    let (_socat, a2, b) = pty_pair(&dir);
    assert_eq!(a, a2);
    let mut peer = Peer::start(&b, &[]);
    wait_metric(relay.port, UP, |v| v == 1.0);
    let rt = runtime();
    let c = rt.block_on(async {
        Client::builder(relay.url())
            .name("midi-test")
            .connect()
            .await
            .expect("connects")
    });
    let mut sub = rt.block_on(subscribed(&c, "/midi"));
    peer.send(json!({"type": "control_change", "channel": 0, "control": 9, "value": 127}));
    rt.block_on(expect_all(
        &mut sub,
        &[("/midi/ch/1/cc/9", Value::Float(1.0))],
    ));
    let restarts = metric(
        relay.port,
        "clasp_bridge_restarts_total{bridge=\"midi:/midi\",kind=\"midi\"}",
    );
    assert!(restarts.is_some_and(|r| r >= 1.0), "{restarts:?}");
}
