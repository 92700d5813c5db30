//! Embeds the web console (`console/dist`, built by `scripts/setup.sh` with `npm run build`)
//! into the `clasp` binary: one `include_bytes!` per file, listed in
//! `$OUT_DIR/console_assets.rs`. Without a built console (a fresh clone, `cargo build` alone)
//! the list is empty and the relay serves a page saying how to build it; nothing fails.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

fn main() {
    let root = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").unwrap_or_default());
    let dist = root.join("console").join("dist");
    let out = PathBuf::from(std::env::var_os("OUT_DIR").unwrap_or_default());
    let mut files = Vec::new();
    if dist.join("index.html").is_file() {
        println!("cargo:rerun-if-changed={}", dist.display());
        collect(&dist, &dist, &mut files);
        files.sort();
    } else {
        // Rebuild once a dist appears.
        println!("cargo:rerun-if-changed={}", root.join("console").display());
        println!(
            "cargo:warning=console/dist is missing: the relay will serve a placeholder at / \
             (run scripts/setup.sh or `npm run build` in console/)"
        );
    }
    let mut code = String::from("/// The built console: (path under dist, bytes).\npub static ASSETS: &[(&str, &[u8])] = &[\n");
    for (rel, abs) in &files {
        let _ = writeln!(code, "    ({rel:?}, include_bytes!({abs:?})),");
    }
    code.push_str("];\n");
    if let Err(e) = std::fs::write(out.join("console_assets.rs"), code) {
        panic!("cannot write console_assets.rs into OUT_DIR: {e}");
    }
}

/// Every file under `dir`, as (path relative to `base` with `/`, absolute path).
fn collect(base: &Path, dir: &Path, files: &mut Vec<(String, String)>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            collect(base, &path, files);
        } else if let Ok(rel) = path.strip_prefix(base) {
            let rel = rel
                .components()
                .map(|c| c.as_os_str().to_string_lossy().into_owned())
                .collect::<Vec<_>>()
                .join("/");
            files.push((rel, path.to_string_lossy().into_owned()));
        }
    }
}
