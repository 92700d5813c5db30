#!/usr/bin/env python3
"""A MIDI device on a raw byte stream (the far end of a pty, or a FIFO), encoded and decoded
by mido, independently of the bridge: stdin lines are mido messages as JSON
({"type": "control_change", "channel": 0, ...}) or {"raw": "hex"} for hand-made (broken or
running-status) bytes; every message read back is printed as mido's dict, one JSON line.

usage: midi_peer.py DEVICE [--write-only]
"""
import json
import os
import sys
import threading

import mido


def reader(fd):
    parser = mido.Parser()
    while True:
        try:
            data = os.read(fd, 1024)
        except OSError as e:
            print(json.dumps({"closed": str(e)}), flush=True)
            return
        if not data:
            return
        parser.feed(data)
        for msg in parser:
            d = msg.dict()
            if "data" in d:
                d["data"] = list(d["data"])
            print(json.dumps(d), flush=True)


def main():
    device = sys.argv[1]
    write_only = "--write-only" in sys.argv
    fd = os.open(device, os.O_WRONLY if write_only else os.O_RDWR)
    if not write_only:
        threading.Thread(target=reader, args=(fd,), daemon=True).start()
    print(json.dumps({"ready": True}), flush=True)
    for line in sys.stdin:
        spec = json.loads(line)
        if "raw" in spec:
            data = bytes.fromhex(spec["raw"])
        else:
            data = bytes(mido.Message(**spec).bytes())
        os.write(fd, data)


if __name__ == "__main__":
    main()
