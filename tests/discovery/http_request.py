"""Independent HTTP peer for the rendezvous tests (python's urllib, not our code).

usage: http_request.py METHOD URL [BODY] [ORIGIN]
Prints {"status", "body" (parsed JSON when it is JSON, else text), "cors"} as JSON.
"""
import json
import sys
import urllib.error
import urllib.request


def main() -> int:
    method, url = sys.argv[1], sys.argv[2]
    body = sys.argv[3].encode() if len(sys.argv) > 3 and sys.argv[3] != "" else None
    origin = sys.argv[4] if len(sys.argv) > 4 else None
    req = urllib.request.Request(url, data=body, method=method)
    if body is not None:
        req.add_header("Content-Type", "application/json")
    if origin:
        req.add_header("Origin", origin)
    try:
        with urllib.request.urlopen(req, timeout=5) as resp:
            status, raw, headers = resp.status, resp.read(), resp.headers
    except urllib.error.HTTPError as e:
        status, raw, headers = e.code, e.read(), e.headers
    text = raw.decode("utf-8", "replace")
    try:
        parsed = json.loads(text)
    except ValueError:
        parsed = text
    print(json.dumps({"status": status, "body": parsed, "cors": headers.get("Access-Control-Allow-Origin")}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
