//! The deployment files (issue 10), checked by the linters that run here (no container engine
//! or cluster does): hadolint for the Dockerfile, kubernetes-validate (the Kubernetes
//! OpenAPI schemas, strict) for the manifests, `systemd-analyze verify` for the unit, and a
//! structural check of the compose file. The config files they ship pass `clasp config check`.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

mod common;
use common::*;

fn repo(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

fn passes(mut cmd: Command, what: &str) {
    let out = run_with_timeout(
        {
            cmd.current_dir(env!("CARGO_MANIFEST_DIR"));
            cmd
        },
        Duration::from_secs(60),
        what,
    );
    assert!(
        out.status.is_some_and(|s| s.success()),
        "{what} failed:\n{}{}",
        out.stdout,
        out.stderr
    );
}

#[test]
fn dockerfile_passes_hadolint() {
    let mut cmd = Command::new("hadolint");
    cmd.arg("deploy/docker/Dockerfile");
    passes(cmd, "hadolint");
}

#[test]
fn kubernetes_manifests_match_the_schemas() {
    let mut cmd = Command::new("kubernetes-validate");
    cmd.args(["--strict", "deploy/k8s/clasp.yaml"]);
    passes(cmd, "kubernetes-validate");
}

#[test]
fn systemd_unit_verifies() {
    // The unit names the installed path; point it at the built binary for the check.
    let unit = std::fs::read_to_string(repo("deploy/systemd/clasp-relay.service")).expect("unit");
    let unit = unit.replace("/usr/local/bin/clasp", env!("CARGO_BIN_EXE_clasp"));
    let dir = std::env::temp_dir().join(format!("clasp-unit-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let path = dir.join("clasp-relay.service");
    std::fs::write(&path, unit).expect("write unit");
    let mut cmd = Command::new("systemd-analyze");
    cmd.args(["verify", "--man=no"]).arg(&path);
    passes(cmd, "systemd-analyze verify");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn compose_files_are_well_formed() {
    for file in ["deploy/compose/single.yml", "deploy/compose/federated.yml"] {
        let mut cmd = Command::new("python3");
        cmd.args(["tests/ops/check_compose.py", file]);
        passes(cmd, "compose check");
    }
}

/// The federated compose file's own relay commands, run here on loopback (the container's
/// config file, hostnames and secret path swapped for local ones): the hub and both sites
/// come up ready (synced), and a write on one site is read on the other.
#[test]
fn the_federated_compose_commands_form_a_working_federation() {
    let mut cmd = Command::new("python3");
    cmd.args(["tests/ops/check_compose.py", "deploy/compose/federated.yml"])
        .current_dir(env!("CARGO_MANIFEST_DIR"));
    let out = run_with_timeout(cmd, Duration::from_secs(30), "compose check");
    let commands: Vec<(String, Vec<String>)> = out
        .stdout
        .lines()
        .filter_map(|l| l.strip_prefix("command "))
        .map(|l| {
            let mut parts = l.split('\t').map(str::to_string);
            let name = parts.next().unwrap_or_default();
            (name, parts.collect())
        })
        .collect();
    assert_eq!(commands.len(), 3, "hub and two sites: {}", out.stdout);
    let dir = std::env::temp_dir().join(format!("clasp-fed-compose-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let secret = dir.join("federation.token");
    std::fs::write(&secret, "compose-test-secret").expect("secret");
    let local = |args: &[String], hub_url: &str| -> Vec<String> {
        let mut out = Vec::new();
        let mut it = args.iter().skip(1); // "relay": Relay::start adds it
        while let Some(a) = it.next() {
            match a.as_str() {
                "--config" => {
                    it.next();
                }
                "/run/secrets/federation_token" => out.push(secret.to_string_lossy().to_string()),
                "ws://hub:7330" => out.push(hub_url.to_string()),
                _ => out.push(a.clone()),
            }
        }
        out
    };
    let (hub_name, hub_args) = &commands[0];
    assert_eq!(hub_name, "hub");
    let hub_args = local(hub_args, "");
    let hub = Relay::start(&hub_args.iter().map(String::as_str).collect::<Vec<_>>());
    let sites: Vec<Relay> = commands[1..]
        .iter()
        .map(|(_, args)| {
            let args = local(args, &hub.url());
            Relay::start(&args.iter().map(String::as_str).collect::<Vec<_>>())
        })
        .collect();
    let ready = |r: &Relay| {
        ureq::get(&format!("http://127.0.0.1:{}/ready", r.port))
            .timeout(Duration::from_secs(2))
            .call()
            .is_ok()
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while !(ready(&hub) && sites.iter().all(ready)) {
        assert!(
            std::time::Instant::now() < deadline,
            "the federation never became ready"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    // Output of a clasp client command; a `get` of an address not there yet fails, and counts
    // as empty.
    let clasp = |relay: &Relay, args: &[&str]| -> (bool, String) {
        let out = Command::new(env!("CARGO_BIN_EXE_clasp"))
            .args(["--url", &relay.url(), "--timeout", "2"])
            .args(args)
            .output()
            .expect("runs clasp");
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).to_string(),
        )
    };
    assert!(
        clasp(&sites[0], &["set", "/site-a/compose", "1"]).0,
        "set on site-a"
    );
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !clasp(&sites[1], &["get", "/site-a/compose"])
        .1
        .contains("= 1")
    {
        assert!(
            std::time::Instant::now() < deadline,
            "site-b never saw site-a's write"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn shipped_configs_pass_clasp_config_check() {
    // The container's file and the ConfigMap's (extracted from the manifest).
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_clasp"));
    cmd.args(["config", "check", "deploy/docker/clasp.toml"]);
    passes(cmd, "clasp config check deploy/docker/clasp.toml");

    let manifest = std::fs::read_to_string(repo("deploy/k8s/clasp.yaml")).expect("manifest");
    let start = manifest
        .find("clasp.toml: |")
        .expect("ConfigMap clasp.toml")
        + "clasp.toml: |".len();
    let toml: String = manifest[start..]
        .lines()
        .skip(1)
        .take_while(|l| l.starts_with("    "))
        .map(|l| format!("{}\n", &l[4..]))
        .collect();
    let dir = std::env::temp_dir().join(format!("clasp-cm-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let path = dir.join("clasp.toml");
    std::fs::write(&path, toml).expect("write");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_clasp"));
    cmd.args(["config", "check"]).arg(&path);
    passes(cmd, "clasp config check (ConfigMap)");
    let _ = std::fs::remove_dir_all(&dir);
}
