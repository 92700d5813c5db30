#!/usr/bin/env bash
# Runs the relay from source: what README.md's run command calls.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
exec cargo run --release --quiet -- relay "$@"
