#!/usr/bin/env python3
"""Opens N idle keep-alive client connections to a proxy on loopback and holds them.

    idle-connections.py h1 HOST PORT N AUTHORITY PATH [AE]  (one GET each, response read, then
                                                          idle; AE: its Accept-Encoding, "" none)
    idle-connections.py h2 HOST PORT N                  (TLS + ALPN h2, preface + SETTINGS, idle)

Prints "ready OPEN" once every connection is open (or failed), then holds them until stdin
closes or 120 s pass. Bounded in count and time; loopback only.
"""
import asyncio
import ssl
import sys

H2_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + b"\x00\x00\x00\x04\x00\x00\x00\x00\x00"


async def h1(host, port, authority, path, ae):
    r, w = await asyncio.open_connection(host, port)
    accept = f"Accept-Encoding: {ae}\r\n" if ae else ""
    w.write(f"GET {path} HTTP/1.1\r\nHost: {authority}\r\n{accept}\r\n".encode())
    await w.drain()
    head = await r.readuntil(b"\r\n\r\n")
    length = 0
    chunked = False
    for line in head.split(b"\r\n"):
        k, _, v = line.partition(b":")
        if k.strip().lower() == b"content-length":
            length = int(v.strip())
        if k.strip().lower() == b"transfer-encoding" and b"chunked" in v.lower():
            chunked = True
    if chunked:
        while True:
            size = int((await r.readline()).strip().split(b";")[0], 16)
            await r.readexactly(size + 2)
            if size == 0:
                break
    else:
        await r.readexactly(length)
    return w


def tls_context():
    # One context for every connection: a context per connection loads the CA store each
    # time (seen: 6.8 GB and minutes of CPU for 10,000 connections).
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.set_alpn_protocols(["h2"])
    return ctx


async def h2(host, port, ctx):
    r, w = await asyncio.open_connection(host, port, ssl=ctx, server_hostname="wp.test")
    w.write(H2_PREFACE)
    await w.drain()
    await r.read(9)  # the server's SETTINGS frame header
    return w


async def main():
    kind, host, port, n = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    n = min(n, 20000)
    sem = asyncio.Semaphore(200)  # handshakes in flight
    ctx = tls_context() if kind == "h2" else None

    async def one():
        async with sem:
            try:
                if kind == "h1":
                    ae = sys.argv[7] if len(sys.argv) > 7 else "gzip, deflate, br"
                    return await asyncio.wait_for(h1(host, port, sys.argv[5], sys.argv[6], ae), 30)
                return await asyncio.wait_for(h2(host, port, ctx), 30)
            except Exception:
                return None

    conns = await asyncio.gather(*(one() for _ in range(n)))
    open_ = [c for c in conns if c is not None]
    print(f"ready {len(open_)}", flush=True)
    loop = asyncio.get_running_loop()
    try:
        await asyncio.wait_for(loop.run_in_executor(None, sys.stdin.read), 120)
    except asyncio.TimeoutError:
        pass
    for w in open_:
        w.close()


asyncio.run(main())
