"""Independent mDNS peer for tests/discovery.rs: python-zeroconf browses _clasp._tcp.local.
on one interface and prints the first instance called NAME as JSON (name, port, addresses,
TXT properties). Exit 0 when found, 1 when not within the timeout.

usage: zeroconf_browse.py INTERFACE_ADDRESS NAME TIMEOUT_SECONDS
"""
import json
import sys
import threading
import time

from zeroconf import IPVersion, ServiceBrowser, ServiceStateChange, Zeroconf

SERVICE = "_clasp._tcp.local."


def main() -> int:
    interface, wanted, timeout = sys.argv[1], sys.argv[2], float(sys.argv[3])
    zc = Zeroconf(interfaces=[interface], ip_version=IPVersion.V4Only)
    found = {}
    done = threading.Event()

    def on_change(zeroconf, service_type, name, state_change):
        if state_change is not ServiceStateChange.Added and state_change is not ServiceStateChange.Updated:
            return
        info = zeroconf.get_service_info(service_type, name, timeout=2000)
        if info is None:
            return
        props = {k.decode(): (v.decode() if v is not None else None) for k, v in info.properties.items()}
        instance = name[: -len("." + SERVICE)] if name.endswith("." + SERVICE) else name
        if instance == wanted or props.get("name") == wanted:
            found.update(
                instance=instance,
                port=info.port,
                addresses=info.parsed_addresses(),
                txt=props,
            )
            done.set()

    browser = ServiceBrowser(zc, SERVICE, handlers=[on_change])
    done.wait(timeout)
    browser.cancel()
    zc.close()
    if not found:
        print(json.dumps({"error": f"{wanted!r} not found within {timeout}s"}))
        return 1
    print(json.dumps(found))
    return 0


if __name__ == "__main__":
    sys.exit(main())
