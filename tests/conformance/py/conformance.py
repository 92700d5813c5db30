"""Conformance scenarios for the official Python client (clasp-to, unchanged) against a
running relay. Usage: python3 conformance.py ws://127.0.0.1:PORT <scenario>

Exits 0 when every assertion holds, 1 with a message otherwise. Every wait is bounded. The
Python client's receive loop dies silently on anything it cannot decode (an ACK, say), so
each scenario ends by checking the loop is still alive: a fresh write still arrives.
"""

import asyncio
import sys
import time

from clasp import Clasp

URL = sys.argv[1]
SCENARIO = sys.argv[2]
problems = []
clients = []


async def client(name):
    c = Clasp(URL, name=name, reconnect=False)
    c.on_error(lambda e: problems.append(f"{name} error: {e!r}"))
    await asyncio.wait_for(c.connect(), 5)
    clients.append(c)
    return c


async def until(predicate, seconds=3.0, what="condition"):
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        if predicate():
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"timed out waiting for {what}")


def recorder(c, pattern, **options):
    got = []
    c.subscribe(pattern, lambda value, address: got.append((address, value)), **options)
    return got


async def still_alive(reader_got, reader_pattern_prefix):
    """A write after the scenario still reaches the reader: its receive loop survived."""
    writer = await client("py-alive")
    marker = f"{reader_pattern_prefix}/alive-{time.monotonic_ns()}"
    await writer.set(marker, 1)
    await until(lambda: any(a == marker for a, _ in reader_got), 3, "post-scenario delivery")


VALUES = {
    "null": None,
    "true": True,
    "false": False,
    "int": 42,
    "negative": -9007199254740993,
    "float": -0.125,
    "string": "héllo wörld ✓",
    "bytes": b"\x00\x01\xfe\xff",
    "array": [1, "two", None, False, [3.5]],
    "map": {"a": 1, "nested": {"b": [1, 2, {"c": "d"}], "e": None}, "f": "g"},
}


async def connect():
    c = await client("py-connect")
    assert c.connected, "connected"
    assert c.session_id, "session id from WELCOME"
    assert abs(c.time() - time.time() * 1_000_000) < 5_000_000, "server time within 5 s"


async def values():
    writer = await client("py-writer")
    reader = await client("py-reader")
    got = recorder(reader, "/py/values/*")
    await asyncio.sleep(0.1)
    for k, v in VALUES.items():
        await writer.set(f"/py/values/{k}", v)
    await until(lambda: len(got) >= len(VALUES), 3, "all value types")
    seen = dict(got)
    for k, v in VALUES.items():
        assert f"/py/values/{k}" in seen, f"received {k}"
        assert seen[f"/py/values/{k}"] == v and type(seen[f"/py/values/{k}"]) is type(v), f"{k}: {seen[f'/py/values/{k}']!r} != {v!r}"
        fresh = await client(f"py-get-{k}")
        # Answered from the initial snapshot the relay sent after WELCOME.
        assert await fresh.get(f"/py/values/{k}") == v, f"get {k}"
    await still_alive(got, "/py/values")


async def wildcards():
    writer = await client("py-writer")
    reader = await client("py-reader")
    one = recorder(reader, "/py/wild/*/level")
    everything = recorder(reader, "/py/wild/**")
    await asyncio.sleep(0.1)
    for a in ["/py/wild/a/level", "/py/wild/b/level", "/py/wild/a/b/level", "/py/wild/c", "/py/other/a/level"]:
        await writer.set(a, 1)
    await writer.set("/py/wild/done", 1)
    await until(lambda: any(a == "/py/wild/done" for a, _ in everything), 3, "marker")
    await asyncio.sleep(0.1)
    assert sorted(a for a, _ in one) == ["/py/wild/a/level", "/py/wild/b/level"], one
    assert sorted(a for a, _ in everything) == [
        "/py/wild/a/b/level", "/py/wild/a/level", "/py/wild/b/level", "/py/wild/c", "/py/wild/done",
    ], everything
    await still_alive(everything, "/py/wild")


async def latejoin():
    writer = await client("py-writer")
    for v in (1, 2, 3):
        await writer.set("/py/late/x", v)
    await asyncio.sleep(0.2)
    late = await client("py-late")
    # connect() returns on WELCOME; the initial SNAPSHOT follows it.
    await until(lambda: late.cached("/py/late/x") == 3, 3, "initial snapshot in the cache")
    got = recorder(late, "/py/late/**")
    await until(lambda: len(got) >= 1, 3, "snapshot on subscribe")
    assert got[-1] == ("/py/late/x", 3), got
    await still_alive(got, "/py/late")


