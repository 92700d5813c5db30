//! `clasp relay --config FILE` and `clasp config check FILE` (issue 10): keys are the relay's
//! flags, `[[bridge]]` tables add bridges; flags beat `CLASP_*` variables, which beat the
//! file; every error names the file, line and key.

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

mod common;
use common::*;

fn write(name: &str, text: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("clasp-config-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let path = dir.join(name);
    std::fs::write(&path, text).expect("write config");
    path
}

fn health(relay: &Relay) -> serde_json::Value {
    let url = format!("http://127.0.0.1:{}/health", relay.port);
    ureq::get(&url)
        .timeout(Duration::from_secs(5))
        .call()
        .expect("GET /health")
        .into_json()
        .expect("JSON")
}

fn check(file: &PathBuf) -> (bool, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_clasp"));
    cmd.args(["config", "check"]).arg(file);
    let out = run_with_timeout(cmd, Duration::from_secs(10), "clasp config check");
    (
        out.status.is_some_and(|s| s.success()),
        format!("{}{}", out.stdout, out.stderr),
    )
}

#[test]
fn the_file_sets_flags_and_bridges() {
    let osc = free_port();
    let file = write(
        "relay.toml",
        &format!(
            "# a comment\nname = \"From file\"\nmax-sessions = 50\nstrategy = [\"/a/**=max\", \"/b/**=min\"]\nno_ttl = true\n\n[[bridge]]\nkind = \"osc\"\nport = {osc}\nnamespace = \"/osc/foh\"\n"
        ),
    );
    let (ok, out) = check(&file);
    assert!(ok, "{out}");
    assert!(out.contains("ok (1 bridges)"), "{out}");

    let relay = Relay::start(&["--config", file.to_str().expect("utf-8")]);
    let h = health(&relay);
    assert_eq!(h["name"], "From file", "{h}");
    assert!(
        h["actors"]["osc:/osc/foh"].is_object(),
        "bridge from the file runs: {h}"
    );
}

#[test]
fn flags_beat_environment_beats_file() {
    let file = write("precedence.toml", "name = \"file\"\n");
    let path = file.to_str().expect("utf-8");

    let relay = Relay::start(&["--config", path]);
    assert_eq!(health(&relay)["name"], "file");
    drop(relay);

    let relay = Relay::start_with_env(&["--config", path], &[("CLASP_NAME", "env")]);
    assert_eq!(health(&relay)["name"], "env");
    drop(relay);

    let relay = Relay::start_with_env(
        &["--config", path, "--name", "flag"],
        &[("CLASP_NAME", "env")],
    );
    assert_eq!(health(&relay)["name"], "flag");
}

#[test]
fn errors_name_the_line_and_key() {
    let cases = [
        (
            "bad-value.toml",
            "name = \"x\"\nws-port = \"abc\"\n",
            ":2: ws-port: invalid value 'abc'",
        ),
        (
            "unknown.toml",
            "name = \"x\"\n\nbogus = 1\n",
            ":3: bogus: unknown key",
        ),
        (
            "bool.toml",
            "no-ttl = \"yes\"\n",
            ":1: no-ttl: expected true or false",
        ),
        (
            "bridge.toml",
            "name = \"x\"\n[[bridge]]\nkind = \"osc\"\nfoo = 2\n",
            ":2: bridge[0]: unknown field `foo`",
        ),
        (
            "kind.toml",
            "[[bridge]]\nkind = \"telepathy\"\n",
            ":1: bridge[0]: unknown variant `telepathy`",
        ),
        ("syntax.toml", "name = \n", "line 1"),
        (
            "strategy.toml",
            "strategy = [\"/a/**=fastest\"]\n",
            "fastest",
        ),
    ];
    for (name, text, want) in cases {
        let file = write(name, text);
        let (ok, out) = check(&file);
        assert!(!ok, "{name} passed the check: {out}");
        assert!(
            out.contains(want),
            "{name}: {out:?} does not contain {want:?}"
        );
    }

    // The relay refuses to start on the same errors, and says why.
    let file = write("refused.toml", "ws-port = \"abc\"\n");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_clasp"));
    cmd.args(["relay", "--config"]).arg(&file);
    let out = run_with_timeout(cmd, Duration::from_secs(10), "clasp relay --config");
    assert!(out.status.is_some_and(|s| !s.success()));
    assert!(
        out.stderr.contains(":1: ws-port: invalid value"),
        "{}",
        out.stderr
    );

    let (ok, out) = check(&PathBuf::from("/nonexistent/clasp.toml"));
    assert!(!ok);
    assert!(out.contains("/nonexistent/clasp.toml"), "{out}");
}

#[test]
fn json_logs_are_one_object_per_line() {
    use std::io::{BufRead, BufReader};
    let mut child = Command::new(env!("CARGO_BIN_EXE_clasp"))
        .args([
            "relay",
            "--host",
            "127.0.0.1",
            "--ws-port",
            &free_port().to_string(),
        ])
        .args(["--log-format", "json"])
        .stderr(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("clasp starts");
    let stderr = child.stderr.take().expect("stderr");
    let reader = std::thread::spawn(move || {
        BufReader::new(stderr)
            .lines()
            .map_while(Result::ok)
            .find(|l| l.contains("relay listening"))
    });
    let deadline = std::time::Instant::now() + STARTUP;
    while !reader.is_finished() && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let _ = child.wait();
    let line = reader
        .join()
        .expect("reader")
        .expect("a 'relay listening' log line");
    let record: serde_json::Value = serde_json::from_str(&line).expect("a JSON object");
    assert_eq!(record["level"], "INFO");
    assert_eq!(record["fields"]["message"], "relay listening");
}

#[actix::test]
async fn sighup_reloads_the_app_config_and_the_log_level() {
    use clasp_actors::client::{Client, ClientError};
    use std::io::Read as _;
    let app = write(
        "app.json",
        r#"{"write_rules": [{"path": "/show/level", "type": "number", "min": 0, "max": 1,
            "message": "level is 0..1"}]}"#,
    );
    let port = free_port();
    let config = write(
        "hup.toml",
        &format!(
            "host = \"127.0.0.1\"\nws-port = {port}\nlog-level = \"warn\"\napp-config = \"{}\"\n",
            app.display()
        ),
    );
    let mut child = Command::new(env!("CARGO_BIN_EXE_clasp"))
        .args(["relay", "--config"])
        .arg(&config)
        .env_remove("RUST_LOG")
        .stderr(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("clasp starts");
    let deadline = std::time::Instant::now() + STARTUP;
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(std::time::Instant::now() < deadline, "relay never listened");
        std::thread::sleep(Duration::from_millis(20));
    }
    let client = Client::builder(format!("ws://127.0.0.1:{port}"))
        .connect()
        .await
        .expect("connect");
    match client.set("/show/level", 5.0).await {
        Err(ClientError::Server {
            code: 402, message, ..
        }) => assert!(message.contains("0..1")),
        other => panic!("expected ERROR 402, got {other:?}"),
    }

    std::fs::write(
        &app,
        r#"{"write_rules": [{"path": "/show/level", "type": "number", "min": 0, "max": 10}]}"#,
    )
    .expect("rewrite app config");
    std::fs::write(
        &config,
        format!(
            "host = \"127.0.0.1\"\nws-port = {port}\nlog-level = \"info\"\napp-config = \"{}\"\n",
            app.display()
        ),
    )
    .expect("rewrite config");
    let hup = Command::new("kill")
        .args(["-HUP", &child.id().to_string()])
        .status()
        .expect("kill runs");
    assert!(hup.success());
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    let mut accepted = false;
    while std::time::Instant::now() < deadline {
        if client.set("/show/level", 5.0).await.is_ok() {
            accepted = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(accepted, "the reloaded app config allows 5");
    client.close().await;

    // The new level is info: the reload itself is logged, which warn would have hidden.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let _ = child.kill();
    let _ = child.wait();
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .expect("stderr")
        .read_to_string(&mut stderr)
        .expect("read stderr");
    assert!(stderr.contains("log level reloaded"), "{stderr}");
}

#[test]
fn the_example_file_lists_every_key_and_its_defaults_check() {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_clasp"));
    cmd.args(["config", "example"]);
    let out = run_with_timeout(cmd, Duration::from_secs(10), "clasp config example");
    let committed = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/clasp.example.toml"),
    )
    .expect("deploy/clasp.example.toml");
    assert_eq!(
        out.stdout, committed,
        "deploy/clasp.example.toml is stale: regenerate it with `clasp config example`"
    );
    // Every key that has a default, uncommented, makes a valid file.
    let mut keys = String::new();
    for line in committed.lines() {
        if line.starts_with("# Bridges that run") {
            break;
        }
        if let Some(kv) = line.strip_prefix("# ") {
            let is_key = kv.split_once(" = ").is_some_and(|(k, v)| {
                !k.is_empty()
                    && k.chars()
                        .all(|c| c.is_ascii_lowercase() || c == '-' || c.is_ascii_digit())
                    && !v.contains("(no default)")
            });
            if is_key {
                keys.push_str(kv);
                keys.push('\n');
            }
        }
    }
    assert!(keys.lines().count() >= 30, "{keys}");
    let file = write("uncommented.toml", &keys);
    let (ok, out) = check(&file);
    assert!(ok, "{out}\n{keys}");
}
