#!/usr/bin/env python3
"""`tr0n serve` against hostile clients, on the loopback only, every case
bounded in time. Starts its own servers on toy TorchScript models (a flat
[B, 16] generator drawn as 1x4x4 images, a 5-class linear encoder) that it
writes with python3-torch, and a translator trained by `tr0n train`.

    serve_hostile.py TOOL            run every case; exit 1 on the first failure
    serve_hostile.py TOOL --list     the cases

Also a library: `benchmarks/serve_load.py --hostile URL` runs the attacks
(`ATTACKS`) against a running server and prints what each got.

Exit status 77 (CTest: skipped) without python3-torch.
"""
import base64
import gzip
import http.client
import json
import os
import select
import socket
import subprocess
import sys
import tempfile
import threading
import time

SKIP = 77
MIB = 1 << 20


# ---------------------------------------------------------------- raw HTTP ---

def raw_request(port, head, body=b"", body_source=None, timeout=10.0, host="127.0.0.1"):
    """Sends `head` (request line and headers, no final blank line added) and
    `body`, or streams `body_source()` chunks from a thread while the answer is
    read. Returns (status or None, headers dict, body bytes)."""
    s = socket.create_connection((host, port), timeout=timeout)
    try:
        s.sendall(head.encode("latin-1") + b"\r\n" + body)
        if body_source is not None:
            def pump():
                try:
                    for chunk in body_source():
                        s.sendall(chunk)
                except OSError:
                    pass  # the server closed: expected once it refused
            threading.Thread(target=pump, daemon=True).start()
        data = b""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                part = s.recv(65536)
            except (socket.timeout, ConnectionResetError):
                break
            if not part:
                break
            data += part
            if b"\r\n\r\n" in data:
                top, _, rest = data.partition(b"\r\n\r\n")
                length = next((int(l.split(b":")[1]) for l in top.split(b"\r\n")
                               if l.lower().startswith(b"content-length:")), None)
                if length is not None and len(rest) >= length:
                    break
        return parse_response(data)
    finally:
        s.close()


def parse_response(data):
    if not data.startswith(b"HTTP/1."):
        return None, {}, data
    top, _, rest = data.partition(b"\r\n\r\n")
    lines = top.decode("latin-1").split("\r\n")
    headers = {}
    for line in lines[1:]:
        k, _, v = line.partition(":")
        headers[k.strip().lower()] = v.strip()
    return int(lines[0].split()[1]), headers, rest


def post_head(port, length=None, extra=(), ctype="application/json", path="/api/sample"):
    lines = [f"POST {path} HTTP/1.1", f"Host: 127.0.0.1:{port}"]
    if ctype:
        lines.append(f"Content-Type: {ctype}")
    if length is not None:
        lines.append(f"Content-Length: {length}")
    lines += list(extra)
    return "\r\n".join(lines) + "\r\n"


def api(port, body, headers=None, timeout=60):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    conn.request("POST", "/api/sample", body=data, headers=headers or {"Content-Type": "application/json"})
    r = conn.getresponse()
    out = r.status, dict((k.lower(), v) for k, v in r.getheaders()), r.read()
    conn.close()
    return out


def get(port, path, headers=None, timeout=10):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    conn.request("GET", path, headers=headers or {})
    r = conn.getresponse()
    out = r.status, dict((k.lower(), v) for k, v in r.getheaders()), r.read()
    conn.close()
    return out


# ----------------------------------------------------------------- attacks ---
# Each attack takes the port and returns (status, note); the test asserts on them.

def chunked_64mib(port):
    chunk = b"%x\r\n" % MIB + b"a" * MIB + b"\r\n"
    status, _, _ = raw_request(port, post_head(port, extra=["Transfer-Encoding: chunked"]),
                               body_source=lambda: (chunk for _ in range(64)))
    return status


def lengthless_64mib(port):
    status, _, _ = raw_request(port, post_head(port), body_source=lambda: (b"a" * MIB for _ in range(64)))
    return status


def gzip_bomb(port):
    bomb = gzip.compress(b"{" + b" " * (64 * MIB) + b"}", compresslevel=9)
    assert len(bomb) <= 70 * 1024, len(bomb)  # about 64 KiB
    status, _, _ = raw_request(port, post_head(port, len(bomb), ["Content-Encoding: gzip"]), bomb)
    return status


