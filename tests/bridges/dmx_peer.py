#!/usr/bin/env python3
"""Plays a DMX USB interface on the far end of a pty pair (pyserial), independently of the
bridge's code: it checks every byte the bridge sends against the ENTTEC DMX USB Pro API
(label 6: 0x7E 6 len_lsb len_msb 0x00 slots... 0xE7) or the Open DMX stream (513-byte
frames, start code 0), and prints one JSON line per frame or framing error on stdout.
Lines on stdin are hex bytes to send to the bridge (label 5 / label 9 input frames).

usage: dmx_peer.py pro|open DEVICE
"""
import json
import sys
import threading

import serial


def emit(obj):
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


def feeder(port):
    for line in sys.stdin:
        line = line.strip()
        if line:
            port.write(bytes.fromhex(line))
            port.flush()


def read_exact(port, n):
    buf = b""
    while len(buf) < n:
        chunk = port.read(n - len(buf))
        if not chunk:
            raise EOFError
        buf += chunk
    return buf


def pro(port):
    while True:
        b = read_exact(port, 1)[0]
        if b != 0x7E:
            emit({"error": "byte 0x%02x outside a message" % b})
            continue
        label, lo, hi = read_exact(port, 3)
        length = lo | (hi << 8)
        body = read_exact(port, length)
        end = read_exact(port, 1)[0]
        if end != 0xE7:
            emit({"error": "label %d: end byte 0x%02x" % (label, end)})
            continue
        if label != 6:
            emit({"error": "unexpected label %d" % label})
            continue
        if length < 25 or length > 513 or body[0] != 0:
            emit({"error": "label 6 length %d start code %d" % (length, body[0] if body else -1)})
            continue
        emit({"label": 6, "slots": list(body[1:])})


def open_dmx(port):
    while True:
        frame = read_exact(port, 513)
        if frame[0] != 0:
            emit({"error": "start code %d" % frame[0]})
            continue
        emit({"frame": 513, "slots": list(frame[1:])})


def main():
    mode, device = sys.argv[1], sys.argv[2]
    port = serial.Serial(device, 250000 if mode == "open" else 57600, timeout=None)
    threading.Thread(target=feeder, args=(port,), daemon=True).start()
    emit({"ready": True})
    try:
        (pro if mode == "pro" else open_dmx)(port)
    except (EOFError, serial.SerialException, OSError) as e:
        emit({"closed": str(e)})


if __name__ == "__main__":
    main()
