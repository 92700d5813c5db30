//! `clasp key` and `clasp token cap|entity` (CLI-7, CLI-8), run as the built binary: tokens on
//! stdout alone, exit codes 0 ok / 1 failure / 2 usage, key files private.

use std::path::{Path, PathBuf};

use assert_cmd::Command;

/// A fresh directory under the system temp dir, removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> Self {
        let dir = std::env::temp_dir().join(format!(
            "clasp-token-cli-{}-{name}-{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos())
        ));
        std::fs::create_dir_all(&dir).expect("temp dir");
        Self(dir)
    }

    fn file(&self, name: &str) -> String {
        self.0.join(name).display().to_string()
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn clasp() -> Command {
    let mut cmd = Command::cargo_bin("clasp").expect("the clasp binary");
    cmd.env_remove("CLASP_TOKEN")
        .env_remove("RUST_LOG")
        .timeout(std::time::Duration::from_secs(20));
    cmd
}

/// Runs and returns stdout, asserting success.
fn ok(args: &[&str]) -> String {
    let out = clasp().args(args).output().expect("runs");
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("UTF-8")
}

/// Runs, asserts the exit code and returns stderr.
fn fails(args: &[&str], code: i32) -> String {
    let out = clasp().args(args).output().expect("runs");
    assert_eq!(out.status.code(), Some(code), "{args:?}");
    assert!(out.stdout.is_empty(), "nothing on stdout when failing");
    String::from_utf8(out.stderr).expect("UTF-8")
}

/// The one token line a minting command prints.
fn token(args: &[&str], prefix: &str) -> String {
    let out = ok(args);
    let line = out.trim_end_matches('\n');
    assert!(!line.contains('\n'), "only the token on stdout: {out:?}");
    assert!(line.starts_with(prefix), "{line}");
    line.to_owned()
}

/// `clasp key generate -o FILE`: prints the public key, returns it.
fn generate(path: &str) -> String {
    let public = ok(&["key", "generate", "-o", path]);
    let public = public.trim().to_owned();
    assert_eq!(public.len(), 64, "{public}");
    public
}

#[test]
fn key_files_are_private_and_not_overwritten() {
    let dir = TempDir::new("keys");
    let key = dir.file("root.key");
    let public = generate(&key);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(&key)
            .expect("exists")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let err = fails(&["key", "generate", "-o", &key], 1);
    assert!(err.contains("--force"), "{err}");
    let again = ok(&["key", "generate", "-o", &key, "--force"]);
    assert_ne!(again.trim(), public, "--force writes a new key");
    let shown = ok(&["key", "show", &key]);
    assert!(
        shown.contains(&format!("public_key: {}", again.trim())),
        "{shown}"
    );
    assert!(shown.contains("entity_id:  clasp:"), "{shown}");
}

#[test]
fn create_delegate_inspect_verify() {
    let dir = TempDir::new("cap");
    let (root_key, child_key) = (dir.file("root.key"), dir.file("child.key"));
    let root_public = generate(&root_key);
    let child_public = generate(&child_key);
    let root_pub = dir.file("root.pub");
    std::fs::write(&root_pub, format!("{root_public}\n")).expect("write");

    let root = token(
        &[
            "token",
            "cap",
            "create",
            "-k",
            &root_key,
            "-s",
            "write:/lights/**",
            "-e",
            "30d",
        ],
        "cap_",
    );
    let child = token(
        &[
            "token",
            "cap",
            "delegate",
            &root,
            "--key",
            &child_key,
            "-s",
            "read:/lights/stage/*",
            "-e",
            "7d",
            "--audience",
            &child_public,
        ],
        "cap_",
    );

    let shown = ok(&["token", "cap", "inspect", &child]);
    for expected in [
        "version:    1".to_owned(),
        format!("issuer:     {child_public}"),
        format!("audience:   {child_public}"),
        "scopes:     read:/lights/stage/*".to_owned(),
        "depth:      1".to_owned(),
        format!("  0: issuer {root_public} scopes write:/lights/**"),
    ] {
        assert!(
            shown.contains(&expected),
            "missing {expected:?} in\n{shown}"
        );
    }

    // The same token validates against the .pub file, the key file and the hex.
    for anchor in [&root_pub, &root_key, &root_public] {
        let out = ok(&["token", "cap", "verify", &child, "--trust-anchor", anchor]);
        assert!(out.starts_with("valid\n"), "{out}");
        assert!(out.contains("scopes:     read:/lights/stage/*"), "{out}");
    }
    let err = fails(
        &[
            "token",
            "cap",
            "verify",
            &child,
            "--trust-anchor",
            &child_key,
        ],
        1,
    );
    assert!(err.contains("not a trust anchor"), "{err}");
    let err = fails(
        &[
            "token",
            "cap",
            "verify",
            &child,
            "--trust-anchor",
            &root_pub,
            "--max-depth",
            "0",
        ],
        1,
    );
    assert!(err.contains("too deep"), "{err}");
}

#[test]
fn delegation_never_widens() {
    let dir = TempDir::new("widen");
    let (root_key, child_key) = (dir.file("root.key"), dir.file("child.key"));
    generate(&root_key);
    generate(&child_key);
    let root = token(
        &[
            "token",
            "cap",
            "create",
            "-k",
            &root_key,
            "-s",
            "read:/a/**",
            "-e",
            "1h",
        ],
        "cap_",
    );
    for wider in ["write:/a/**", "read:/**", "read:/a/x,read:/b"] {
        let err = fails(
            &[
                "token", "cap", "delegate", &root, "-k", &child_key, "-s", wider,
            ],
            1,
        );
        assert!(err.contains("refusing to delegate"), "{err}");
    }
}

#[test]
fn usage_errors_exit_2() {
    let dir = TempDir::new("usage");
    let key = dir.file("k.key");
    generate(&key);
    for args in [
        vec!["token", "cap", "create", "-k", &key, "-s", "nonsense"],
        vec![
            "token", "cap", "create", "-k", &key, "-s", "read:/a", "-e", "5w",
        ],
        vec![
            "token",
            "cap",
            "create",
            "-k",
            &key,
            "-s",
            "read:/a",
            "--audience",
            "abc",
        ],
        vec![
            "token",
            "cap",
            "verify",
            "cap_x",
            "--trust-anchor",
            "/no/such/anchor",
        ],
        vec!["token", "cap", "verify", "cap_x"],
    ] {
        fails(&args, 2);
    }
    let err = fails(&["token", "cap", "inspect", "cap_AAAA"], 1);
    assert!(err.contains("malformed"), "{err}");
}

#[test]
fn entity_keygen_mint_inspect() {
    let dir = TempDir::new("entity");
    let key = dir.file("desk.key");
    let out = ok(&[
        "token",
        "entity",
        "keygen",
        "-o",
        &key,
        "-n",
        "Stage desk",
        "-t",
        "service",
    ]);
    let id = field(&out, "entity_id:");
    let public = field(&out, "public_key:");
    assert!(id.starts_with("clasp:"), "{out}");
    assert!(Path::new(&key).exists());

    let minted = token(&["token", "entity", "mint", "-k", &key], "ent_");
    let signed = token(
        &["token", "entity", "sign", "-k", &key, "--id", &id],
        "ent_",
    );
    let shown = ok(&["token", "entity", "inspect", &signed, "--key", &public]);
    assert!(shown.contains(&format!("entity_id: {id}")), "{shown}");
    assert!(shown.contains("verified:"), "{shown}");
    ok(&["token", "entity", "inspect", &minted, "--key", &key]);

    let err = fails(
        &["token", "entity", "mint", "-k", &key, "--id", "clasp:other"],
        1,
    );
    assert!(err.contains("belongs to entity"), "{err}");
    let other = dir.file("other.key");
    generate(&other);
    fails(&["token", "entity", "inspect", &minted, "--key", &other], 1);
}

fn field(out: &str, name: &str) -> String {
    out.lines()
        .find_map(|l| l.strip_prefix(name))
        .map(|v| v.trim().to_owned())
        .unwrap_or_else(|| panic!("no {name} in {out}"))
}
