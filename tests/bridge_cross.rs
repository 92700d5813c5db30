//! Cross-protocol routing (FEATURES BR-4): a value that enters on one protocol leaves on
//! another. `oscsend` (liblo) sets an OSC fader on the relay's embedded OSC bridge, a rule
//! scales it onto an MQTT address, and `mosquitto_sub` on the relay's embedded broker
//! receives it: three independent peers and two bridges in one relay.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

mod common;
use common::*;

#[test]
fn osc_in_rule_mqtt_out() {
    let dir = std::env::temp_dir().join(format!("clasp-cross-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let rules = dir.join("rules.json");
    std::fs::write(
        &rules,
        r#"{"rules": [{
            "id": "fader-to-dimmer",
            "trigger": {"type": "on_change", "pattern": "/osc/fader/1"},
            "actions": [{"type": "set_from_trigger", "address": "/mqtt/stage/dimmer",
                         "transform": {"type": "scale", "factor": 100}}]
        }]}"#,
    )
    .expect("write rules");
    let (osc, mqtt) = (free_port(), free_port());
    let _relay = Relay::start(&[
        "--osc-port",
        &osc.to_string(),
        "--mqtt-port",
        &mqtt.to_string(),
        "--rules",
        rules.to_str().expect("utf-8 path"),
    ]);
    wait_for_tcp(mqtt);

    // Subscribe first, so the value arrives live (not only as the retained state).
    let sub = Command::new("mosquitto_sub")
        .args([
            "-h",
            "127.0.0.1",
            "-p",
            &mqtt.to_string(),
            "-t",
            "stage/dimmer",
        ])
        .args(["-C", "1", "-W", "15"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("mosquitto_sub runs");
    std::thread::sleep(Duration::from_millis(500));
    run_ok(
        {
            let mut c = Command::new("oscsend");
            c.args(["127.0.0.1", &osc.to_string(), "/fader/1", "f", "0.25"]);
            c
        },
        Duration::from_secs(5),
        "oscsend",
    );
    let out = sub.wait_with_output().expect("mosquitto_sub ends");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "mosquitto_sub got nothing: {text} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let value: f64 = text.trim().parse().expect("a number on the MQTT side");
    assert!((value - 25.0).abs() < 1e-9, "{value}");
    let _ = std::fs::remove_dir_all(&dir);
}

fn wait_for_tcp(port: u16) {
    let deadline = Instant::now() + STARTUP;
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "nothing listens on {port}");
        std::thread::sleep(Duration::from_millis(20));
    }
}