def declared_64mib(port):
    status, _, _ = raw_request(port, post_head(port, 64 * MIB), body_source=lambda: (b"a" * MIB for _ in range(64)))
    return status


def many_headers(port):
    status, _, _ = raw_request(port, post_head(port, 2, [f"X-{i}: v" for i in range(200)]), b"{}")
    return status


def huge_header(port):
    status, _, _ = raw_request(port, post_head(port, 2, ["X-Big: " + "a" * MIB]), b"{}")
    return status


ATTACKS = {
    "64 MiB chunked body": chunked_64mib,
    "64 MiB body without a length": lengthless_64mib,
    "64 KiB gzip body inflating to 64 MiB": gzip_bomb,
    "64 MiB body with its Content-Length": declared_64mib,
    "200 header fields": many_headers,
    "a 1 MiB header line": huge_header,
}


def rss_peak_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return 0


# ------------------------------------------------------------------ set-up ---

def write_models(directory):
    import torch

    torch.manual_seed(3)

    class Generator(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.w = torch.nn.Parameter(torch.randn(8, 16))

        def forward(self, z):
            return torch.sigmoid(torch.matmul(z * 1.5, self.w))  # flat [B, 16]: 1x4x4 images in [0, 1]

    class Encoder(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.w = torch.nn.Parameter(torch.randn(16, 5) * 2)

        def forward(self, x):
            return torch.matmul(x.reshape(x.shape[0], -1) - 0.5, self.w)

    torch.jit.script(Generator()).save(os.path.join(directory, "g.pt"))
    torch.jit.script(Encoder()).save(os.path.join(directory, "f.pt"))


class Server:
    def __init__(self, tool, args):
        self.proc = subprocess.Popen([tool, "serve", "--port", "0", *args], stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True)
        ready, _, _ = select.select([self.proc.stdout], [], [], 60)
        line = self.proc.stdout.readline() if ready else ""
        if not line.startswith("listening on http://"):
            self.proc.kill()
            raise AssertionError(f"the server did not start: {line!r} {self.proc.stderr.read()!r}")
        self.port = int(line.strip().rstrip("/").rsplit(":", 1)[1])

    def alive(self):
        return self.proc.poll() is None

    def stop(self):
        if self.alive():
            self.proc.terminate()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        return self.proc.returncode


def check(cond, what):
    if not cond:
        raise AssertionError(what)
    print(f"  ok: {what}")


# ------------------------------------------------------------------- cases ---

def case_bodies(srv):
    api(srv.port, {"conditions": [1, 0, 0, 0, 0], "n": 4})  # warm: the peak of a real request first
    for name, attack in ATTACKS.items():
        before = rss_peak_kib(srv.proc.pid)
        status = attack(srv.port)
        grown = rss_peak_kib(srv.proc.pid) - before
        check(status is not None and 400 <= status < 500 and grown < 16 * 1024,
              f"{name}: status {status}, peak RSS +{grown / 1024:.1f} MiB")
    check(srv.alive() and get(srv.port, "/healthz")[0] == 200, "alive after the bodies")


def case_bad_inputs(srv):
    def expect_400(body, what, field):
        status, headers, text = api(srv.port, body)
        message = json.loads(text).get("error", "")
        check(status == 400 and field in message and "exception_what" not in headers,
              f"{what}: {status} {message[:70]!r}")
    expect_400(b'{"prompt": "\xff\xfe"}', "bytes that are not UTF-8", "UTF-8")
    expect_400({"conditions": [1e300, 0, 0, 0, 0]}, "1e300 (finite as a double, not as a float)", "conditions")
    expect_400({"conditions": [2, 0, 0, 0, 0]}, "not a distribution, with cross_entropy", "conditions")
    expect_400({"conditions": [-1, 2, 0, 0, 0]}, "a negative entry, with cross_entropy", "conditions")
    expect_400({"conditions": [1, 0, 0, 0, 0], "init": "sideways"}, "an unknown start", "init")
    expect_400(b"[1, 2", "truncated JSON", "JSON")
    for word in ("prior", "translator_sample", "translator_mode", "translator_mixture", "best_of:3", "tr0n",
                 "translator"):
        status, _, text = api(srv.port, {"conditions": [0, 0, 1, 0, 0], "n": 2, "init": word})
        check(status == 200 and json.loads(text)["init"] == word, f"init {word}: {status}")


def case_cross_site(srv):
    p = srv.port
    status, _, _ = api(p, b'{"conditions": [1, 0, 0, 0, 0]}',
                       {"Content-Type": "text/plain", "Origin": "http://evil.example"})
    check(status == 403, f"a cross-origin text/plain POST: {status}")
    status, _, _ = api(p, b'{"conditions": [1, 0, 0, 0, 0]}', {"Content-Type": "text/plain"})
    check(status == 415, f"a same-origin text/plain POST: {status}")
    status, _, _ = get(p, "/api/info", {"Host": f"rebound.example:{p}"})
    check(status == 403, f"a foreign Host (DNS rebinding): {status}")
    status, _, _ = api(p, {"conditions": [1, 0, 0, 0, 0], "n": 1},
                       {"Content-Type": "application/json", "Origin": f"http://127.0.0.1:{p}"})
    check(status == 200, f"the page's own Origin: {status}")
    status, headers, _ = get(p, "/")
    csp = headers.get("content-security-policy", "")
    check(status == 200 and "default-src 'none'" in csp and "script-src 'self'" in csp
          and "frame-ancestors 'none'" in csp, "the page's Content-Security-Policy")
    check(headers.get("x-content-type-options") == "nosniff" and headers.get("x-frame-options") == "DENY",
          "nosniff and frame protection")


def case_slow_clients(srv):
    p = srv.port
    socks = []
    for _ in range(64):
        s = socket.create_connection(("127.0.0.1", p), timeout=5)
        s.sendall(f"POST /api/sample HTTP/1.1\r\nHost: 127.0.0.1:{p}\r\n".encode())
        socks.append(s)
    stop = threading.Event()

    def trickle():
        i = 0
        while not stop.wait(3):
            for s in socks:
                try:
                    s.sendall(f"X-Slow-{i}: 1\r\n".encode())
                except OSError:
                    pass
            i += 1
    t = threading.Thread(target=trickle, daemon=True)
    t.start()
    try:
        time.sleep(1)
        start = time.monotonic()
        status, _, _ = get(p, "/healthz", timeout=5)
        took = time.monotonic() - start
        check(status == 200 and took < 2, f"/healthz under 64 trickling connections: {status} in {took:.3f} s")
        start = time.monotonic()
        status, _, _ = api(p, {"conditions": [1, 0, 0, 0, 0], "n": 4}, timeout=15)
        took = time.monotonic() - start
        check(status == 200 and took < 10, f"a real request meanwhile: {status} in {took:.3f} s")
        # The deadline (--request-deadline 4 here) drops them: each reads end-of-stream.
        dropped = 0
        end = time.monotonic() + 8
        for s in socks:
            s.settimeout(max(0.1, end - time.monotonic()))
            try:
                while s.recv(4096):
                    pass
                dropped += 1
            except (socket.timeout, OSError):
                pass
        check(dropped == 64, f"the deadline dropped {dropped} of 64 trickling connections")
    finally:
        stop.set()
        for s in socks:
            s.close()


def case_connection_bound(tool, models):
    srv = Server(tool, models + ["--max-connections", "4"])
    try:
        idle = [socket.create_connection(("127.0.0.1", srv.port)) for _ in range(4)]
        time.sleep(0.3)
        status, headers, _ = get(srv.port, "/healthz")
        check(status == 503 and headers.get("retry-after") == "1",
              f"a fifth connection with --max-connections 4: {status}")
        for s in idle:
            s.close()
        time.sleep(0.3)
        check(get(srv.port, "/healthz")[0] == 200, "answered again once they close")
    finally:
        srv.stop()


def case_same_images_under_load(srv):
    body = {"conditions": [0, 1, 0, 0, 0], "n": 6, "steps": 5, "seed": 42}
    status, _, alone = api(srv.port, body)
    check(status == 200, "alone")
    alone = json.loads(alone)["images"]
    results = [None] * 32

    def one(i):
        mine = dict(body) if i % 2 == 0 else {**body, "seed": 1000 + i}  # others in between
        results[i] = api(srv.port, mine, timeout=60)
    threads = [threading.Thread(target=one, args=(i,)) for i in range(32)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    same = [json.loads(r[2])["images"] == alone for i, r in enumerate(results) if i % 2 == 0 and r[0] == 200]
    check(all(r[0] == 200 for r in results), f"32 concurrent requests answered: {[r[0] for r in results]}")
    check(len(same) == 16 and all(same), f"the same seed gave the same images in {sum(same)} of 16")
    other = [json.loads(r[2])["images"] for i, r in enumerate(results) if i % 2 == 1]
    check(all(o != alone for o in other), "other seeds gave other images")


def case_start_up(tool, d):
    g, f = os.path.join(d, "g.pt"), os.path.join(d, "f.pt")
    r = subprocess.run([tool, "serve", "--generator", g, "--encoder", f, "--latent-dim", "8", "--energy",
                        "cross_entropy", "--port", "0"], capture_output=True, text=True, timeout=60)
    check(r.returncode == 2 and "--image-shape" in r.stderr and "[1, 16]" in r.stderr,
          f"a flat output without --image-shape: status {r.returncode}, {r.stderr.strip()!r}")
    r = subprocess.run([tool, "serve", "--generator", g, "--encoder", f, "--latent-dim", "8", "--energy",
                        "cross_entropy", "--image-shape", "3,4,4", "--port", "0"],
                       capture_output=True, text=True, timeout=60)
    check(r.returncode == 2 and "--image-shape 3,4,4" in r.stderr, f"a wrong --image-shape: {r.stderr.strip()!r}")
    r = subprocess.run([tool, "serve", "--generator", g, "--encoder", f, "--latent-dim", "8", "--image-shape",
                        "1,4,4", "--port", "0"], capture_output=True, text=True, timeout=60)
    check(r.returncode == 2 and "--energy" in r.stderr, f"no translator and no --energy: {r.stderr.strip()!r}")


def main():
    tool = sys.argv[1]
    try:
        import torch  # noqa: F401
    except ImportError:
        print("skipped: python3-torch is not installed")
        return SKIP
    with tempfile.TemporaryDirectory() as d:
        write_models(d)
        g, f, q = (os.path.join(d, n) for n in ("g.pt", "f.pt", "q.pt"))
        subprocess.run([tool, "train", "--generator", g, "--encoder", f, "--latent-dim", "8", "--condition-transform",
                        "softmax", "--steps", "200", "--seed", "1", "--out", q], check=True, timeout=120,
                       capture_output=True)
        # No --energy: the translator's softmax stage implies cross_entropy.
        models = ["--generator", g, "--encoder", f, "--translator", q, "--image-shape", "1,4,4"]
        print("start-up")
        case_start_up(tool, d)
        srv = Server(tool, models + ["--max-body", "4096", "--request-deadline", "4", "--queue", "32"])
        try:
            status, _, text = get(srv.port, "/api/info")
            check(json.loads(text)["energy"] == "cross_entropy", "--energy from the translator: cross_entropy")
            status, _, text = api(srv.port, {"conditions": [1, 0, 0, 0, 0], "n": 3})
            png = base64.b64decode(json.loads(text)["images"][0].split(",")[1])
            check(status == 200 and png.startswith(b"\x89PNG") and b"IHDR\x00\x00\x00\x04\x00\x00\x00\x04" in png,
                  "a flat output with --image-shape 1,4,4 serves 4x4 PNGs")
            for name, case in (("bodies", case_bodies), ("bad inputs", case_bad_inputs),
                               ("cross-site", case_cross_site), ("same images under load", case_same_images_under_load),
                               ("slow clients", case_slow_clients)):
                print(name)
                case(srv)
            check(srv.alive(), "the server is still up")
        finally:
            rc = srv.stop()
        err = srv.proc.stderr.read()
        check(rc == 0, f"a clean stop (status {rc})")
        print("connection bound")
        case_connection_bound(tool, models)
        check("a request failed" not in err and "a handler failed" not in err, "no server fault logged")
    print("serve_hostile: passed")
    return 0


if __name__ == "__main__":
    if len(sys.argv) > 2 and sys.argv[2] == "--list":
        print("\n".join(ATTACKS))
        sys.exit(0)
    sys.exit(main())
