#!/usr/bin/env python3
"""Abusive clients for scripts/drill slow-loris: for SECONDS, against 127.0.0.1:PORT,
  - slow-loris: CONNS connections that send request headers one byte every 2 s and never finish;
  - slow body: CONNS/4 connections that send complete headers (Content-Length 60000) and trickle the body;
  - oversized: back-to-back 2 MiB POSTs to the webhook (expect 413);
  - malformed: back-to-back garbage XML and bad signatures (expect 4xx).
Prints one RESULT line with what the server answered to the floods and how many slow connections it
had closed by the end."""
import random, socket, sys, threading, time

port, seconds, conns = int(sys.argv[1]), float(sys.argv[2]), int(sys.argv[3])
deadline = time.time() + seconds
stats = {"slow_open": 0, "slow_closed_by_server": 0, "oversized": {}, "malformed": {}, "connect_errors": 0}
lock = threading.Lock()

def count(kind, status):
    with lock:
        stats[kind][status] = stats[kind].get(status, 0) + 1

def status_of(sock):
    data = b""
    try:
        while b"\r\n" not in data:
            chunk = sock.recv(4096)
            if not chunk: break
            data += chunk
    except OSError:
        return "reset"
    line = data.split(b"\r\n", 1)[0].split()
    return line[1].decode() if len(line) > 1 else "closed"

def slow(body_phase):
    socks = []
    n = conns // 4 if body_phase else conns
    for _ in range(n):
        try:
            s = socket.create_connection(("127.0.0.1", port), timeout=5)
            if body_phase:
                s.sendall(b"POST /webhooks/wechat/demo?signature=x&timestamp=1&nonce=n HTTP/1.1\r\nHost: x\r\nContent-Type: text/xml\r\nContent-Length: 60000\r\n\r\n")
            else:
                s.sendall(b"POST /webhooks/wechat/demo HTTP/1.1\r\n")
            socks.append(s)
            with lock: stats["slow_open"] += 1
        except OSError:
            with lock: stats["connect_errors"] += 1
    while time.time() < deadline and socks:
        for s in list(socks):
            try:
                s.send(b"a" if body_phase else b"X")
            except OSError:
                socks.remove(s)
                with lock: stats["slow_closed_by_server"] += 1
        time.sleep(2)
    for s in socks: s.close()

def flood(kind):
    big = b"<xml>" + b"A" * (2 * 1024 * 1024) + b"</xml>"
    while time.time() < deadline:
        try:
            s = socket.create_connection(("127.0.0.1", port), timeout=5)
            if kind == "oversized":
                body = big
                path = "/webhooks/wechat/demo?signature=0&timestamp=%d&nonce=%d" % (time.time(), random.randrange(1 << 30))
            else:
                body = random.choice([b"<xml><a>", b"\x00\xff" * 100, b"<!DOCTYPE x [<!ENTITY e SYSTEM 'file:///etc/passwd'>]><xml>&e;</xml>", b"<xml>" * 5000])
                path = "/webhooks/wechat/demo?signature=%032x&timestamp=%d&nonce=%d" % (random.getrandbits(128), time.time(), random.randrange(1 << 30))
            s.sendall(b"POST " + path.encode() + b" HTTP/1.1\r\nHost: x\r\nContent-Type: text/xml\r\nContent-Length: %d\r\nConnection: close\r\n\r\n" % len(body))
            try:
                s.sendall(body)
            except OSError:
                pass
            count(kind, status_of(s))
            s.close()
        except OSError:
            with lock: stats["connect_errors"] += 1
            time.sleep(0.05)

threads = [threading.Thread(target=slow, args=(False,)), threading.Thread(target=slow, args=(True,))]
threads += [threading.Thread(target=flood, args=(k,)) for k in ("oversized", "malformed", "malformed")]
for t in threads: t.start()
for t in threads: t.join()
fmt = lambda d: ",".join("%sx%d" % kv for kv in sorted(d.items())) or "-"
print("RESULT slow_open=%d slow_closed_by_server=%d connect_errors=%d oversized=%s malformed=%s" % (
    stats["slow_open"], stats["slow_closed_by_server"], stats["connect_errors"], fmt(stats["oversized"]), fmt(stats["malformed"])))
