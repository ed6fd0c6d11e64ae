#!/usr/bin/env python3
"""Load figures for `tr0n serve`: requests per second and p50 / p95 latency at
several numbers of concurrent clients, each client sending requests back to
back for a fixed time. Python's standard library only.

    serve_load.py URL [--prompt TEXT] [--clients 1,4,16] [--seconds 15] [--n 16] [--steps 10]
    serve_load.py URL --hostile [--pid PID]

Start the server first (see the README). Prints a Markdown table. With
--hostile, sends each attack of tests/tools/serve_hostile.py once instead
(oversized, chunked, length-less and compressed bodies, header floods) and
prints what it got, with the server's peak RSS growth when --pid is given.
"""
import os
import sys
import argparse
import http.client
import json
import statistics
import threading
import time
import urllib.parse


def run(url, body, clients, seconds):
    parts = urllib.parse.urlparse(url)
    latencies, statuses, lock = [], {}, threading.Lock()
    stop_at = time.monotonic() + seconds

    def client():
        conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=120)
        while time.monotonic() < stop_at:
            start = time.monotonic()
            try:
                conn.request("POST", "/api/sample", body=body, headers={"Content-Type": "application/json"})
                response = conn.getresponse()
                response.read()
                status = response.status
            except (OSError, http.client.HTTPException):
                conn.close()
                conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=120)
                status = "error"
            elapsed = time.monotonic() - start
            with lock:
                statuses[status] = statuses.get(status, 0) + 1
                if status == 200:
                    latencies.append(elapsed)
            if status == 503:
                time.sleep(0.05)
        conn.close()

    threads = [threading.Thread(target=client) for _ in range(clients)]
    began = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.monotonic() - began
    latencies.sort()
    pick = lambda q: latencies[min(len(latencies) - 1, int(q * len(latencies)))] if latencies else float("nan")
    return {"clients": clients, "ok": statuses.get(200, 0), "busy": statuses.get(503, 0),
            "other": sum(v for k, v in statuses.items() if k not in (200, 503)),
            "rps": statuses.get(200, 0) / wall, "p50": pick(0.5), "p95": pick(0.95),
            "mean": statistics.fmean(latencies) if latencies else float("nan")}


def hostile(url, pid):
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "tools"))
    import serve_hostile

    port = urllib.parse.urlparse(url).port
    print("| attack | status | peak RSS growth (MiB) | seconds |")
    print("|---|---:|---:|---:|")
    for name, attack in serve_hostile.ATTACKS.items():
        before = serve_hostile.rss_peak_kib(pid) if pid else 0
        start = time.monotonic()
        status = attack(port)
        took = time.monotonic() - start
        grown = f"{(serve_hostile.rss_peak_kib(pid) - before) / 1024:.1f}" if pid else "-"
        print(f"| {name} | {status} | {grown} | {took:.2f} |", flush=True)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("url")
    p.add_argument("--prompt", default="a photo of a sneaker")
    p.add_argument("--clients", default="1,4,16")
    p.add_argument("--seconds", type=float, default=15)
    p.add_argument("--n", type=int, default=16)
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--hostile", action="store_true", help="send the hostile cases instead of load")
    p.add_argument("--pid", type=int, help="the server's process id, for its peak RSS (--hostile)")
    a = p.parse_args()
    if a.hostile:
        return hostile(a.url, a.pid)
    body = json.dumps({"prompt": a.prompt, "n": a.n, "steps": a.steps, "init": "tr0n", "seed": 0})
    print(f"n = {a.n}, T = {a.steps}, {a.seconds:g} s per row, prompt {a.prompt!r}\n")
    print("| clients | answered 200 | answered 503 | other | requests / s | p50 latency (ms) | p95 latency (ms) |")
    print("|---:|---:|---:|---:|---:|---:|---:|")
    for clients in [int(c) for c in a.clients.split(",")]:
        r = run(a.url, body, clients, a.seconds)
        print(f"| {r['clients']} | {r['ok']} | {r['busy']} | {r['other']} | {r['rps']:.1f} | "
              f"{1000 * r['p50']:.0f} | {1000 * r['p95']:.0f} |", flush=True)


if __name__ == "__main__":
    main()
