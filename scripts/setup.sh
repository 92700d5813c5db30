#!/usr/bin/env bash
# Installs everything the relay and the test suite need, idempotently: system packages for
# the -sys crates and the real protocol peers the tests talk to (mosquitto, JACK, liblo),
# the official JS and Python clients for conformance tests, and cargo-nextest.
# Safe to run again: each step checks before it installs.
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PACKAGES=(cmake pkg-config libssl-dev libasound2-dev mosquitto mosquitto-clients jackd2 liblo-tools systemd)
# `ip netns` for the sACN multicast test (tests/bridge_sacn.rs).
APT_PACKAGES+=(iproute2)

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi

missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  $SUDO apt-get update -qq
  # jackd2 asks about realtime priority; answer non-interactively.
  echo "jackd2 jackd/tweak_rt_limits boolean false" | $SUDO debconf-set-selections
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

if ! command -v cargo-nextest >/dev/null 2>&1; then
  echo "setup: installing cargo-nextest"
  cargo install cargo-nextest --locked
fi

# Official clients for the conformance tests (tests/conformance), pinned to the versions the
# wire spec was verified against. Reinstalled when missing or at another version.
if [ -f tests/conformance/package.json ]; then
  if ! command -v node >/dev/null 2>&1 || [ "$(node -p 'process.versions.node.split(".")[0]')" -lt 20 ]; then
    echo "setup: the conformance tests need Node.js 20 or later (with npm)" >&2
    exit 1
  fi
  js_want=$(node -p 'require("./tests/conformance/package.json").dependencies["@clasp-to/core"]')
  js_have=$(node -p 'try { require("./tests/conformance/node_modules/@clasp-to/core/package.json").version } catch { "" }')
  if [ "$js_have" != "$js_want" ]; then
    echo "setup: installing the official JS client @clasp-to/core $js_want"
    (cd tests/conformance && npm ci --no-audit --no-fund --silent)
  fi
fi
if [ -f tests/conformance/requirements.txt ]; then
  py_want=$(sed -n 's/^clasp-to==//p' tests/conformance/requirements.txt)
  py_have=$(python3 -c 'import importlib.metadata as m; print(m.version("clasp-to"))' 2>/dev/null || true)
  if [ "$py_have" != "$py_want" ]; then
    echo "setup: installing the official Python client clasp-to $py_want"
    # A Debian-managed python3 refuses plain pip installs (PEP 668); this one is for tests only.
    python3 -m pip install -q -r tests/conformance/requirements.txt \
      || python3 -m pip install -q --break-system-packages -r tests/conformance/requirements.txt
  fi
fi

# Protocol peers for the bridge tests (python-osc, schemathesis, websockets), pinned.
if [ -f tests/bridges/requirements.txt ]; then
  if ! python3 - tests/bridges/requirements.txt <<'PY' >/dev/null 2>&1
import sys, importlib.metadata as m
for line in open(sys.argv[1]):
    line = line.split("#")[0].strip()
    if line:
        name, want = line.split("==")
        assert m.version(name) == want, name
PY
  then
    echo "setup: installing the bridge test peers (tests/bridges/requirements.txt)"
    python3 -m pip install -q -r tests/bridges/requirements.txt \
      || python3 -m pip install -q --break-system-packages -r tests/bridges/requirements.txt
  fi
fi
