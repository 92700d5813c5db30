#!/usr/bin/env bash
# The whole test suite: what README.md and .ci/run call. Ends with cargo-nextest's summary.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
# A one-off build gains nothing from incremental caches, which only cost disk (GBs on CI).
export CARGO_INCREMENTAL=0
# The protocol crate must stay usable on embedded targets: build it as no_std + alloc.
cargo build --quiet -p clasp-proto --no-default-features
# Doctests (nextest does not run them): the SDK guide's examples among them.
cargo test --quiet --workspace --doc
cargo nextest run --workspace --all-targets --no-fail-fast
