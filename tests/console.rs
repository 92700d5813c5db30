//! The web console end to end: the real `clasp` binary serves the embedded page at `/`,
//! headless Chromium (Debian's, driven by playwright-core from `console/node_modules`) opens
//! it, and real CLASP clients and a real mosquitto play the show. Each test runs one scenario
//! of `tests/console/e2e.mjs`, which asserts and prints `ok:` lines and `figure:` measurements;
//! screenshots land in `target/console-artifacts/`. Nothing is built here: `scripts/setup.sh`
//! installs chromium, builds the console and installs playwright-core (the tests fail, never
//! skip, when any is missing).

mod common;

use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::*;

const CHROMIUM: &str = "/usr/bin/chromium";
/// Per scenario; the script stops itself after 150 s.
const SCRIPT_TIMEOUT: Duration = Duration::from_secs(180);

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Panics (never skips) unless the browser, the driver and a built console are there.
fn require_browser() {
    assert!(
        Path::new(CHROMIUM).exists(),
        "{CHROMIUM} is missing: run scripts/setup.sh (apt package chromium)"
    );
    let driver = repo().join("console/node_modules/playwright-core/package.json");
    assert!(
        driver.exists(),
        "playwright-core is not installed in console/: run scripts/setup.sh"
    );
    assert!(
        repo().join("console/dist/index.html").exists(),
        "the console is not built (console/dist): run scripts/setup.sh, then rebuild clasp"
    );
}

/// Runs `e2e.mjs <scenario>` against `relay`; returns its output after checking it passed
/// and printed every `ok:` line in `expect`.
fn scenario(relay: &Relay, name: &str, env: &[(&str, String)], expect: &[&str]) -> String {
    scenario_on(relay.port, name, env, expect)
}

/// [`scenario`] against whatever relay listens on `port` (or the one the script starts there).
fn scenario_on(port: u16, name: &str, env: &[(&str, String)], expect: &[&str]) -> String {
    require_browser();
    let mut cmd = node();
    cmd.current_dir(repo().join("tests/console"))
        .arg("e2e.mjs")
        .arg(name)
        .env("CONSOLE_URL", format!("http://127.0.0.1:{port}/"))
        .env("RELAY_WS", format!("ws://127.0.0.1:{port}"))
        .env("ARTIFACTS", repo().join("target/console-artifacts"))
        .env("CHROMIUM", CHROMIUM);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = run_with_timeout(cmd, SCRIPT_TIMEOUT, &format!("e2e.mjs {name}"));
    let text = format!(
        "--- stdout ---\n{}\n--- stderr ---\n{}",
        out.stdout, out.stderr
    );
    // Figures are part of the record: show them with `--nocapture` / nextest's output.
    println!("{text}");
    match out.status {
        Some(s) if s.success() => {}
        Some(s) => panic!("e2e.mjs {name} failed ({s}):\n{text}"),
        None => panic!("e2e.mjs {name} timed out after {SCRIPT_TIMEOUT:?}:\n{text}"),
    }
    for line in expect
        .iter()
        .chain(&["no page errors and no request left loopback"])
    {
        assert!(
            out.stdout.contains(&format!("ok: {line}")),
            "e2e.mjs {name} did not report `ok: {line}`:\n{text}"
        );
    }
    out.stdout
}

#[test]
fn page_loads_and_shows_live_values_events_streams_and_panels() {
    let relay = Relay::start(&[]);
    scenario(
        &relay,
        "load",
        &[],
        &[
            "the page loads from the relay and its CLASP session opens",
            "values set by a CLASP client appear in the tree (each within 2 s)",
            "booleans show as toggles, strings as text",
            "the writer column names the last writer",
            "the revision column counts the writes",
            "events flash their row and appear in the event log",
            "streams draw as sparklines",
            "the sessions panel lists the console and the writer",
            "relay figures from /metrics are charted",
            "the filter narrows the tree to a pattern",
        ],
    );
}

