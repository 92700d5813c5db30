"""query_signals (sent by this client as MessagePack QUERY, WIRE.md §6) gets a RESULT with the
signals announced so far whose address matches. The official clients cannot ANNOUNCE, so a
raw WebSocket peer announces them (binary ANNOUNCE, QoS 1) and must get an ACK for it."""

import asyncio
import struct

import websockets

from lib.harness import URL, client, scenario

NS = "/py/q"


def s(text):
    b = text.encode()
    return struct.pack(">H", len(b)) + b


def frame(payload, qos=0):
    return bytes([0x53, (qos << 6) | 0x01]) + struct.pack(">H", len(payload)) + payload


def announce():
    signals = [
        # address, signal type (0 param, 1 event), opt flags (1 datatype, 2 access), fields
        s(f"{NS}/level") + bytes([0, 0x03]) + s("f64") + s("rw"),
        s(f"{NS}/fire") + bytes([1, 0x00]),
        s("/py/elsewhere/x") + bytes([0, 0x01]) + s("i64"),
    ]
    return bytes([0x03]) + s(NS) + struct.pack(">H", len(signals)) + b"".join(signals)


async def run():
    async with websockets.connect(URL, subprotocols=["clasp"], open_timeout=5) as raw:
        raw_hello = bytes([0x01, 1, 0xE0]) + s("py-raw-announcer") + s("")
        await raw.send(frame(raw_hello))
        first = await asyncio.wait_for(raw.recv(), 3)
        assert first[4] == 0x02, f"WELCOME first: {first.hex()}"
        await raw.send(frame(announce(), qos=1))
        while True:
            reply = await asyncio.wait_for(raw.recv(), 3)
            if reply[4] == 0x23:  # the initial SNAPSHOT
                continue
            assert reply[4] == 0x50, f"ACK for the QoS 1 ANNOUNCE, got {reply.hex()}"
            break

        c = await client("py-query")
        found = await c.query_signals(f"{NS}/**", timeout=3)
        by_address = {sig["address"]: sig for sig in found}
        assert sorted(by_address) == [f"{NS}/fire", f"{NS}/level"], f"matching signals only: {found}"
        assert by_address[f"{NS}/level"] == {"address": f"{NS}/level", "type": "param", "datatype": "f64", "access": "rw"}, found
        assert by_address[f"{NS}/fire"] == {"address": f"{NS}/fire", "type": "event", "datatype": None, "access": None}, found

        one = await c.query_signals("/py/*/x", timeout=3)
        assert [sig["address"] for sig in one] == ["/py/elsewhere/x"], f"* query: {one}"
        assert await c.query_signals("/py/nothing/**", timeout=3) == [], "no match: an empty RESULT, not silence"


scenario("query", run)
