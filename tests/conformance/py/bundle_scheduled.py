"""A BUNDLE with a timestamp (relay time, µs) is held until then; one in the past runs at once."""

import time

from lib.harness import client, scenario, synced, until

P = "/py/bnat"


async def run():
    writer = await client("py-bnat-writer")
    reader = await client("py-bnat-reader")
    got = []
    reader.subscribe(f"{P}/**", lambda value, address: got.append((address, value, time.monotonic())))
    await synced(reader)

    sent = time.monotonic()
    await writer.bundle([{"set": [f"{P}/later", 1]}, {"emit": [f"{P}/cue", "go"]}], at=writer.time() + 800_000)
    await until(lambda: len(got) >= 2, 3, "scheduled bundle members")
    for a, _, t in got:
        after = (t - sent) * 1000
        assert 700 <= after <= 1500, f"{a} delivered {after:.0f} ms after sending, want ~800 ms"
    assert [a for a, _, _ in got] == [f"{P}/later", f"{P}/cue"], got

    before = time.monotonic()
    await writer.bundle([{"set": [f"{P}/past", 2]}], at=writer.time() - 1_000_000)
    await until(lambda: any(a == f"{P}/past" for a, _, _ in got), 1, "past-dated bundle runs at once")
    assert time.monotonic() - before < 0.5, "past-dated bundle not delayed"


scenario("bundle_scheduled", run)