#[test]
fn dragging_a_fader_sets_the_param_for_subscribers() {
    let relay = Relay::start(&[]);
    scenario(
        &relay,
        "fader",
        &[],
        &[
            "dragging a fader sets the param (seen by a CLASP subscriber)",
            "clicking a toggle sets the boolean",
        ],
    );
}

#[test]
fn ten_thousand_addresses_render_and_scroll() {
    let relay = Relay::start(&["--shards", "2"]);
    scenario(
        &relay,
        "scale",
        &[],
        &[
            "10000 addresses reach the console",
            "the list scrolls to the last address and renders it",
            "10000 addresses render and scroll",
        ],
    );
}

/// A mosquitto on a free loopback port; killed on drop if the test has not killed it.
struct Mosquitto {
    child: Child,
    port: u16,
    _dir: TempDir,
}

impl Mosquitto {
    fn start() -> Mosquitto {
        let dir = TempDir::new("console-mosquitto");
        let port = free_port();
        let conf = dir.0.join("mosquitto.conf");
        std::fs::write(
            &conf,
            format!("listener {port} 127.0.0.1\nallow_anonymous true\n"),
        )
        .expect("write mosquitto.conf");
        let child = Command::new("mosquitto")
            .arg("-c")
            .arg(&conf)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("mosquitto is installed (scripts/setup.sh)");
        let m = Mosquitto {
            child,
            port,
            _dir: dir,
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect_timeout(&([127, 0, 0, 1], port).into(), Duration::from_secs(1))
            .is_err()
        {
            assert!(
                Instant::now() < deadline,
                "mosquitto did not listen on {port}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        m
    }
}

impl Drop for Mosquitto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A directory under the system temp dir, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(what: &str) -> TempDir {
        let dir = std::env::temp_dir().join(format!(
            "clasp-{what}-{}-{}",
            std::process::id(),
            free_port()
        ));
        std::fs::create_dir_all(&dir).expect("create a temp dir");
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[test]
fn a_bridge_whose_broker_dies_shows_as_down() {
    let mut broker = Mosquitto::start();
    let relay = Relay::start(&[
        "--mqtt-broker",
        &format!("mqtt://127.0.0.1:{}", broker.port),
    ]);
    scenario(
        &relay,
        "bridge_down",
        &[("MOSQUITTO_PID", broker.child.id().to_string())],
        &[
            "the bridges panel shows the mqtt-client bridge up",
            "the bridges panel shows the bridge down once its broker is killed",
        ],
    );
    // The script killed the broker itself: it is gone, not merely disconnected.
    let status = broker.child.try_wait().expect("wait for mosquitto");
    assert!(status.is_some(), "the scenario stopped mosquitto");
}

#[test]
fn the_federation_panel_shows_a_link_and_its_loss() {
    let hub = Relay::start(&["--federation-id", "hub"]);
    let leaf = Relay::start(&[
        "--federation-id",
        "site-a",
        "--federation-namespace",
        "/site-a/**",
        "--federation-hub",
        &hub.url(),
    ]);
    scenario(
        &leaf,
        "federation",
        &[("HUB_PID", hub.child.id().to_string())],
        &[
            "the federation panel shows the uplink to the hub up",
            "the federation panel shows the link down once the hub is killed",
        ],
    );
    drop(hub);
}

/// The page and its assets are plain GETs on the relay's port; a WebSocket upgrade on `/`
/// still reaches CLASP, and unknown paths keep their old answers.
#[test]
fn console_is_served_at_root_without_taking_the_websocket_path() {
    let relay = Relay::start(&[]);
    let get = |path: &str| {
        let mut s = TcpStream::connect(("127.0.0.1", relay.port)).expect("connects");
        s.set_read_timeout(Some(Duration::from_secs(5))).ok();
        use std::io::{Read, Write};
        write!(
            s,
            "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
        )
        .expect("writes");
        let mut raw = Vec::new();
        let _ = s.read_to_end(&mut raw);
        String::from_utf8_lossy(&raw).into_owned()
    };
    let page = get("/");
    assert!(page.starts_with("HTTP/1.1 200"), "{page}");
    assert!(
        page.to_ascii_lowercase()
            .contains("content-type: text/html"),
        "{page}"
    );
    assert!(page.contains("<title>CLASP console</title>"), "{page}");
    // Every script and stylesheet the page names is served from the binary, none from elsewhere.
    let assets: Vec<&str> = page
        .split(['"', '\''])
        .filter(|s| s.starts_with("./assets/"))
        .collect();
    assert!(!assets.is_empty(), "the page names its bundle: {page}");
    for a in &assets {
        let r = get(a.trim_start_matches('.'));
        assert!(r.starts_with("HTTP/1.1 200"), "{a}: {r}");
    }
    assert!(
        !page.contains("http://") && !page.contains("https://"),
        "no external URL in the page"
    );
    assert!(get("/healthz").contains("\r\n\r\nok"));
    let bridges = get("/api/v1/bridges");
    assert!(bridges.contains("\"bridges\":[]"), "{bridges}");

    // A CLASP WebSocket on `/` still gets WELCOME.
    let mut cmd = node();
    cmd.arg("-e")
        .arg(
            "const {Clasp}=require('@clasp-to/core');\
             const c=new Clasp(process.argv[1],{name:'root',reconnect:false});\
             c.connect(5000).then(()=>{console.log('session',c.sessionId);c.close();process.exit(0)},\
             e=>{console.log('refused',e);process.exit(1)});",
        )
        .arg(format!("ws://127.0.0.1:{}/", relay.port));
    run_ok(cmd, Duration::from_secs(30), "a CLASP client on /");
}

/// With auth on, the console connects with the token from its token field; a fader inside
/// the token's write scope works, one outside it is refused (ERROR 301), locked and reset.
#[test]
fn with_auth_the_token_field_and_write_scopes_decide() {
    let relay = common::auth::AuthRelay::start("console-scopes", &[]);
    let limited = relay.guest(&["read:/**", "write:/e2e/open/**"]);
    scenario(
        &relay.relay,
        "scopes",
        &[
            ("ADMIN_TOKEN", relay.admin.clone()),
            ("LIMITED_TOKEN", limited),
        ],
        &[
            "without a token the console is refused",
            "admin-only panels say they need the admin token",
            "a fader inside the token's write scope sets the param",
            "a fader outside the token's write scope is refused, locked and reset",
            "with the admin token the sessions and bridges panels list",
        ],
    );
}

/// The console's pure logic (pattern matching, tree flattening, the /metrics parser) under
/// vitest, installed with the console by `scripts/setup.sh`.
#[test]
fn front_end_logic_unit_tests_pass() {
    let dir = repo().join("console");
    let vitest = dir.join("node_modules/vitest/vitest.mjs");
    assert!(
        vitest.exists(),
        "vitest is not installed in console/: run scripts/setup.sh"
    );
    let mut cmd = Command::new("node");
    cmd.current_dir(&dir)
        .arg(&vitest)
        .args(["run", "--reporter=verbose"])
        .env("NO_COLOR", "1")
        .env("CI", "1");
    let out = run_with_timeout(cmd, Duration::from_secs(120), "vitest run");
    let text = format!("{}\n{}", out.stdout, out.stderr);
    assert!(
        out.status.is_some_and(|s| s.success()),
        "vitest failed:\n{text}"
    );
    assert!(
        text.contains("passed") && !text.contains("failed"),
        "vitest did not report only passes:\n{text}"
    );
}

/// A relay restarted under an open console (state lost, revisions from 1 again): the page
/// reconnects by itself and shows the new values with their new revisions. The script
/// starts and kills this relay itself (the real binary), so it can reuse the port.
#[test]
fn the_console_reconnects_after_a_relay_restart() {
    scenario_on(
        free_port(),
        "reconnect",
        &[("CLASP_BIN", env!("CARGO_BIN_EXE_clasp").to_string())],
        &[
            "the page shows the relay gone",
            "the page reconnects by itself",
            "values after the restart show, with the new revisions",
        ],
    );
}
