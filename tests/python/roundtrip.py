"""Round trip with Python's torch: TorchScript models and conditions written by
torch.jit.save / torch.save, run through the `tr0n` tool, and its output read
back with torch.load. Exits 77 (CTest: skipped) when torch is not importable."""
import os
import subprocess
import sys
import tempfile

try:
    import torch
except ImportError:
    print("python torch is not available: skipped")
    sys.exit(77)

tool = sys.argv[1]
torch.manual_seed(0)


class Generator(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = torch.nn.Linear(4, 2 * 5 * 5)

    def forward(self, z):
        return torch.sigmoid(self.fc(z)).view(-1, 2, 5, 5)


class Classifier(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = torch.nn.Linear(50, 3)

    def forward(self, x):
        return self.fc(x.flatten(1))


with tempfile.TemporaryDirectory() as d:
    g, f = os.path.join(d, "g.pt"), os.path.join(d, "f.pt")
    torch.jit.script(Generator()).save(g)
    torch.jit.trace(Classifier(), torch.rand(2, 2, 5, 5)).save(f)
    labels = os.path.join(d, "labels.pt")
    torch.save(torch.tensor([0, 2, 1, 2]), labels)
    translator, out = os.path.join(d, "q.pt"), os.path.join(d, "samples.pt")
    models = ["--generator", g, "--encoder", f]
    subprocess.run([tool, "train", *models, "--latent-dim", "4", "--condition-transform", "softmax",
                    "--steps", "100", "--seed", "1", "--out", translator], check=True)
    subprocess.run([tool, "sample", *models, "--translator", translator, "--conditions", labels,
                    "--energy", "cross_entropy", "--init", "translator_sample", "--steps", "10",
                    "--samples-per-condition", "2", "--seed", "2", "--precision", "fp32", "--out", out], check=True)
    # Data only: current PyTorch loads with weights_only=True by default (2.6 and later).
    samples = torch.load(out, weights_only=True)
    cond_file = os.path.join(d, "conditions_back.pt")
    subprocess.run([tool, "sample", *models, "--translator", translator, "--labels", "1,0", "--init", "prior",
                    "--steps", "0", "--seed", "2", "--out", cond_file], check=True)
    assert set(torch.load(cond_file, weights_only=True)) == {"conditions", "z", "x", "energy", "ok"}
    assert set(samples) == {"conditions", "z", "x", "energy", "ok"}, samples.keys()
    assert torch.equal(samples["conditions"], torch.nn.functional.one_hot(torch.tensor([0, 2, 1, 2]), 3).float())
    assert samples["z"].shape == (8, 4), samples["z"].shape
    assert samples["x"].shape == (8, 2, 5, 5), samples["x"].shape
    assert samples["energy"].shape == (8,)
    assert samples["ok"].dtype == torch.bool and bool(samples["ok"].all())
    # The energies the tool reports are the classifier's cross-entropy on G(z) (in float32, as computed here;
    # the default on a CPU with AVX512_BF16 is bf16, whose rounding is far above this tolerance).
    clf = torch.jit.load(f)
    expected = torch.nn.functional.cross_entropy(clf(samples["x"]), torch.tensor([0, 0, 2, 2, 1, 1, 2, 2]), reduction="none")
    assert torch.allclose(expected, samples["energy"], atol=1e-4), (expected, samples["energy"])
    print("python round trip ok")
