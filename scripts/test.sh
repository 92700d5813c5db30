#!/usr/bin/env bash
# The whole test suite: what README.md and .ci/run call. Ends with cargo-nextest's summary.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
# The protocol crate must stay usable on embedded targets: build it as no_std + alloc.
cargo build --quiet -p clasp-proto --no-default-features
cargo nextest run --workspace --all-targets --no-fail-fast
