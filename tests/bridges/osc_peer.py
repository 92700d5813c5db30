#!/usr/bin/env python3
"""An independent OSC peer for tests/bridge_osc.rs, built on python-osc (not our code).

Messages are given as JSON: [["/address", [["f", 0.5], ["s", "hi"], ["T"], ...]], ...],
each argument a python-osc type tag and its value (b: hex string, m: [port, status, d1, d2],
r: int). What a peer receives is printed as one JSON line per message:
{"from": port, "address": "/x", "types": "f", "args": [0.5]}.

  osc_peer.py send PORT MESSAGES              one datagram per message, from one socket
  osc_peer.py bundle PORT DELAY MESSAGES [--nested]
                                              one bundle at now+DELAY s (DELAY < 0: immediately);
                                              prints {"at": unix seconds}
  osc_peer.py raw PORT HEX [HEX ...]          raw datagrams, from one socket
  osc_peer.py peer PORT SECONDS MESSAGES      bind, print {"ready": port}, send, then print
                                              what comes back for SECONDS
  osc_peer.py tcp PORT SECONDS MESSAGES       the same over TCP with SLIP framing (OSC 1.1)
  osc_peer.py listen SECONDS                  a UDP receiver: {"ready": port}, then messages
  osc_peer.py tcp-server SECONDS MESSAGES [PORT]
                                              a SLIP TCP server: {"ready": port}; on a
                                              connection {"connected": true}, sends MESSAGES,
                                              then prints what comes for SECONDS
"""
import json
import socket
import sys
import time

from pythonosc.osc_bundle_builder import IMMEDIATELY, OscBundleBuilder
from pythonosc.osc_message_builder import OscMessageBuilder
from pythonosc.parsing import osc_types

END, ESC, ESC_END, ESC_ESC = 0xC0, 0xDB, 0xDC, 0xDD


def out(obj):
    print(json.dumps(obj), flush=True)


def build(address, args):
    b = OscMessageBuilder(address=address)
    for arg in args:
        tag = arg[0]
        value = arg[1] if len(arg) > 1 else None
        if tag == "b":
            value = bytes.fromhex(value)
        elif tag == "m":
            value = tuple(value)
        b.add_arg(value, tag)
    return b.build()


def messages(spec):
    return [build(a, args) for a, args in json.loads(spec)]


def parse(dgram):
    address, i = osc_types.get_string(dgram, 0)
    types, i = osc_types.get_string(dgram, i)
    args = []
    for t in types[1:]:
        if t == "i":
            v, i = osc_types.get_int(dgram, i)
        elif t == "h":
            v, i = osc_types.get_int64(dgram, i)
        elif t == "f":
            v, i = osc_types.get_float(dgram, i)
        elif t == "d":
            v, i = osc_types.get_double(dgram, i)
        elif t == "s":
            v, i = osc_types.get_string(dgram, i)
        elif t == "b":
            v, i = osc_types.get_blob(dgram, i)
            v = v.hex()
        elif t in "TFN":
            v = {"T": True, "F": False, "N": None}[t]
        else:
            raise ValueError(f"unexpected type tag {t!r}")
        args.append(v)
    return {"address": address, "types": types[1:], "args": args}


def slip(packet):
    body = packet.replace(bytes([ESC]), bytes([ESC, ESC_ESC])).replace(bytes([END]), bytes([ESC, ESC_END]))
    return bytes([END]) + body + bytes([END])


def unslip(buffer):
    """Whole frames in buffer, and the rest."""
    frames = []
    while True:
        start = buffer.find(bytes([END]))
        if start < 0:
            return frames, b""
        end = buffer.find(bytes([END]), start + 1)
        if end < 0:
            return frames, buffer[start:]
        frame = buffer[start + 1:end]
        buffer = buffer[end:]
        if frame:
            frame = frame.replace(bytes([ESC, ESC_END]), bytes([END])).replace(bytes([ESC, ESC_ESC]), bytes([ESC]))
            frames.append(frame)


def receive_udp(sock, seconds):
    deadline = time.time() + seconds
    while time.time() < deadline:
        sock.settimeout(max(0.01, deadline - time.time()))
        try:
            dgram, sender = sock.recvfrom(65536)
        except socket.timeout:
            break
        msg = parse(dgram)
        msg["from"] = sender[1]
        out(msg)


def main(argv):
    mode = argv[1]
    if mode == "send":
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        for m in messages(argv[3]):
            sock.sendto(m.dgram, ("127.0.0.1", int(argv[2])))
    elif mode == "bundle":
        delay = float(argv[3])
        at = time.time() + delay
        ms = messages(argv[4])
        outer = OscBundleBuilder(IMMEDIATELY if delay < 0 else at)
        if "--nested" in argv:
            inner = OscBundleBuilder(IMMEDIATELY if delay < 0 else at)
            half = len(ms) // 2
            for m in ms[:half]:
                outer.add_content(m)
            for m in ms[half:]:
                inner.add_content(m)
            outer.add_content(inner.build())
        else:
            for m in ms:
                outer.add_content(m)
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.sendto(outer.build().dgram, ("127.0.0.1", int(argv[2])))
        out({"at": at})
    elif mode == "raw":
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        for h in argv[3:]:
            sock.sendto(bytes.fromhex(h), ("127.0.0.1", int(argv[2])))
    elif mode == "peer":
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.bind(("127.0.0.1", 0))
        out({"ready": sock.getsockname()[1]})
        for m in messages(argv[4]):
            sock.sendto(m.dgram, ("127.0.0.1", int(argv[2])))
        receive_udp(sock, float(argv[3]))
    elif mode == "listen":
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.bind(("127.0.0.1", 0))
        out({"ready": sock.getsockname()[1]})
        receive_udp(sock, float(argv[2]))
    elif mode in ("tcp", "tcp-server"):
        if mode == "tcp":
            sock = socket.create_connection(("127.0.0.1", int(argv[2])), timeout=5)
            out({"ready": sock.getsockname()[1]})
            seconds, spec = argv[3], argv[4]
        else:
            server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            server.bind(("127.0.0.1", int(argv[4]) if len(argv) > 4 else 0))
            server.listen(1)
            server.settimeout(10)
            out({"ready": server.getsockname()[1]})
            sock, _ = server.accept()
            out({"connected": True})
            seconds, spec = argv[2], argv[3]
        for m in messages(spec):
            sock.sendall(slip(m.dgram))
        deadline = time.time() + float(seconds)
        buffer = b""
        while time.time() < deadline:
            sock.settimeout(max(0.01, deadline - time.time()))
            try:
                data = sock.recv(65536)
            except socket.timeout:
                break
            if not data:
                break
            frames, buffer = unslip(buffer + data)
            for f in frames:
                out(parse(f))
    else:
        raise SystemExit(f"unknown mode {mode}")


if __name__ == "__main__":
    main(sys.argv)
