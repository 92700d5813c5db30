"""Independent broadcast-discovery peer for tests/discovery.rs. The HELLO frame is encoded,
and the WELCOME answer decoded, by the official Python client (clasp-to), not by our codec.

usage: broadcast_probe.py HOST PORT GARBAGE_COUNT
Sends GARBAGE_COUNT malformed datagrams (each must get no answer), then one HELLO (must get
a WELCOME). Prints one JSON object: the garbage answers seen, the reply's hex and the
WELCOME as the official client decodes it.
"""
import json
import os
import socket
import sys

from clasp.client import Clasp

GARBAGE = [
    b"",
    b"S",
    b"\x53\x01\xff\xff\x01",  # header announces more payload than there is
    b"\x53\x01\x00\x02\x01\x01",  # truncated HELLO
    b"\x53\x01\x00\x01\x21",  # SET with no body
    b"\x00" * 64,
    b"GET / HTTP/1.1\r\n\r\n",
    b"\x53\x01\x00\x05\x77\x01\x02\x03\x04",  # unknown message type
]


def main() -> int:
    host, port, garbage = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    codec = Clasp("ws://unused")
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
    sock.settimeout(0.15)
    answered = 0
    for i in range(garbage):
        datagram = GARBAGE[i] if i < len(GARBAGE) else os.urandom(1 + i % 200)
        sock.sendto(datagram, (host, port))
        try:
            sock.recvfrom(4096)
            answered += 1
        except socket.timeout:
            pass
    hello = codec._encode(
        {
            "type": "HELLO",
            "version": 1,
            "name": "py-probe",
            "features": ["param", "event", "stream", "gesture", "timeline"],
            "token": None,
        }
    )
    sock.settimeout(3.0)
    sock.sendto(hello, (host, port))
    reply, sender = sock.recvfrom(4096)
    welcome = codec._decode(reply)
    print(
        json.dumps(
            {
                "garbage_answers": answered,
                "hello_hex": hello.hex(),
                "reply_hex": reply.hex(),
                "sender": sender[0],
                "welcome": {k: v for k, v in welcome.items() if isinstance(v, (str, int, list))},
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
