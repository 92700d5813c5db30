"""A client that connects after the writes gets the latest value: in the initial SNAPSHOT
(cache), from get(), and in the SNAPSHOT that answers its SUBSCRIBE."""

from lib.harness import client, recorder, scenario, synced, until

P = "/py/late"


async def run():
    writer = await client("py-late-writer")
    own = recorder(writer, f"{P}/**")
    await synced(writer)
    for v in (1, 2, 3):
        await writer.set(f"{P}/x", v)
    await writer.set(f"{P}/deep/map", {"scene": "intro", "level": 0.5})
    # The writer is subscribed, so the relay echoes its own SETs: wait for the last one.
    await until(lambda: len(own) >= 4, 3, "the writer's own SETs echoed")
    assert [v for _, v in own] == [1, 2, 3, {"scene": "intro", "level": 0.5}], f"echoed in order: {own}"

    late = await client("py-late-joiner")
    # connect() returns on WELCOME; the initial SNAPSHOT follows it.
    await until(lambda: late.cached(f"{P}/x") is not None, 3, "initial SNAPSHOT in the cache")
    assert late.cached(f"{P}/x") == 3, f"initial SNAPSHOT has the latest value: {late.cached(f'{P}/x')!r}"
    assert late.cached(f"{P}/deep/map") == {"scene": "intro", "level": 0.5}
    assert await late.get(f"{P}/x", timeout=3) == 3, "get() gives the latest value"

    got = recorder(late, f"{P}/**")
    await until(lambda: len(got) >= 2, 3, "SNAPSHOT on subscribe")
    await synced(late)
    x = [v for a, v in got if a == f"{P}/x"]
    assert x == [3], f"one entry for /x with the latest value, not its history: {x}"

    # A live write after joining arrives.
    await writer.set(f"{P}/x", 4)
    await until(lambda: (f"{P}/x", 4) in got, 3, "live SET after joining")
    assert late.cached(f"{P}/x") == 4


scenario("late_joiner", run)
