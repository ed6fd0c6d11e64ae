"""The tool end to end on the real-size zoo (scripts/export-zoo.py), at reduced
depth: CLIP ViT-B/32's image tower (full width, 2 layers), a StyleGAN2-like
generator and a BigGAN-like G(z, y) at 64 pixels, random weights.

  zoo_e2e.py TOOL [ZOO_DIR]     (exports the zoo into a temporary folder without ZOO_DIR)

It checks what a paper user does: a StyleGAN output that the CLIP tower cannot
take is one line naming the shapes and --encoder-size; with the preprocessing
flags, train (a few steps, the official feature noise), sample 16 within a
memory budget (down to parts of a stream block) and serve one request;
BigGAN's two inputs with --latent-dim 128,128 --prior truncated:2,codebook:FILE
train and sample, z inside its box and y moved from the table by the steps.
Random weights check mechanics, not quality. Exit 77 (CTest: skipped) without
python3-torch.
"""
import http.client
import json
import os
import select
import subprocess
import sys
import tempfile

try:
    import torch
except ImportError:
    print("python torch is not available: skipped")
    sys.exit(77)

TOOL = sys.argv[1]
HERE = os.path.dirname(os.path.abspath(__file__))
EXPORT = os.path.join(HERE, "..", "..", "scripts", "export-zoo.py")
PRE = ["--generator-range", "-1:1", "--encoder-size", "224", "--encoder-normalize", "clip"]


def tool(*args, ok=True):
    r = subprocess.run([TOOL, *args], capture_output=True, text=True, timeout=600)
    if ok and r.returncode != 0:
        raise AssertionError(f"tr0n {args[0]} failed ({r.returncode}): {r.stderr}")
    return r


def check(cond, what):
    if not cond:
        raise AssertionError(what)
    print("ok:", what)


def main(zoo):
    z = lambda name: os.path.join(zoo, name)
    stylegan = ["--generator", z("stylegan.pt"), "--encoder", z("clip_image.pt")]

    r = tool("train", *stylegan, "--latent-dim", "512", "--condition-transform", "l2", "--steps", "1",
             "--out", z("never.pt"), ok=False)
    lines = r.stderr.strip().splitlines()
    check(r.returncode == 2 and len(lines) == 1 and "--encoder-size" in lines[0] and "[2, 3, 64, 64]" in lines[0],
          f"without --encoder-size: one line naming the shapes and the flag: {r.stderr!r}")

    q = z("q_stylegan.pt")
    r = tool("train", *stylegan, *PRE, "--latent-dim", "512", "--condition-transform", "l2", "--steps", "2",
             "--batch", "4", "--feature-noise", "0.2", "--seed", "1", "--out", q)
    check("expected cosine" in r.stderr, "train prints the expected cosine of its noise")

    conditions, out = z("conditions.pt"), z("samples.pt")
    torch.manual_seed(0)
    torch.save(torch.nn.functional.normalize(torch.randn(2, 512), dim=1), conditions)
    r = tool("sample", *stylegan, *PRE, "--translator", q, "--conditions", conditions, "--samples-per-condition", "8",
             "--steps", "2", "--seed", "2", "--memory-budget", "64", "--out", out)
    check("a chain takes" in r.stderr, f"sample measures a chain: {r.stderr.splitlines()[1:2]}")
    s = torch.load(out)
    check(s["z"].shape == (16, 512) and s["x"].shape == (16, 3, 64, 64), "sample of 16: z and x shapes")
    check(bool(s["ok"].all()) and float(s["x"].min()) >= 0 and float(s["x"].max()) <= 1,
          "every chain ok, images rescaled to [0, 1]")

    serve = subprocess.Popen([TOOL, "serve", *stylegan, *PRE, "--translator", q, "--port", "0", "--workers", "1"],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        ready, _, _ = select.select([serve.stdout], [], [], 300)
        line = serve.stdout.readline() if ready else ""
        check(line.startswith("listening on http://"), f"serve starts: {line!r}")
        port = int(line.strip().rstrip("/").rsplit(":", 1)[1])
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=300)
        body = json.dumps({"conditions": torch.load(conditions)[0].tolist(), "n": 1, "steps": 1})
        conn.request("POST", "/api/sample", body=body, headers={"Content-Type": "application/json"})
        resp = conn.getresponse()
        answer = json.loads(resp.read())
        check(resp.status == 200 and len(answer["images"]) == 1, f"serve answers one request: {resp.status}")
    finally:
        serve.terminate()
        serve.wait(30)

    biggan = ["--generator", z("biggan.pt"), "--encoder", z("clip_image.pt"), *PRE, "--latent-dim", "128,128",
              "--prior", "truncated:2,codebook:" + z("biggan_classes.pt")]
    qb = z("q_biggan.pt")
    tool("train", *biggan, "--condition-transform", "l2", "--steps", "2", "--batch", "4", "--seed", "1", "--out", qb)
    tool("sample", *biggan, "--translator", qb, "--conditions", conditions, "--samples-per-condition", "2",
         "--steps", "2", "--step-size", "50", "--step-scale", "1,0.5", "--seed", "3", "--out", out)
    s = torch.load(out)
    table = torch.load(z("biggan_classes.pt"))
    check(s["z"].shape == (4, 256) and float(s["z"][:, :128].abs().max()) <= 2, "BigGAN: z [4, 256], z in [-2, 2]")
    moved = torch.cdist(s["z"][:, 128:], table).min(1).values
    check(bool((moved > 0).all()), "BigGAN: the class embeddings moved off the table's rows")


if __name__ == "__main__":
    if len(sys.argv) > 2:
        main(sys.argv[2])
    else:
        with tempfile.TemporaryDirectory() as d:
            subprocess.run([sys.executable, EXPORT, d, "--depth", "small", "--size", "64"], check=True)
            main(d)
