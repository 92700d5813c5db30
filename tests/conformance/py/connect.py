"""Connecting: WELCOME completes connect() with a session id and the relay's clock; any path
works; the builder API connects too; two clients get distinct sessions."""

import time

from lib.harness import URL, Clasp, client, scenario, watch
import asyncio


async def run():
    a = await client("py-connect-a")
    assert a.connected, "connected after connect()"
    assert isinstance(a.session_id, str) and a.session_id, f"session id from WELCOME: {a.session_id!r}"
    # time() = local clock + offset from WELCOME: on loopback the relay's clock is ours.
    skew = abs(a.time() - time.time() * 1_000_000)
    assert skew < 1_000_000, f"WELCOME time within 1 s of the local clock (off by {skew:.0f} µs)"

    # Builder API, and a path the relay must ignore.
    b = await asyncio.wait_for(
        Clasp.builder(f"{URL}/clasp/any/path").with_name("py-connect-b").with_reconnect(False).connect(), 5
    )
    watch(b, "py-connect-b")
    assert b.connected, "builder client connected on another path"
    assert b.session_id != a.session_id, "each connection is its own session"


scenario("connect", run)
