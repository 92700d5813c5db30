"""A plain JSON WebSocket client (python `websockets`) driven line by line by a test.

Usage: wsjson_peer.py URL [HEADER: VALUE ...]

Prints `OPEN` once connected (or `REFUSED <http status>` / `FAILED <why>` and exits), then
every text message received on its own line, and `CLOSED <code> <reason>` at the end.
Each stdin line is sent as a text frame, except `!binary` (a binary frame), `!big N`
(a text frame of N bytes), and `!pause` / `!resume` (stop and restart reading, so the
bridge sees a slow client). Messages over 4096 characters are printed as `BIG <length>`.
"""

import asyncio
import sys

from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus


def say(line):
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


reading = asyncio.Event()
reading.set()


async def pump_stdin(ws):
    while True:
        line = await asyncio.to_thread(sys.stdin.readline)
        if not line:
            await ws.close()
            return
        line = line.rstrip("\n")
        if line == "!binary":
            await ws.send(b"\x00\x01binary")
        elif line == "!pause":
            reading.clear()
        elif line == "!resume":
            reading.set()
        elif line.startswith("!big "):
            await ws.send("x" * int(line.split()[1]))
        else:
            await ws.send(line)


async def main():
    url = sys.argv[1]
    headers = [tuple(h.split(": ", 1)) for h in sys.argv[2:]]
    try:
        ws = await asyncio.wait_for(connect(url, additional_headers=headers, open_timeout=10, close_timeout=2), 15)
    except InvalidStatus as e:
        say(f"REFUSED {e.response.status_code}")
        return
    except Exception as e:  # noqa: BLE001 - reported to the test
        say(f"FAILED {e!r}")
        return
    say("OPEN")
    sender = asyncio.create_task(pump_stdin(ws))
    try:
        async for message in ws:
            await reading.wait()
            if not isinstance(message, str):
                say("BINARY")
            elif len(message) > 4096:
                say(f"BIG {len(message)}")
            else:
                say(message)
    except ConnectionClosed:
        pass
    say(f"CLOSED {ws.close_code} {ws.close_reason}")
    sender.cancel()


asyncio.run(main())
