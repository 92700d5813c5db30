"""Gestures: start, moves, end arrive in order (the relay may coalesce moves, keeping the
latest), two gesture ids at once stay apart, and the sender gets no echo. This client hands
callbacks the payload only, so each payload names its gesture (`g`) and position (`x`)."""

import asyncio

from lib.harness import client, recorder, scenario, synced, until

P = "/py/touch"
MOVES = 20


async def run():
    pad = await client("py-gesture-pad")
    screen = await client("py-gesture-screen")
    own = recorder(pad, f"{P}/**")
    got = recorder(screen, f"{P}/**")
    await synced(pad)
    await synced(screen)

    for g in (1, 2):
        await pad.gesture(f"{P}/surface", g, "start", {"x": 0, "g": g})
    for i in range(1, MOVES + 1):
        for g in (1, 2):
            await pad.gesture(f"{P}/surface", g, "move", {"x": i, "g": g})
    for g in (1, 2):
        await pad.gesture(f"{P}/surface", g, "end", {"x": MOVES, "g": g, "end": True})

    def of(g):
        return [v for _, v in got if v["g"] == g]

    await until(lambda: all(of(g) and of(g)[-1].get("end") for g in (1, 2)), 3, "both gesture ends")
    await asyncio.sleep(0.1)
    for g in (1, 2):
        mine = of(g)
        xs = [v["x"] for v in mine]
        assert mine[0] == {"x": 0, "g": g}, f"gesture {g} starts with its start payload: {mine[:2]}"
        assert mine[-1] == {"x": MOVES, "g": g, "end": True}, f"gesture {g} ends with its end payload"
        assert len(mine) >= 3, f"gesture {g}: at least one move: {xs}"
        assert mine[-2] == {"x": MOVES, "g": g}, f"gesture {g}: the last move is the final position: {mine[-3:]}"
        assert xs == sorted(xs) and len(set(xs[1:-1])) == len(xs[1:-1]), f"gesture {g}: positions in order, each once: {xs}"
        assert sum(1 for v in mine if v.get("end")) == 1, f"gesture {g}: one end"
    assert all(a == f"{P}/surface" for a in got.addresses())
    assert list(own) == [], "no echo to the sender"


scenario("gesture", run)
