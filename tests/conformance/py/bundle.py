"""A BUNDLE (which this client sends as MessagePack, WIRE.md §6) applies: its SETs are stored
and broadcast (the writer included) with every value type intact, its event goes to the
others only, after the SETs, and nothing else arrives."""

import asyncio

from lib.harness import assert_same, client, recorder, scenario, synced, until

P = "/py/bn"
SETS = [
    (f"{P}/int", 1),
    (f"{P}/big", -(2**40)),
    (f"{P}/float", 2.5),
    (f"{P}/str", "two ✓"),
    (f"{P}/bytes", b"\x00\xff\x80"),
    (f"{P}/bool", False),
    (f"{P}/none", None),
    (f"{P}/map", {"nested": [True, None, 1.5, "x"], "k": {"deep": 1}}),
]
EVENT = (f"{P}/go", {"cue": "now"})


async def run():
    writer = await client("py-bn-writer")
    reader = await client("py-bn-reader")
    own = recorder(writer, f"{P}/**")
    got = recorder(reader, f"{P}/**")
    await synced(writer)
    await synced(reader)

    # The event is listed first: SETs are applied before PUBLISHes all the same.
    await writer.bundle([{"emit": list(EVENT)}] + [{"set": [a, v]} for a, v in SETS])
    await until(lambda: len(got) >= len(SETS) + 1, 3, "every bundle member")
    await until(lambda: len(own) >= len(SETS), 3, "the writer's own SETs")
    await asyncio.sleep(0.2)
    assert got.addresses() == [a for a, _ in SETS] + [EVENT[0]], f"SETs in order, then the event: {got.addresses()}"
    for (a, v), (ga, gv) in zip(SETS + [EVENT], got):
        assert_same(gv, v, f"bundle member {a}")
    assert own.addresses() == [a for a, _ in SETS], f"writer gets its SETs, not its event: {own.addresses()}"

    late = await client("py-bn-late")
    for a, v in SETS:
        assert_same(await late.get(a, timeout=3), v, f"bundle SET {a} stored")
    assert f"{P}/none" in late._params, "the stored None is in the late joiner's cache"
    assert late.cached(EVENT[0]) is None, "bundle event not stored"


scenario("bundle", run)
