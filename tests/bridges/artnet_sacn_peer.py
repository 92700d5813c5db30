#!/usr/bin/env python3
"""Independent Art-Net and sACN peers for tests/bridge_artnet.rs and tests/bridge_sacn.rs,
built on stupidArtnet and sacn from PyPI (not our code). Events are printed as JSON lines.

LEVELS is a JSON object {"channel": level} (channels 1-512; others are 0).

  artnet_sacn_peer.py artnet-send PORT UNIVERSE LEVELS [COUNT] [INTERVAL]
        StupidArtnet to 127.0.0.1:PORT: COUNT frames (default 1) INTERVAL s apart, from one
        socket (one source); prints {"sent": COUNT}
  artnet_sacn_peer.py artnet-listen PORT SECONDS UNIVERSE
        StupidArtnetServer on PORT: {"ready": true}, then per ArtDmx frame of UNIVERSE
        {"t": unix s, "levels": {nonzero channels}}
  artnet_sacn_peer.py artnet-poll PORT
        an ArtPoll to 127.0.0.1:PORT (stupidArtnet has no poll; the 14-byte packet is built
        here), prints each ArtPollReply's fields for 1 s
  artnet_sacn_peer.py sacn-send PORT UNIVERSE LEVELS SECONDS [PRIORITY] [NAME] [TERMINATE]
        sacn.sACNsender unicast to 127.0.0.1:PORT for SECONDS (it re-sends every second and on
        change); TERMINATE=1 deactivates the output (stream terminated) at the end
  artnet_sacn_peer.py sacn-listen PORT SECONDS UNIVERSE
        sacn.sACNreceiver on 127.0.0.1:PORT: {"ready": true}, then per packet
        {"t", "priority", "name", "sequence", "levels"}, and {"available": "timeout"} events
  artnet_sacn_peer.py sacn-send-mcast UNIVERSE LEVELS SECONDS
        sacn.sACNsender by multicast (239.255.hi.lo:5568) for SECONDS
  artnet_sacn_peer.py sacn-listen-mcast SECONDS UNIVERSE
        sacn.sACNreceiver on 0.0.0.0:5568 joined to UNIVERSE's group; lines as sacn-listen
  artnet_sacn_peer.py sacn-raw PORT SPEC [SPEC ...]
        data packets built by sacn.messages.DataPacket, sent in order from one socket; SPEC
        is JSON {"universe", "levels", "sequence", "priority", "cid" (int), "terminated",
        "preview", "start_code", "patch": {byte offset: value}, "truncate": n} (the last two
        corrupt the packet)
The sacn library sends unicast only to port 5568; the tests use free ports, so its module
constant is pointed at PORT (its packets are unchanged).
"""
import json
import socket
import struct
import sys
import threading
import time


def out(obj):
    print(json.dumps(obj), flush=True)


def levels_of(spec):
    data = [0] * 512
    for ch, level in json.loads(spec).items():
        data[int(ch) - 1] = int(level)
    return data


def nonzero(data):
    return {str(i + 1): v for i, v in enumerate(data) if v}


def artnet_send(port, universe, spec, count=1, interval=0.05):
    from stupidArtnet import StupidArtnet

    a = StupidArtnet("127.0.0.1", int(universe), 512, 44, True, False, None, False, int(port))
    a.set(bytearray(levels_of(spec)))
    for i in range(int(count)):
        a.show()
        if i + 1 < int(count):
            time.sleep(float(interval))
    out({"sent": int(count)})


def artnet_listen(port, seconds, universe):
    from stupidArtnet import StupidArtnetServer

    server = StupidArtnetServer(int(port))
    lock = threading.Lock()

    def on_frame(data):
        with lock:
            out({"t": time.time(), "len": len(data), "levels": nonzero(list(data))})

    server.register_listener(int(universe), callback_function=on_frame, is_simplified=True)
    time.sleep(0.2)
    out({"ready": True})
    time.sleep(float(seconds))
    server.close()


