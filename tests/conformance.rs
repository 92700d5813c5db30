//! The official clients, unchanged, against a freshly started relay: `@clasp-to/core` 3.3.2
//! (npm) and `clasp-to` 4.2.0 (PyPI), installed by `scripts/setup.sh` (the tests fail, never
//! skip, when they are missing). One test per scenario script in `tests/conformance/js` and
//! `tests/conformance/py`; each script asserts concrete values, checks that its clients
//! reported no decode errors or router ERRORs, and exits non-zero otherwise.

mod common;

use std::path::Path;
use std::time::Duration;

use common::*;

/// Per script; the scripts bound every wait themselves and stop after 30 s.
const SCRIPT_TIMEOUT: Duration = Duration::from_secs(60);

fn js(scenario: &str) {
    require_js_client();
    let script = conformance_dir().join("js").join(format!("{scenario}.mjs"));
    assert!(script.exists(), "no scenario script {}", script.display());
    let relay = Relay::start(&[]);
    let mut cmd = node();
    cmd.arg(&script).arg(relay.url());
    run_ok(cmd, SCRIPT_TIMEOUT, &format!("node js/{scenario}.mjs"));
}

fn py(scenario: &str) {
    require_py_client();
    let script = conformance_dir().join("py").join(format!("{scenario}.py"));
    assert!(script.exists(), "no scenario script {}", script.display());
    let relay = Relay::start(&[]);
    let mut cmd = std::process::Command::new("python3");
    cmd.arg(&script).arg(relay.url());
    run_ok(cmd, SCRIPT_TIMEOUT, &format!("python3 py/{scenario}.py"));
}

macro_rules! scenarios {
    ($runner:ident: $($name:ident),* $(,)?) => {
        mod $runner {
            /// Every scenario of this client, in the order listed.
            pub const ALL: &[&str] = &[$(stringify!($name)),*];
            $(#[test] fn $name() { super::$runner(stringify!($name)); })*
        }
    };
}

scenarios!(js: connect, values, wildcards, late_joiner, events, streams, bundle,
    bundle_scheduled, unsubscribe, gesture, get_unknown);
scenarios!(py: connect, values, wildcards, late_joiner, events, streams, bundle,
    bundle_scheduled, unsubscribe, gesture, get_unknown, query);

/// A script added to `js/` or `py/` must get its test here (or be used by another test file):
/// otherwise it would silently never run.
#[test]
fn every_scenario_script_has_a_test() {
    let dir = conformance_dir();
    let tests_dir = dir.parent().expect("tests/");
    let other_tests: String = std::fs::read_dir(tests_dir)
        .expect("tests/ is readable")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "rs") && !p.ends_with("conformance.rs"))
        .map(|p| std::fs::read_to_string(p).expect("test file is readable"))
        .collect();
    let scripts = |sub: &str, ext: &str| -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(dir.join(sub))
            .expect("script folder is readable")
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == ext))
            .filter_map(|p| file_stem(&p))
            .collect();
        names.sort();
        names
    };
    for (sub, ext, listed) in [("js", "mjs", js::ALL), ("py", "py", py::ALL)] {
        for name in scripts(sub, ext) {
            let used_elsewhere = other_tests.contains(&format!("{sub}/{name}.{ext}"));
            assert!(
                listed.contains(&name.as_str()) || used_elsewhere,
                "tests/conformance/{sub}/{name}.{ext} has no test: add it to scenarios!({sub}: ...)"
            );
        }
    }
    // JS and Python cover the same scenarios, except what only one client can express.
    let js_only: Vec<_> = js::ALL.iter().filter(|n| !py::ALL.contains(n)).collect();
    let py_only: Vec<_> = py::ALL.iter().filter(|n| !js::ALL.contains(n)).collect();
    assert!(
        js_only.is_empty(),
        "JS scenarios without a Python twin: {js_only:?}"
    );
    assert_eq!(
        py_only,
        [&"query"],
        "only QUERY is Python-only (the JS client cannot send it)"
    );
}

fn file_stem(p: &Path) -> Option<String> {
    p.file_stem().and_then(|s| s.to_str()).map(str::to_string)
}
