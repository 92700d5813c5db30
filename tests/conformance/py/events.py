"""Events (emit) arrive intact and in order at other subscribers, are not echoed to the
sender, and are not stored: a late joiner's snapshot, subscription and get() see nothing."""

import asyncio

from lib.harness import client, get_times_out, recorder, scenario, synced, until

P = "/py/ev"
N = 50


def cue(i):
    return {"n": i, "name": f"cue {i} ✓", "at": [i, i / 2]}


async def run():
    sender = await client("py-ev-sender")
    receiver = await client("py-ev-receiver")
    own = recorder(sender, f"{P}/**")
    got = recorder(receiver, f"{P}/**")
    await synced(sender)
    await synced(receiver)

    for i in range(N):
        await sender.emit(f"{P}/cue", cue(i))
    await sender.emit(f"{P}/bare")  # no payload
    await sender.emit(f"{P}/text", "go")
    await until(lambda: len(got) >= N + 2, 5, f"{N + 2} events")
    await asyncio.sleep(0.2)
    assert len(got) == N + 2, f"each event delivered once: {len(got)}"
    cues = [v for a, v in got if a == f"{P}/cue"]
    assert cues == [cue(i) for i in range(N)], f"events intact and in order: {cues[:3]}..."
    assert (f"{P}/bare", None) in got, "event without payload arrives (as None)"
    assert (f"{P}/text", "go") in got
    assert list(own) == [], f"not echoed to the sender: {own}"

    late = await client("py-ev-late")
    late_got = recorder(late, f"{P}/**")
    await synced(late)
    assert list(late_got) == [], f"a late subscriber gets no stored events: {late_got}"
    for a in (f"{P}/cue", f"{P}/bare", f"{P}/text"):
        assert late.cached(a) is None, f"{a} not in the initial snapshot"
        await get_times_out(late, a)


scenario("events", run)
