//! `--tls-cert/--tls-key`: the relay serves wss:// and https:// on its one port with a
//! certificate this test generates (rcgen). The Rust client, the CLI and the official JS and
//! Python clients connect over wss, trusting that certificate and nothing else.

mod common;

use std::path::PathBuf;
use std::time::Duration;

use clasp::{Client, ClientError};
use clasp_proto::Value;
use common::*;

/// A self-signed certificate for 127.0.0.1 and localhost, written as PEM files.
struct TestCert {
    cert: PathBuf,
    key: PathBuf,
}

fn test_cert(name: &str) -> TestCert {
    let dir = std::env::temp_dir().join(format!("clasp-tls-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let generated =
        rcgen::generate_simple_self_signed(vec!["127.0.0.1".into(), "localhost".into()])
            .expect("rcgen makes a certificate");
    let cert = dir.join("cert.pem");
    let key = dir.join("key.pem");
    std::fs::write(&cert, generated.cert.pem()).expect("write cert");
    std::fs::write(&key, generated.key_pair.serialize_pem()).expect("write key");
    TestCert { cert, key }
}

fn tls_relay(c: &TestCert) -> Relay {
    Relay::start(&[
        "--tls-cert",
        c.cert.to_str().expect("utf-8"),
        "--tls-key",
        c.key.to_str().expect("utf-8"),
    ])
}

fn wss(relay: &Relay) -> String {
    format!("wss://127.0.0.1:{}", relay.port)
}

#[tokio::test]
async fn rust_client_over_wss_trusting_the_test_certificate() {
    let c = test_cert("rust");
    let relay = tls_relay(&c);
    let client = Client::builder(wss(&relay))
        .ca_file(&c.cert)
        .reconnect(false)
        .connect()
        .await
        .expect("wss connects with the CA given");
    client.set("/tls/x", 1.5).await.expect("set over wss");
    assert_eq!(
        client.get("/tls/x").await.expect("get").value,
        Value::Float(1.5)
    );

    // Without trusting the certificate the handshake fails, with a clear error.
    let untrusted = Client::builder(wss(&relay))
        .reconnect(false)
        .connect()
        .await;
    match untrusted {
        Err(ClientError::Connect { reason, .. }) => {
            assert!(reason.to_lowercase().contains("certificate"), "{reason}")
        }
        other => panic!(
            "an untrusted certificate must fail, got {other:?}",
            other = other.map(|_| ())
        ),
    }
    // Plain ws:// to the TLS port fails rather than hanging.
    let plain = Client::builder(relay.url())
        .reconnect(false)
        .timeout(Duration::from_secs(3))
        .connect()
        .await;
    assert!(plain.is_err(), "plain ws:// to a TLS port is refused");
}

#[test]
fn https_health_and_cli_over_wss() {
    let c = test_cert("cli");
    let relay = tls_relay(&c);
    let tls = clasp_actors::tls::client_config(Some(&c.cert)).expect("client config");
    let agent = ureq::AgentBuilder::new()
        .tls_config(std::sync::Arc::new(tls))
        .build();
    let health: serde_json::Value = agent
        .get(&format!("https://127.0.0.1:{}/health", relay.port))
        .call()
        .expect("https /health")
        .into_json()
        .expect("JSON");
    assert_eq!(health["status"], "ok");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_clasp"))
        .args([
            "--url",
            &wss(&relay),
            "--ca-cert",
            c.cert.to_str().expect("utf-8"),
        ])
        .args(["set", "/tls/cli", "7"])
        .output()
        .expect("runs clasp");
    assert!(
        out.status.success(),
        "clasp set over wss: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn official_js_client_over_wss() {
    require_js_client();
    let c = test_cert("js");
    let relay = tls_relay(&c);
    let mut cmd = node();
    cmd.arg(conformance_dir().join("js/connect.mjs"))
        .arg(wss(&relay))
        .env("NODE_EXTRA_CA_CERTS", &c.cert);
    run_ok(cmd, Duration::from_secs(60), "node js/connect.mjs over wss");
}

#[test]
fn official_python_client_over_wss() {
    require_py_client();
    let c = test_cert("py");
    let relay = tls_relay(&c);
    let mut cmd = std::process::Command::new("python3");
    cmd.arg(conformance_dir().join("py/connect.py"))
        .arg(wss(&relay))
        .env("SSL_CERT_FILE", &c.cert);
    run_ok(
        cmd,
        Duration::from_secs(60),
        "python3 py/connect.py over wss",
    );
}

#[test]
fn a_missing_or_bad_certificate_stops_the_relay_with_a_clear_error() {
    let dir = std::env::temp_dir().join(format!("clasp-tls-{}-bad", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let junk = dir.join("junk.pem");
    std::fs::write(&junk, "not a certificate").expect("write");
    for (cert, key, expect) in [
        (dir.join("missing.pem"), junk.clone(), "certificate"),
        (junk.clone(), junk.clone(), "no certificate"),
    ] {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_clasp"))
            .args([
                "relay",
                "--host",
                "127.0.0.1",
                "--ws-port",
                &free_port().to_string(),
            ])
            .args([
                "--tls-cert",
                cert.to_str().expect("utf-8"),
                "--tls-key",
                key.to_str().expect("utf-8"),
            ])
            .output()
            .expect("runs clasp");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "the relay must not start");
        assert!(err.contains(expect), "stderr names the problem: {err}");
    }
}