async def events():
    sender = await client("py-sender")
    receiver = await client("py-receiver")
    own = recorder(sender, "/py/ev/**")
    got = recorder(receiver, "/py/ev/**")
    await asyncio.sleep(0.1)
    for i in range(50):
        await sender.emit("/py/ev/cue", {"n": i, "name": f"cue {i}"})
    # Values start at 1/200: the Python client hands callbacks `value or payload`, so a
    # falsy 0.0 would arrive as None (WIRE.md §8.3), a client quirk, not a relay one.
    for i in range(1, 201):
        await sender.stream("/py/ev/fader", i / 200)
    await until(lambda: len(got) >= 250, 5, "50 events and 200 stream values")
    cues = [v["n"] for a, v in got if a == "/py/ev/cue"]
    fader = [v for a, v in got if a == "/py/ev/fader"]
    assert cues == list(range(50)), "events intact and in order"
    assert fader == [i / 200 for i in range(1, 201)], f"stream intact and in order: {fader[:5]}... ({len(fader)})"
    await asyncio.sleep(0.2)
    assert not [a for a, _ in own if a.startswith("/py/ev/")], "not echoed to the sender"
    late = await client("py-late")
    late_got = recorder(late, "/py/ev/**")
    await asyncio.sleep(0.3)
    assert late_got == [] and late.cached("/py/ev/cue") is None, "events are not stored"
    await still_alive(got, "/py/ev")


async def bundle():
    writer = await client("py-writer")
    reader = await client("py-reader")
    got = recorder(reader, "/py/bn/**")
    await asyncio.sleep(0.1)
    # The Python client sends bundles as MessagePack (WIRE.md §6).
    await writer.bundle([{"set": ["/py/bn/a", 1]}, {"set": ["/py/bn/b", "two"]}, {"emit": ["/py/bn/go", "now"]}])
    await until(lambda: len(got) >= 3, 3, "bundle members")
    assert sorted(got) == [("/py/bn/a", 1), ("/py/bn/b", "two"), ("/py/bn/go", "now")], got
    at = writer.time() + 500_000
    await writer.bundle([{"set": ["/py/bn/later", 1]}], at=at)
    await asyncio.sleep(0.3)
    assert not any(a == "/py/bn/later" for a, _ in got), "not before its time"
    await until(lambda: any(a == "/py/bn/later" for a, _ in got), 2, "scheduled bundle")
    await still_alive(got, "/py/bn")


async def unsubscribe():
    writer = await client("py-writer")
    reader = await client("py-reader")
    got = []
    off = reader.subscribe("/py/unsub/**", lambda value, address: got.append(address))
    await asyncio.sleep(0.1)
    await writer.set("/py/unsub/a", 1)
    await until(lambda: len(got) == 1, 3, "first delivery")
    off()
    await asyncio.sleep(0.1)
    await writer.set("/py/unsub/b", 1)
    await asyncio.sleep(0.3)
    assert got == ["/py/unsub/a"], got
    alive = recorder(reader, "/py/unsub2/**")
    await still_alive(alive, "/py/unsub2")


async def gesture():
    pad = await client("py-pad")
    screen = await client("py-screen")
    got = recorder(screen, "/py/touch")
    await asyncio.sleep(0.1)
    await pad.gesture("/py/touch", 7, "start", {"x": 0})
    for i in range(1, 11):
        await pad.gesture("/py/touch", 7, "move", {"x": i})
    await pad.gesture("/py/touch", 7, "end", {"x": 10})
    await until(lambda: len(got) >= 3 and got[-1][1] == {"x": 10}, 3, "gesture end")
    xs = [v["x"] for _, v in got]
    assert xs[0] == 0 and xs[-1] == 10 and xs == sorted(xs), xs
    alive = recorder(screen, "/py/touch2/**")
    await still_alive(alive, "/py/touch2")


async def query():
    c = await client("py-query")
    # Nothing announced yet: an empty RESULT, not a timeout.
    assert await c.query_signals("/py/q/**") == []
    got = recorder(c, "/py/q/**")
    await still_alive(got, "/py/q")


async def get_unknown():
    c = await client("py-get")
    started = time.monotonic()
    try:
        await c.get("/py/none/here", timeout=2)
    except Exception as e:  # the client raises ClaspError("Get timeout")
        assert "timeout" in str(e).lower(), e
    else:
        raise AssertionError("get of an unknown address returned")
    assert time.monotonic() - started < 4
    got = recorder(c, "/py/none2/**")
    await still_alive(got, "/py/none2")


async def main():
    scenario = globals().get(SCENARIO)
    if scenario is None or not asyncio.iscoroutinefunction(scenario):
        print(f"unknown scenario {SCENARIO}")
        return 2
    try:
        await asyncio.wait_for(scenario(), 30)
        await asyncio.sleep(0.1)
        if problems:
            raise AssertionError("client reported problems:\n" + "\n".join(problems))
    except BaseException as e:  # noqa: BLE001 - report everything, including timeouts
        import traceback

        traceback.print_exc()
        print(f"py {SCENARIO}: FAILED: {e!r}")
        return 1
    finally:
        for c in clients:
            try:
                await asyncio.wait_for(c.close(), 2)
            except BaseException:  # noqa: BLE001 - closing is best effort
                pass
    print(f"py {SCENARIO}: ok")
    return 0


sys.exit(asyncio.run(main()))
