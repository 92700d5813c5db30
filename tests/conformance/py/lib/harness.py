"""Shared harness of the Python conformance scenarios: the official `clasp-to` client
(package `clasp`), unchanged, against a running relay.

A scenario script is `python3 <scenario>.py ws://127.0.0.1:PORT`; it calls
`scenario(name, coroutine_function)`, which exits 0 when the coroutine returns and nothing
went wrong inside the clients, and 1 with a message otherwise. Every wait is bounded.

The Python client's receive loop dies silently on anything it cannot decode (an ACK, a
SYNC, a text message: WIRE.md §7.4, §8.2): it hands the exception to `on_error` and stops.
So every client registers `on_error`, router ERROR frames (which the client only prints) are
caught from stdout, and at the end each client's receive loop must still be running and
must still receive a fresh write.
"""

import asyncio
import math
import os
import sys
import time
import traceback

from clasp import Clasp, ClaspBuilder  # noqa: F401 - re-exported for the scenarios
from clasp.client import ClaspError  # noqa: F401

if len(sys.argv) < 2 or not sys.argv[1].startswith(("ws://", "wss://")):
    print("usage: python3 <scenario>.py ws://127.0.0.1:PORT")
    sys.exit(2)
URL = sys.argv[1]

problems = []
_clients = []


class _Stdout:
    """Passes output through and records the `CLASP error: ...` lines the client prints."""

    def __init__(self, inner):
        self.inner = inner

    def write(self, text):
        if text.startswith("CLASP error:"):
            problems.append(f"router ERROR printed by the client: {text.strip()}")
        return self.inner.write(text)

    def flush(self):
        self.inner.flush()

    def __getattr__(self, name):
        return getattr(self.inner, name)


sys.stdout = _Stdout(sys.stdout)


def watch(c, name):
    """Watches a connected client's errors and disconnects; it is checked and closed at the end."""
    c.on_error(lambda e: problems.append(f"{name}: client error (its receive loop has stopped): {e!r}"))
    c.on_disconnect(lambda reason: None if getattr(c, "closing", False) else problems.append(f"{name}: disconnected by the relay: {reason}"))
    c.harness_name = name
    _clients.append(c)
    return c


# On a relay that requires tokens, the token the harness's own clients use.
TOKEN = os.environ.get("CLASP_TOKEN") or None


def forgive(pattern):
    """Removes the expected problems containing `pattern` (an ERROR a scenario provoked)."""
    before = len(problems)
    problems[:] = [p for p in problems if pattern not in p]
    return before - len(problems)


async def client(name, url=None, token=None):
    """A connected client; no reconnect, so a drop shows."""
    c = Clasp(url or URL, name=name, reconnect=False, token=token or TOKEN)
    # The client waits for WELCOME without a timeout of its own.
    await asyncio.wait_for(c.connect(), 5)
    return watch(c, name)


async def until(predicate, seconds=3.0, what="condition"):
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        if predicate():
            return
        await asyncio.sleep(0.005)
    raise AssertionError(f"timed out after {seconds} s waiting for {what}")


class Recorder(list):
    """Every callback of one subscription as (address, value)."""

    def __init__(self, c, pattern, **options):
        super().__init__()
        self.off = c.subscribe(pattern, lambda value, address: self.append((address, value)), **options)

    def addresses(self):
        return [a for a, _ in self]


def recorder(c, pattern, **options):
    return Recorder(c, pattern, **options)


_syncs = 0


async def synced(c):
    """Round trip through the relay: once it returns, every SUBSCRIBE/UNSUBSCRIBE `c` sent
    before is in effect. The client sends SUBSCRIBE from a task, so let those tasks run, then
    set a param of its own and wait for it through a subscription made after the others."""
    global _syncs
    _syncs += 1
    address = f"/sync/py/{os.getpid()}/{_syncs}"
    got = recorder(c, address)
    for _ in range(5):
        await asyncio.sleep(0)
    await c.set(address, _syncs)
    await until(lambda: len(got) > 0, 3, f"round trip through the relay ({address})")
    got.off()
    for _ in range(5):
        await asyncio.sleep(0)


def same(a, b):
    """Exact equality, types included: True is not 1, 1 is not 1.0, NaN equals NaN."""
    if type(a) is not type(b):
        return False
    if isinstance(a, float):
        return (math.isnan(a) and math.isnan(b)) or (a == b and math.copysign(1, a) == math.copysign(1, b))
    if isinstance(a, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    return a == b


async def get_times_out(c, address, timeout=1.0):
    """get() of an address the relay does not have: the client's timeout, nothing else."""
    try:
        value = await c.get(address, timeout=timeout)
    except ClaspError as e:
        assert "timeout" in str(e).lower(), f"get({address}) failed otherwise: {e!r}"
    else:
        raise AssertionError(f"get({address}) returned {value!r}")


def assert_same(got, want, what):
    assert same(got, want), f"{what}: got {got!r} ({type(got).__name__}), want {want!r} ({type(want).__name__})"


async def _check_alive():
    """Each client's receive loop still runs and still receives: a fresh write arrives."""
    live = [c for c in _clients if not getattr(c, "closing", False)]
    if not live:
        return
    for c in live:
        task = c._receive_task  # the client's only receive loop
        assert task is not None and not task.done(), f"{c.harness_name}: receive loop has ended"
    writer = Clasp(URL, name="py-alive-writer", reconnect=False, token=TOKEN)
    await asyncio.wait_for(writer.connect(), 5)
    marker = f"/alive/py/{os.getpid()}/{time.monotonic_ns()}"
    seen = {c.harness_name: recorder(c, marker) for c in live}
    for _ in range(5):
        await asyncio.sleep(0)
    await synced_all(live)
    await writer.set(marker, "still alive")
    for c in live:
        await until(lambda: len(seen[c.harness_name]) > 0, 3, f"{c.harness_name}: a write after the scenario (is its receive loop alive?)")
    await asyncio.wait_for(writer.close(), 3)


async def synced_all(clients):
    for c in clients:
        await synced(c)


async def close_all():
    for c in _clients:
        c.closing = True
        try:
            await asyncio.wait_for(c.close(), 3)
        except BaseException:  # noqa: BLE001 - closing is best effort
            pass


def scenario(name, fn, limit=30):
    async def main():
        try:
            await asyncio.wait_for(fn(), limit)
            await _check_alive()
            await asyncio.sleep(0.1)
            if problems:
                raise AssertionError("the clients reported problems:\n  " + "\n  ".join(problems))
        except BaseException as e:  # noqa: BLE001 - report everything, timeouts included
            traceback.print_exc(file=sys.stdout)
            print(f"py {name}: FAILED: {e!r}")
            if problems:
                print("also reported by the clients:\n  " + "\n  ".join(problems))
            return 1
        finally:
            await close_all()
        print(f"py {name}: ok")
        return 0

    sys.exit(asyncio.run(main()))
