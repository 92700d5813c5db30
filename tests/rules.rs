//! The rules engine in the real binary: `--rules` at startup (a bad file stops it), SIGHUP
//! reload (a bad file keeps the old rules), and the official JS client triggering rules
//! (FEATURES RU-1, RU-3, RU-5; `tests/conformance/js/rules.mjs`).

mod common;

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use clasp::Client;
use clasp_proto::Value;
use common::*;
use serde_json::json;

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("clasp-rules-e2e-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

fn write(file: &PathBuf, rules: serde_json::Value) {
    std::fs::write(file, rules.to_string()).expect("writes the rules file");
}

fn relay_with(file: &std::path::Path) -> Relay {
    Relay::start(&["--rules", file.to_str().expect("utf-8 path")])
}

fn follow_rule(out: &str) -> serde_json::Value {
    json!({"id": "follow", "trigger": {"type": "on_change", "pattern": "/h/in"},
           "actions": [{"type": "set", "address": "/h/out", "value": out}]})
}

#[test]
fn a_bad_rules_file_stops_startup_with_the_rule_and_field() {
    let dir = temp_dir("bad-start");
    let file = dir.join("rules.json");
    write(
        &file,
        json!({"rules": [{"id": "dim", "trigger": {"type": "on_change", "pattern": "/a"},
            "actions": [{"type": "set_from_trigger", "address": "/b",
                         "transform": {"type": "scale", "factor": "x"}}]}]}),
    );
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_clasp"));
    cmd.args(["relay", "--host", "127.0.0.1", "--ws-port"])
        .arg(free_port().to_string())
        .arg("--rules")
        .arg(&file);
    let out = run_with_timeout(cmd, Duration::from_secs(20), "clasp relay --rules bad.json");
    assert!(
        out.status.is_some_and(|s| !s.success()),
        "the relay must not start: {:?}\n{}",
        out.status,
        out.stderr
    );
    assert!(
        out.stderr
            .contains(r#"rule "dim" (#0): actions[0].transform.factor: expected a number"#),
        "stderr: {}",
        out.stderr
    );
}

#[tokio::test]
async fn sighup_reloads_and_a_bad_file_keeps_the_old_rules() {
    let dir = temp_dir("hup");
    let file = dir.join("rules.json");
    write(&file, json!([follow_rule("one")]));
    let relay = relay_with(&file);
    let c = Client::builder(relay.url())
        .reconnect(false)
        .timeout(Duration::from_secs(3))
        .connect()
        .await
        .expect("connects");
    // Sets /h/in until /h/out reads `want` (the engine starts, or reloads, asynchronously).
    let expect_out = |want: &'static str| {
        let c = c.clone();
        async move {
            let deadline = Instant::now() + Duration::from_secs(5);
            let mut n = 0;
            loop {
                c.set("/h/out", "reset").await.expect("set");
                n += 1;
                c.set("/h/in", n).await.expect("set");
                tokio::time::sleep(Duration::from_millis(50)).await;
                let got = c.get("/h/out").await.expect("get").value;
                if got == Value::from(want) {
                    return;
                }
                assert!(
                    Instant::now() < deadline,
                    "/h/out is {got:?}, wanted {want:?}"
                );
            }
        }
    };
    expect_out("one").await;
    let hup = || {
        let ok = Command::new("kill")
            .args(["-HUP", &relay.child.id().to_string()])
            .status()
            .expect("runs kill");
        assert!(ok.success());
    };
    // A bad file: the relay keeps running the old rule.
    write(&file, json!([follow_rule("bad"), follow_rule("dup")]));
    hup();
    tokio::time::sleep(Duration::from_millis(300)).await;
    expect_out("one").await;
    // A good file replaces it.
    write(&file, json!({"rules": [follow_rule("two")]}));
    hup();
    expect_out("two").await;
    let mut relay = relay;
    assert!(
        relay.terminate(Duration::from_secs(10)).is_some(),
        "still stops on SIGTERM"
    );
}

#[test]
fn official_js_client_triggers_rules() {
    require_js_client();
    let dir = temp_dir("js");
    let file = dir.join("rules.json");
    write(
        &file,
        json!({"rules": [
            {"id": "follow", "trigger": {"type": "on_change", "pattern": "/lights/main/intensity"},
             "actions": [{"type": "set_from_trigger", "address": "/lights/secondary/intensity",
                          "transform": {"type": "scale", "factor": 0.5}}]},
            {"id": "alert", "trigger": {"type": "on_event", "pattern": "/alerts/*"},
             "actions": [{"type": "set_from_trigger", "address": "/alerts/seen"}]}
        ]}),
    );
    let relay = relay_with(&file);
    let mut cmd = node();
    cmd.arg(conformance_dir().join("js/rules.mjs"))
        .arg(relay.url());
    run_ok(cmd, Duration::from_secs(60), "node js/rules.mjs");
}
