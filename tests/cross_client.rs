//! One relay, three clients: the Rust SDK, the official JS client and the official Python
//! client each write a param, an event and a stream sample with the same value; each must
//! receive the other two's, with identical values.

mod common;

use std::collections::BTreeSet;
use std::process::{Command, Stdio};
use std::time::Duration;

use clasp::Client;
use clasp_proto::Value;
use common::*;

fn value() -> Value {
    Value::Map(vec![
        ("n".into(), 1.5.into()),
        ("s".into(), "héllo".into()),
        ("b".into(), true.into()),
        ("z".into(), Value::Null),
        (
            "list".into(),
            Value::Array(vec![0.25.into(), "x".into(), false.into()]),
        ),
    ])
}

fn json(v: &Value) -> serde_json::Value {
    match v {
        Value::Null => serde_json::Value::Null,
        Value::Bool(b) => (*b).into(),
        Value::Int(i) => (*i as f64).into(),
        Value::Float(f) => (*f).into(),
        Value::String(s) => s.clone().into(),
        Value::Bytes(b) => b.clone().into(),
        Value::Array(a) => a.iter().map(json).collect(),
        Value::Map(m) => {
            serde_json::Value::Object(m.iter().map(|(k, v)| (k.clone(), json(v))).collect())
        }
    }
}

#[test]
fn rust_js_and_python_see_each_other() {
    let dir = conformance_dir();
    assert!(
        dir.join("node_modules/@clasp-to/core").exists(),
        "run scripts/setup.sh"
    );
    let relay = Relay::start(&[]);
    let spawn = |cmd: &mut Command| {
        cmd.stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("starts")
    };
    let js = spawn(
        Command::new("node")
            .args(["--experimental-websocket", "--no-warnings"])
            .arg(dir.join("js/cross.mjs"))
            .arg(relay.url())
            .current_dir(&dir),
    );
    let py = spawn(
        Command::new("python3")
            .arg(dir.join("py/cross.py"))
            .arg(relay.url()),
    );

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let rust_got: Vec<(String, serde_json::Value)> = runtime.block_on(async {
        let c = Client::builder(relay.url())
            .name("cross-rs")
            .connect()
            .await
            .expect("connects");
        let mut sub = c.subscribe("/cross/**").await.expect("subscribes");
        tokio::time::sleep(Duration::from_millis(1500)).await;
        c.set("/cross/rs/param", value()).await.expect("set");
        c.emit("/cross/rs/event", value()).await.expect("emit");
        c.stream("/cross/rs/stream", 0.75).await.expect("stream");
        let mut got = Vec::new();
        let end = tokio::time::Instant::now() + Duration::from_millis(2000);
        while let Ok(Some(u)) = tokio::time::timeout_at(end, sub.next()).await {
            if !u.address.as_str().starts_with("/cross/rs/") {
                got.push((u.address.to_string(), json(&u.value)));
            }
        }
        c.close().await;
        got
    });

    let collect = |child: std::process::Child, who: &str| -> Vec<(String, serde_json::Value)> {
        let out = child.wait_with_output().expect("finishes");
        assert!(
            out.status.success(),
            "{who} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter(|l| l.starts_with('{'))
            .map(|l| {
                let v: serde_json::Value = serde_json::from_str(l).expect("JSON line");
                (
                    v["address"].as_str().unwrap_or_default().to_string(),
                    v["value"].clone(),
                )
            })
            .collect()
    };
    let js_got = collect(js, "js");
    let py_got = collect(py, "py");

    let expected = json(&value());
    for (who, got, others) in [
        ("rust", &rust_got, ["js", "py"]),
        ("js", &js_got, ["rs", "py"]),
        ("py", &py_got, ["rs", "js"]),
    ] {
        let addresses: BTreeSet<&str> = got.iter().map(|(a, _)| a.as_str()).collect();
        for other in others {
            for kind in ["param", "event", "stream"] {
                let address = format!("/cross/{other}/{kind}");
                assert!(
                    addresses.contains(address.as_str()),
                    "{who} did not receive {address}: {got:?}"
                );
            }
        }
        for (address, v) in got.iter() {
            let want = if address.ends_with("/stream") {
                serde_json::json!(0.75)
            } else {
                expected.clone()
            };
            assert_eq!(v, &want, "{who} received {address} as {v}");
        }
    }
}
