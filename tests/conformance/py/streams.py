"""200 stream values arrive intact and in order at other subscribers, are not echoed to the
sender, and are not stored."""

import asyncio

from lib.harness import client, get_times_out, recorder, scenario, synced, until

P = "/py/stream"
N = 200


def sample(i):
    # From 1/N up: the client hands callbacks `value or payload`, so a falsy 0.0 would arrive
    # as None (WIRE.md §8.3), a client quirk and not the relay's.
    return (i + 1) / N


async def run():
    sender = await client("py-stream-sender")
    receiver = await client("py-stream-receiver")
    own = recorder(sender, f"{P}/**")
    got = recorder(receiver, f"{P}/**")
    await synced(sender)
    await synced(receiver)

    for i in range(N):
        await sender.stream(f"{P}/fader", sample(i))
    for i in range(20):
        await sender.stream(f"{P}/xyz", {"x": i, "y": -i, "z": [i]})
    await until(lambda: len(got) >= N + 20, 5, f"{N} + 20 stream values (got {len(got)})")
    await asyncio.sleep(0.2)
    fader = [v for a, v in got if a == f"{P}/fader"]
    assert fader == [sample(i) for i in range(N)], f"stream intact and in order: {fader[:5]}... ({len(fader)})"
    xyz = [v for a, v in got if a == f"{P}/xyz"]
    assert xyz == [{"x": i, "y": -i, "z": [i]} for i in range(20)], f"map samples intact and in order: {xyz[:3]}"
    assert len(got) == N + 20, f"nothing extra: {len(got)}"
    assert list(own) == [], "not echoed to the sender"

    late = await client("py-stream-late")
    late_got = recorder(late, f"{P}/**")
    await synced(late)
    assert list(late_got) == [], f"a late subscriber gets no stored samples: {late_got[:3]}"
    assert late.cached(f"{P}/fader") is None, "not in the initial snapshot"
    await get_times_out(late, f"{P}/fader")


scenario("streams", run)
