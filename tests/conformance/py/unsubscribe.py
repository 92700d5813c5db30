"""After unsubscribe the relay stops delivering: no callback, and nothing reaches the client
at all (its cache, which every received SET fills, stays empty for later writes)."""

import asyncio

from lib.harness import client, recorder, scenario, synced, until

P = "/py/unsub"


async def run():
    writer = await client("py-unsub-writer")
    reader = await client("py-unsub-reader")
    got = recorder(reader, f"{P}/**")
    kept = recorder(reader, f"{P}/kept/*")
    await synced(reader)
    await writer.set(f"{P}/a", 1)
    await writer.emit(f"{P}/ev", "one")
    await until(lambda: len(got) == 2, 3, "deliveries before unsubscribe")

    got.off()
    await synced(reader)
    await writer.set(f"{P}/b", 2)
    await writer.emit(f"{P}/ev", "two")
    await writer.set(f"{P}/kept/x", 3)
    await until(lambda: len(kept) == 1, 3, "the other subscription still delivers")
    await asyncio.sleep(0.2)
    assert got.addresses() == [f"{P}/a", f"{P}/ev"], f"no callbacks after unsubscribe: {got}"
    assert f"{P}/b" not in reader._params, "the relay sent nothing for the removed subscription"
    assert reader.cached(f"{P}/kept/x") == 3


scenario("unsubscribe", run)
