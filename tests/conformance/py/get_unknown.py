"""get() of an address nobody wrote: the relay answers nothing, so the client raises its
timeout (default 5 s), not earlier through an ERROR or a dropped connection."""

import time

from lib.harness import ClaspError, client, scenario, synced


async def run():
    c = await client("py-get-unknown")
    started = time.monotonic()
    try:
        value = await c.get("/py/none/here")
    except ClaspError as e:
        assert "timeout" in str(e).lower(), f"failed otherwise: {e!r}"
    else:
        raise AssertionError(f"get of an unknown address returned {value!r}")
    took = time.monotonic() - started
    assert 4.5 <= took < 6.5, f"raised by the client's 5 s timeout (after {took:.2f} s)"
    assert c.connected, "still connected"
    await synced(c)


scenario("get_unknown", run)
