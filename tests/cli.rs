//! The `clasp` client subcommands, run as the built binary against a started relay:
//! printed output and exit codes (0 ok, 1 server error, 2 usage).

mod common;

use assert_cmd::Command;
use common::Relay;

fn clasp(relay: &Relay) -> Command {
    let mut cmd = Command::cargo_bin("clasp").expect("the clasp binary");
    cmd.env("CLASP_URL", relay.url())
        .env_remove("CLASP_TOKEN")
        .timeout(std::time::Duration::from_secs(20));
    cmd
}

fn stdout(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn set_get_sub_and_json_values() {
    let relay = Relay::start(&[]);
    let out = clasp(&relay)
        .args(["set", "/cli/x", r#"{"a":[1,2.5,"s"]}"#])
        .output()
        .expect("runs");
    assert!(out.status.success());
    assert_eq!(stdout(&out).trim(), "/cli/x revision 1");
    clasp(&relay)
        .args(["set", "/cli/x", "plain text"])
        .assert()
        .success()
        .stdout("/cli/x revision 2\n");
    let out = clasp(&relay)
        .args(["get", "/cli/x"])
        .output()
        .expect("runs");
    assert!(
        stdout(&out).starts_with(r#"/cli/x = "plain text" (revision 2, writer "#),
        "{}",
        stdout(&out)
    );
    // sub prints the current value first (JSON lines with --json), then stops at --count.
    let out = clasp(&relay)
        .args(["sub", "/cli/**", "--json", "--count", "1"])
        .output()
        .expect("runs");
    let line: serde_json::Value = serde_json::from_str(stdout(&out).trim()).expect("a JSON line");
    assert_eq!(
        (
            line["address"].as_str(),
            line["value"].as_str(),
            line["revision"].as_u64()
        ),
        (Some("/cli/x"), Some("plain text"), Some(2))
    );
}

#[test]
fn emit_stream_query_ping() {
    let relay = Relay::start(&[]);
    clasp(&relay)
        .args(["emit", "/cli/ev", "42"])
        .assert()
        .success();
    clasp(&relay)
        .args(["stream", "/cli/fader", "--rate", "1000"])
        .write_stdin("0.1\n0.2\n0.3\n")
        .assert()
        .success();
    clasp(&relay)
        .args(["query", "/**"])
        .assert()
        .success()
        .stdout("");
    let out = clasp(&relay).arg("ping").output().expect("runs");
    assert!(
        out.status.success() && stdout(&out).starts_with("round trip "),
        "{}",
        stdout(&out)
    );
}

#[test]
fn exit_codes() {
    let relay = Relay::start(&[]);
    let out = clasp(&relay)
        .args(["set", "notanaddress", "1"])
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("invalid address \"notanaddress\""));
    clasp(&relay)
        .args(["set", "/a", "1", "--bogus"])
        .assert()
        .code(2);
    clasp(&relay).args(["sub", "/a//b"]).assert().code(2);
    // Server refusals: ERROR 401 from a lock, ERROR 501 for replay without a journal.
    let out = clasp(&relay)
        .args(["set", "/cli/lock", "1", "--revision", "5"])
        .output()
        .expect("runs");
    assert_eq!(
        out.status.code(),
        Some(0),
        "expected revisions are not checked for new params"
    );
    let out = clasp(&relay)
        .args(["set", "/cli/lock", "1", "--revision", "5"])
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("ERROR 400"));
    let out = clasp(&relay)
        .args(["replay", "/**"])
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("ERROR 501"));
    // get of an unknown address: a timeout error within the deadline.
    let out = clasp(&relay)
        .args(["get", "/cli/none", "--timeout", "1"])
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("timed out"));
    // No relay at all.
    let out = Command::cargo_bin("clasp")
        .expect("bin")
        .args(["--url", "ws://127.0.0.1:1", "get", "/x"])
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot connect"));
}
