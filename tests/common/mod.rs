//! Shared harness of the end-to-end tests: the real `clasp` binary as a relay on a free
//! loopback port (stopped on drop, also when a test panics), and running the official
//! clients' scenario scripts with a timeout.
#![allow(dead_code)]

pub mod auth;

use std::io::Read;
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// How long a relay may take to accept TCP connections after it was started.
pub const STARTUP: Duration = Duration::from_secs(10);

/// A running relay process; killed when dropped.
pub struct Relay {
    pub child: Child,
    pub port: u16,
}

impl Relay {
    /// Starts `clasp relay --host 127.0.0.1 --ws-port <free port> --log-level warn <extra>`
    /// and waits (at most [`STARTUP`]) until it accepts TCP connections. Panics if the
    /// process exits first or never listens.
    pub fn start(extra: &[&str]) -> Relay {
        Self::start_with_env(extra, &[])
    }

    /// [`Relay::start`] with extra environment variables.
    pub fn start_with_env(extra: &[&str], env: &[(&str, &str)]) -> Relay {
        let port = free_port();
        let child = Command::new(env!("CARGO_BIN_EXE_clasp"))
            .envs(env.iter().copied())
            .args([
                "relay",
                "--host",
                "127.0.0.1",
                "--ws-port",
                &port.to_string(),
            ])
            .args(["--log-level", "warn"])
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("the clasp binary starts");
        // From here on the guard kills the process whatever happens.
        let mut relay = Relay { child, port };
        let deadline = Instant::now() + STARTUP;
        loop {
            if TcpStream::connect_timeout(&([127, 0, 0, 1], port).into(), Duration::from_secs(1))
                .is_ok()
            {
                return relay;
            }
            if let Ok(Some(status)) = relay.child.try_wait() {
                panic!("`clasp relay --ws-port {port} {}` exited before listening: {status} (its stderr is above)", extra.join(" "));
            }
            assert!(
                Instant::now() < deadline,
                "relay did not accept connections on 127.0.0.1:{port} within {STARTUP:?}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// `ws://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("ws://127.0.0.1:{}", self.port)
    }

    /// Sends SIGTERM and waits up to `within` for the exit status (`None`: still running).
    pub fn terminate(&mut self, within: Duration) -> Option<ExitStatus> {
        let pid = self.child.id().to_string();
        let sent = Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .expect("runs kill");
        assert!(sent.success(), "kill -TERM {pid} failed");
        let deadline = Instant::now() + within;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            if Instant::now() > deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A loopback port that was free a moment ago (bind port 0, read it, let it go).
pub fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind an ephemeral port");
    listener.local_addr().expect("local addr").port()
}

/// `tests/conformance` in the source tree.
pub fn conformance_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests")
        .join("conformance")
}

/// What a finished (or killed) child printed.
pub struct Output {
    /// `None` when it was killed at the timeout.
    pub status: Option<ExitStatus>,
    pub stdout: String,
    pub stderr: String,
}

/// Runs a command with a timeout, reading its output as it comes (so a chatty child cannot
/// block on a full pipe); kills it at the timeout.
pub fn run_with_timeout(mut cmd: Command, timeout: Duration, what: &str) -> Output {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{what}: cannot start: {e}"));
    let drain = |pipe: Option<Box<dyn Read + Send>>| {
        std::thread::spawn(move || {
            let mut text = Vec::new();
            if let Some(mut pipe) = pipe {
                let _ = pipe.read_to_end(&mut text);
            }
            String::from_utf8_lossy(&text).into_owned()
        })
    };
    let out = drain(
        child
            .stdout
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
    );
    let err = drain(
        child
            .stderr
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
    );
    let deadline = Instant::now() + timeout;
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for the child") {
            break Some(status);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    Output {
        status,
        stdout: out.join().expect("stdout reader"),
        stderr: err.join().expect("stderr reader"),
    }
}

/// Runs a command with a timeout; panics with everything it printed unless it exits 0.
pub fn run_ok(cmd: Command, timeout: Duration, what: &str) {
    let o = run_with_timeout(cmd, timeout, what);
    let text = format!("--- stdout ---\n{}\n--- stderr ---\n{}", o.stdout, o.stderr);
    match o.status {
        Some(s) if s.success() => {}
        Some(s) => panic!("{what} failed ({s}):\n{text}"),
        None => panic!("{what} timed out after {timeout:?} and was killed:\n{text}"),
    }
}

/// The `@clasp-to/core` version the spec was verified against (tests/conformance/package.json).
pub const JS_CLIENT_VERSION: &str = "3.3.2";
/// The `clasp-to` version the spec was verified against (tests/conformance/requirements.txt).
pub const PY_CLIENT_VERSION: &str = "4.2.0";

/// Panics (never skips) unless Node >= 20 and the pinned `@clasp-to/core` are installed.
pub fn require_js_client() {
    let dir = conformance_dir();
    let manifest = dir.join("node_modules/@clasp-to/core/package.json");
    let text = std::fs::read_to_string(&manifest).unwrap_or_else(|e| {
        panic!(
            "the official JS client is not installed ({}: {e}): run scripts/setup.sh",
            manifest.display()
        )
    });
    let json: serde_json::Value = serde_json::from_str(&text).expect("package.json is JSON");
    assert_eq!(
        json["version"].as_str(),
        Some(JS_CLIENT_VERSION),
        "@clasp-to/core in tests/conformance/node_modules is not {JS_CLIENT_VERSION}: run scripts/setup.sh"
    );
    let major = node_major();
    assert!(
        major >= 20,
        "the JS scenarios need Node 20 or later, found major version {major}"
    );
}

/// Panics (never skips) unless python3 has the pinned `clasp-to` (module `clasp`).
pub fn require_py_client() {
    let check = format!(
        "import importlib.metadata as m, clasp, websockets, msgpack; \
         v = m.version('clasp-to'); assert v == '{PY_CLIENT_VERSION}', v"
    );
    let o = run_with_timeout(
        {
            let mut c = Command::new("python3");
            c.args(["-c", &check]);
            c
        },
        Duration::from_secs(30),
        "python3 client check",
    );
    assert!(
        o.status.is_some_and(|s| s.success()),
        "the official Python client clasp-to=={PY_CLIENT_VERSION} is not installed for python3: \
         run scripts/setup.sh\n{}{}",
        o.stdout,
        o.stderr
    );
}

fn node_major() -> u32 {
    static MAJOR: OnceLock<u32> = OnceLock::new();
    *MAJOR.get_or_init(|| {
        let o = Command::new("node")
            .arg("--version")
            .output()
            .unwrap_or_else(|e| panic!("node is not installed ({e}): run scripts/setup.sh"));
        let v = String::from_utf8_lossy(&o.stdout);
        v.trim()
            .trim_start_matches('v')
            .split('.')
            .next()
            .and_then(|m| m.parse().ok())
            .unwrap_or_else(|| panic!("cannot read the node version from {v:?}"))
    })
}

/// `node` with what the official JS client needs: a global `WebSocket` (behind a flag on
/// Node 20, on by default from Node 22).
pub fn node() -> Command {
    let mut cmd = Command::new("node");
    if node_major() < 22 {
        cmd.arg("--experimental-websocket");
    }
    cmd.arg("--no-warnings");
    cmd.current_dir(conformance_dir());
    cmd
}

/// `/metrics` of the relay on `port`, read by Prometheus's reference parser
/// (tests/ops/parse_metrics.py): `{"name{label=value,...}": value}`. A page the parser
/// rejects fails the test.
pub fn scrape_metrics(port: u16) -> std::collections::HashMap<String, f64> {
    use std::io::Write as _;
    let page = ureq::get(&format!("http://127.0.0.1:{port}/metrics"))
        .timeout(Duration::from_secs(5))
        .call()
        .expect("GET /metrics")
        .into_string()
        .expect("text");
    let script =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/ops/parse_metrics.py");
    let mut child = Command::new("python3")
        .arg(script)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python3 runs");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(page.as_bytes())
        .expect("page written");
    let out = child.wait_with_output().expect("parser ends");
    assert!(
        out.status.success(),
        "the Prometheus parser rejected the page: {}\n{page}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("samples as JSON")
}
