//! The official clients, unchanged, against a freshly started relay: `@clasp-to/core` 3.3.2
//! (npm) and `clasp-to` 4.2.0 (PyPI), installed by `scripts/setup.sh`. One test per
//! scenario; each scenario script asserts concrete values and exits non-zero otherwise.

mod common;

use std::process::Command;
use std::time::Duration;

use common::*;

fn js(scenario: &str) {
    let dir = conformance_dir();
    assert!(
        dir.join("node_modules/@clasp-to/core").exists(),
        "the official JS client is not installed: run scripts/setup.sh"
    );
    let relay = Relay::start(&[]);
    let mut cmd = Command::new("node");
    // Node 20 has WebSocket behind this flag (later versions have it by default).
    cmd.arg("--experimental-websocket")
        .arg("--no-warnings")
        .arg(dir.join("js/conformance.mjs"))
        .arg(relay.url())
        .arg(scenario)
        .current_dir(&dir);
    run_ok(cmd, Duration::from_secs(45), &format!("js {scenario}"));
}

fn py(scenario: &str) {
    let dir = conformance_dir();
    let installed = Command::new("python3")
        .args(["-c", "import clasp"])
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        installed,
        "the official Python client is not installed: run scripts/setup.sh"
    );
    let relay = Relay::start(&[]);
    let mut cmd = Command::new("python3");
    cmd.arg(dir.join("py/conformance.py"))
        .arg(relay.url())
        .arg(scenario);
    run_ok(cmd, Duration::from_secs(45), &format!("py {scenario}"));
}

macro_rules! scenarios {
    ($runner:ident: $($name:ident),* $(,)?) => {
        mod $runner {
            $(#[test] fn $name() { super::$runner(stringify!($name)); })*
        }
    };
}

scenarios!(js: connect, values, wildcards, latejoin, events, bundle, unsubscribe, gesture, get_unknown);
scenarios!(py: connect, values, wildcards, latejoin, events, bundle, unsubscribe, gesture, query, get_unknown);
