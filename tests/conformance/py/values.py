"""Every value type round-trips exactly (types included), through three paths: a live SET to
a subscriber, a GET over the wire (a client that has never seen the address), and the initial
SNAPSHOT of a client that connects afterwards."""

from lib.harness import assert_same, client, recorder, scenario, synced, until

VALUES = {
    "none": None,
    "true": True,
    "false": False,
    "int": 42,
    "zero": 0,
    "negative": -7,
    "i64min": -(2**63),
    "i64max": 2**63 - 1,
    "float": -0.125,
    "whole": 3.0,
    "negzero": -0.0,
    "tiny": 5e-324,
    "huge": 1.7976931348623157e308,
    "infinity": float("inf"),
    "nan": float("nan"),
    "empty": "",
    "string": "héllo wörld ✓ 日本語 🎛️",
    "bytes": b"\x00\x01\x7f\x80\xfe\xff",
    "nobytes": b"",
    "array": [1, "two", None, False, [3.5, []], b"\x09"],
    "emptyArray": [],
    "map": {"a": 1, "ключ": "значение", "nested": {"b": [1, 2, {"c": "d"}], "e": None, "f": {"g": {"h": True}}}},
    "emptyMap": {},
}
P = "/py/values"


async def run():
    writer = await client("py-values-writer")
    reader = await client("py-values-reader")
    getter = await client("py-values-getter")  # connected before the writes, never subscribes
    got = recorder(reader, f"{P}/*")
    await synced(reader)

    for k, v in VALUES.items():
        await writer.set(f"{P}/{k}", v)
    n = len(VALUES)
    await until(lambda: len(got) >= n, 3, f"{n} live SETs")
    assert len(got) == n, f"one delivery per SET: {got.addresses()}"
    seen = dict(got)
    for k, v in VALUES.items():
        assert f"{P}/{k}" in seen, f"live SET of {k} arrived"
        assert_same(seen[f"{P}/{k}"], v, f"live SET of {k}")

    for k, v in VALUES.items():
        assert getter.cached(f"{P}/{k}") is None, f"getter has not seen {k} (so get() asks the relay)"
        assert_same(await getter.get(f"{P}/{k}", timeout=3), v, f"GET of {k}")

    late = await client("py-values-late")
    await until(lambda: late.cached(f"{P}/map") is not None, 3, "initial SNAPSHOT in the cache")
    for k, v in VALUES.items():
        assert f"{P}/{k}" in late._params, f"initial SNAPSHOT has {k}"
        assert_same(late.cached(f"{P}/{k}"), v, f"initial SNAPSHOT of {k}")
    snap = recorder(late, f"{P}/*")
    await until(lambda: len(snap) >= n, 3, "SNAPSHOT of every value on subscribe")
    for k, v in VALUES.items():
        assert_same(dict(snap)[f"{P}/{k}"], v, f"subscribe SNAPSHOT of {k}")


scenario("values", run)
