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
    let mut cmd = Command::new("python3");
    cmd.args(["tests/ops/check_compose.py", "deploy/compose/single.yml"]);
    passes(cmd, "compose check");
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
