"""`*` and `**` subscriptions get exactly the matching addresses. Each pattern has a session
of its own, and the check also reads the client's cache, which holds every SET the relay sent
whether or not a local callback matched: so the relay's own filtering is what is tested."""

from lib.harness import client, recorder, scenario, synced, until

P = "/py/wild"
WRITES = [
    f"{P}/a/level",
    f"{P}/b/level",
    f"{P}/a/b/level",
    f"{P}/level",
    f"{P}/a/levels",
    f"{P}/c",
    P,
    f"{P}card/a/level",  # shares the prefix text but not the segment
    "/py/other/a/level",
]
ONE = sorted([f"{P}/a/level", f"{P}/b/level"])
# `**` matches zero or more segments, the bare prefix included (this client's matcher agrees).
ALL = sorted([f"{P}/a/b/level", f"{P}/a/level", f"{P}/a/levels", f"{P}/b/level", f"{P}/c", f"{P}/level", P])
MARKER = f"{P}/z/level"


async def run():
    writer = await client("py-wild-writer")
    one_reader = await client("py-wild-one")
    all_reader = await client("py-wild-all")
    one = recorder(one_reader, f"{P}/*/level")
    everything = recorder(all_reader, f"{P}/**")
    await synced(one_reader)
    await synced(all_reader)

    for a in WRITES:
        await writer.set(a, a)
    await writer.set(MARKER, "done")  # written last: when it arrives, everything before has
    await until(lambda: MARKER in one.addresses(), 3, "marker via *")
    await until(lambda: MARKER in everything.addresses(), 3, "marker via **")

    def strip(got):
        return sorted(a for a in got.addresses() if a != MARKER)

    assert strip(one) == ONE, f"* callbacks: exactly one segment: {strip(one)}"
    assert strip(everything) == ALL, f"** callbacks: everything under the prefix: {strip(everything)}"
    for a, v in one + everything:
        assert v == ("done" if a == MARKER else a), f"value of {a}: {v!r}"

    def delivered(c):
        return sorted(a for a in WRITES if c.cached(a) is not None)

    assert delivered(one_reader) == ONE, f"the relay sent the * session exactly its matches: {delivered(one_reader)}"
    assert delivered(all_reader) == ALL, f"the relay sent the ** session exactly its matches: {delivered(all_reader)}"


scenario("wildcards", run)
