"""A JSON WebSocket service (python `websockets`) for the bridge's client mode.

Usage: wsjson_service.py PORT

Prints `LISTENING` once bound, `CONNECTED` for each connection, and `RECV <text>` for each
text message received; each stdin line is sent to every connected client.
"""

import asyncio
import sys

from websockets.asyncio.server import serve

clients = set()


def say(line):
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


async def handler(ws):
    clients.add(ws)
    say("CONNECTED")
    try:
        async for message in ws:
            if isinstance(message, str):
                say("RECV " + message)
    except Exception:  # noqa: BLE001 - a dropped client is normal here
        pass
    finally:
        clients.discard(ws)


async def pump_stdin():
    while True:
        line = await asyncio.to_thread(sys.stdin.readline)
        if not line:
            return
        for ws in list(clients):
            try:
                await ws.send(line.rstrip("\n"))
            except Exception:  # noqa: BLE001
                pass


async def main():
    port = int(sys.argv[1])
    async with serve(handler, "127.0.0.1", port):
        say("LISTENING")
        await pump_stdin()


asyncio.run(main())
