"""Cross-client check, Python side: subscribes to /cross/**, publishes its own
set/event/stream under /cross/py/, then prints what it received from the others as JSON
lines. Usage: python3 cross.py ws://127.0.0.1:PORT"""

import asyncio
import json
import sys

from clasp import Clasp

VALUE = {"n": 1.5, "s": "héllo", "b": True, "z": None, "list": [0.25, "x", False]}


async def main():
    c = Clasp(sys.argv[1], name="cross-py", reconnect=False)
    await asyncio.wait_for(c.connect(), 5)
    got = []
    c.subscribe("/cross/**", lambda value, address: got.append({"address": address, "value": value}))
    await asyncio.sleep(1.5)
    await c.set("/cross/py/param", VALUE)
    await c.emit("/cross/py/event", VALUE)
    await c.stream("/cross/py/stream", 0.75)
    await asyncio.sleep(2.0)
    for g in got:
        if not g["address"].startswith("/cross/py/"):
            print(json.dumps({"by": "py", **g}))
    await asyncio.wait_for(c.close(), 2)


asyncio.run(main())
