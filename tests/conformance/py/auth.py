"""Authenticated relay: no token or an unknown one is refused promptly (connect() fails, it
does not hang); a CPSK token from /auth connects; a limited token reads and writes only
where its scopes allow, and its cache never holds a value it may not read.
Tokens come from the environment: CLASP_TOKEN (read:/**, write:/**) and CLASP_TOKEN_LIMITED
(read:/pub/**, write:/app/**, plus the harness's /sync and /alive round trips)."""

import asyncio
import os
import time

from lib.harness import URL, Clasp, client, forgive, problems, recorder, scenario, synced, until

LIMITED = os.environ.get("CLASP_TOKEN_LIMITED")


async def refused(token, what):
    c = Clasp(URL, name=f"py-{what}", reconnect=False, token=token)
    t0 = time.monotonic()
    try:
        await asyncio.wait_for(c.connect(), 5)
    except asyncio.TimeoutError:
        raise AssertionError(f"{what}: connect() hung instead of failing")
    except Exception:  # noqa: BLE001 - the client raises its own error type on refusal
        pass
    else:
        raise AssertionError(f"{what}: connected without a valid token")
    assert time.monotonic() - t0 < 4, f"{what}: refused within 4 s"


async def run():
    assert os.environ.get("CLASP_TOKEN") and LIMITED, "CLASP_TOKEN and CLASP_TOKEN_LIMITED are set"
    await refused(None, "no-token")
    await refused("cpsk_00000000000000000000000000000000", "unknown-token")

    admin = await client("py-auth-full")
    await admin.set("/pub/a", 1)
    await admin.set("/secret/s", 2)
    await synced(admin)

    limited = await client("py-auth-limited", token=LIMITED)
    pub = recorder(limited, "/pub/**")
    await until(lambda: ("/pub/a", 1) in pub, 3, "/pub/a from the snapshot")
    assert limited.cached("/secret/s") is None, "the initial snapshot held no /secret value"

    apps = recorder(admin, "/app/**")
    await synced(admin)
    await limited.set("/app/x", 5)
    await until(lambda: ("/app/x", 5) in apps, 3, "an allowed write reaching another client")

    await limited.set("/secret/s", 9)
    await until(lambda: any("301" in p for p in problems), 3, "ERROR 301 for a write outside the scopes")
    assert forgive("301") == 1
    await synced(limited)
    assert await admin.get("/secret/s") == 2, "the refused write changed nothing"
    await admin.set("/secret/s", 3)
    await synced(admin)
    await synced(limited)
    assert limited.cached("/secret/s") is None, "no /secret value was ever delivered"


scenario("auth", run)