def artnet_poll(port):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    s.sendto(b"Art-Net\x00" + struct.pack("<H", 0x2000) + bytes([0, 14, 0, 0]), ("127.0.0.1", int(port)))
    s.settimeout(1.0)
    end = time.time() + 1.0
    while time.time() < end:
        try:
            data, _ = s.recvfrom(1024)
        except socket.timeout:
            break
        if data[:8] != b"Art-Net\x00" or struct.unpack("<H", data[8:10])[0] != 0x2100:
            out({"other": data[:10].hex()})
            continue
        nports = data[173]
        out({
            "ip": socket.inet_ntoa(data[10:14]),
            "port": struct.unpack("<H", data[14:16])[0],
            "short_name": data[26:44].split(b"\0")[0].decode(),
            "long_name": data[44:108].split(b"\0")[0].decode(),
            "ports": nports,
            "universes": [(data[18] << 8) | (data[19] << 4) | data[190 + i] for i in range(nports)],
        })


def patch_sacn_port(port):
    import sacn.sending.sender_socket_udp as udp

    udp.DEFAULT_PORT = int(port)


def sacn_send(port, universe, spec, seconds, priority=100, name="python-sacn", terminate="0"):
    import sacn

    patch_sacn_port(port)
    sender = sacn.sACNsender(bind_address="127.0.0.1", bind_port=0, source_name=name, fps=44)
    sender.universeDiscovery = False
    sender.start()
    u = int(universe)
    sender.activate_output(u)
    sender[u].destination = "127.0.0.1"
    sender[u].priority = int(priority)
    sender[u].dmx_data = tuple(levels_of(spec))
    out({"sending": u})
    time.sleep(float(seconds))
    if terminate == "1":
        sender.deactivate_output(u)
    sender.stop()
    out({"stopped": u})


def sacn_send_mcast(universe, spec, seconds):
    import sacn

    sender = sacn.sACNsender(bind_address="0.0.0.0", bind_port=0, source_name="python-mcast", fps=44)
    sender.universeDiscovery = False
    sender.start()
    u = int(universe)
    sender.activate_output(u)
    sender[u].multicast = True
    sender[u].dmx_data = tuple(levels_of(spec))
    out({"sending": u})
    time.sleep(float(seconds))
    sender.stop()
    out({"stopped": u})


def sacn_listen_mcast(seconds, universe):
    sacn_listen(5568, seconds, universe, multicast=True)


def sacn_listen(port, seconds, universe, multicast=False):
    import sacn

    address = "0.0.0.0" if multicast else "127.0.0.1"
    receiver = sacn.sACNreceiver(bind_address=address, bind_port=int(port))
    lock = threading.Lock()

    @receiver.listen_on("universe", universe=int(universe))
    def on_packet(packet):
        with lock:
            out({
                "t": time.time(),
                "priority": packet.priority,
                "name": packet.sourceName,
                "sequence": packet.sequence,
                "cid": bytes(packet.cid).hex(),
                "levels": nonzero(list(packet.dmxData)),
            })

    @receiver.listen_on("availability")
    def on_availability(universe, changed):
        with lock:
            out({"available": changed, "universe": universe, "t": time.time()})

    receiver.start()
    if multicast:
        receiver.join_multicast(int(universe))
    time.sleep(0.2)
    out({"ready": True})
    time.sleep(float(seconds))
    receiver.stop()


def sacn_raw(port, *specs):
    from sacn.messages.data_packet import DataPacket

    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    for spec in specs:
        spec = json.loads(spec)
        cid = tuple([spec.get("cid", 1)] * 16)
        packet = DataPacket(
            cid=cid,
            sourceName=spec.get("name", "raw"),
            universe=spec.get("universe", 1),
            dmxData=tuple(levels_of(json.dumps(spec.get("levels", {})))),
            priority=spec.get("priority", 100),
            sequence=spec.get("sequence", 0),
            streamTerminated=spec.get("terminated", False),
            previewData=spec.get("preview", False),
            dmxStartCode=spec.get("start_code", 0),
        )
        data = bytearray(packet.getBytes())
        for offset, value in spec.get("patch", {}).items():
            data[int(offset)] = value
        if "truncate" in spec:
            data = data[: spec["truncate"]]
        s.sendto(bytes(data), ("127.0.0.1", int(port)))
        time.sleep(0.01)
    out({"sent": len(specs)})


COMMANDS = {
    "sacn-raw": sacn_raw,
    "sacn-send-mcast": sacn_send_mcast,
    "sacn-listen-mcast": sacn_listen_mcast,
    "artnet-send": artnet_send,
    "artnet-listen": artnet_listen,
    "artnet-poll": artnet_poll,
    "sacn-send": sacn_send,
    "sacn-listen": sacn_listen,
}

if __name__ == "__main__":
    COMMANDS[sys.argv[1]](*sys.argv[2:])
