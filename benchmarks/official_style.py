#!/usr/bin/python3
"""The authors' hybrid evaluation loop, written in PyTorch as their code runs it,
on the Fashion-MNIST job's TorchScript models: the baseline a user would
otherwise pick. `quality_benchmark` runs it in the same run as tr0n's rows
and scores its images with the same evaluation CNN.

The loop is `Evaluator._val_epoch` of layer6ai-labs/tr0n
(tr0n/modules/trainers/text_hybrid_evaluator_synthetic_*.py) with the flags of
its evaluation scripts (scripts/run_script_eval_*_syndata.sh): batch 1, one
condition at a time; the mixture start (`--with_gmm`): the component means z
[1, K, d] and the logits pi repeated over d; each of `--iters` iterations
(`--num_hybrid_iters=100`) forms z' = sum_k softmax(pi)_k z_k, evaluates the
energy of G(z'), backpropagates, clips the gradient norms of z and pi to 1
(`--max_grad_norm`), steps z by SGLD (`--lr_latent=1e-1`, `--momentum=0.99`,
`--sgld_noise_std=0.01`; noise on every mean) and pi by Adam (`--lr=5e-3`).

The energy: the official evaluation's energies compare CLIP embeddings
(cosine, augmented cosine). Here the auxiliary model is a classifier and the
condition a class, so the energy is the cross-entropy of f(G(z')) against the
class: the paper's energy for classifier conditions, and the one tr0n's job
uses (without the job's weight 20 and latent prior term: the official loop
has neither).

The translator's mixture for each class (logits [C, K], means [C, K, d]) comes
from tr0n's translator (written by quality_benchmark as tensor files); one
translator forward per sample is all the official code adds before the loop.

Every sample has its own seed (seed + its index), so the 100 samples of a class
differ in their SGLD noise. Timing covers the loops only (not the interpreter
or model loading), per class.

  official_style.py MODELS_DIR LOGITS.pt MEANS.pt OUT_PREFIX [--per-class N] [--iters T] [--seed S]

writes OUT_PREFIX.images.pt (the images, [C * N, 1, 28, 28], class-major) and
OUT_PREFIX.json (seconds per class, samples, configuration).
"""
import argparse
import json
import time

import torch
import torch.nn.functional as F


class SGLD(torch.optim.Optimizer):
    """SGD with heavy-ball momentum (dampening 0, the first step's buffer is the
    gradient), then Gaussian noise of a fixed std: the official SGLD step."""

    def __init__(self, params, lr, momentum, noise_std):
        super().__init__(params, dict(lr=lr, momentum=momentum, noise_std=noise_std))

    @torch.no_grad()
    def step(self):
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                d_p = p.grad
                if group["momentum"] != 0:
                    state = self.state[p]
                    if "momentum_buffer" not in state:
                        state["momentum_buffer"] = d_p.clone()
                    else:
                        state["momentum_buffer"].mul_(group["momentum"]).add_(d_p)
                    d_p = state["momentum_buffer"]
                p.add_(d_p, alpha=-group["lr"])
                p.add_(torch.randn_like(p) * group["noise_std"])


def sample_one(generator, classifier, logits, means, label, iters, lr_latent, lr_logits, momentum, noise, clip):
    pi = logits.view(1, -1, 1).repeat(1, 1, means.size(-1)).clone().requires_grad_(True)  # 1 x K x d
    z = means.unsqueeze(0).clone().requires_grad_(True)  # 1 x K x d
    opt_pi = torch.optim.Adam((pi,), lr=lr_logits)
    opt_z = SGLD((z,), lr=lr_latent, momentum=momentum, noise_std=noise)
    target = torch.tensor([label])
    for _ in range(iters):
        z_prime = (F.softmax(pi, dim=1) * z).sum(dim=1)
        loss = F.cross_entropy(classifier(generator(z_prime)), target)
        loss.backward()
        torch.nn.utils.clip_grad_norm_((z,), clip)
        torch.nn.utils.clip_grad_norm_((pi,), clip)
        opt_z.step()
        opt_pi.step()
        opt_z.zero_grad()
        opt_pi.zero_grad()
    with torch.no_grad():
        return generator((F.softmax(pi, dim=1) * z).sum(dim=1))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("models")
    ap.add_argument("logits")
    ap.add_argument("means")
    ap.add_argument("out")
    ap.add_argument("--per-class", type=int, default=100)
    ap.add_argument("--iters", type=int, default=100)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--lr-latent", type=float, default=0.1)
    ap.add_argument("--lr", type=float, default=5e-3)
    ap.add_argument("--momentum", type=float, default=0.99)
    ap.add_argument("--noise", type=float, default=0.01)
    ap.add_argument("--max-grad-norm", type=float, default=1.0)
    args = ap.parse_args()

    generator = torch.jit.load(f"{args.models}/generator.ts.pt").eval()
    classifier = torch.jit.load(f"{args.models}/aux_classifier.ts.pt").eval()
    for p in list(generator.parameters()) + list(classifier.parameters()):
        p.requires_grad_(False)
    logits = torch.load(args.logits, weights_only=True).float()
    means = torch.load(args.means, weights_only=True).float()
    classes = logits.size(0)

    images, seconds = [], []
    for c in range(classes):
        start = time.perf_counter()
        for j in range(args.per_class):
            torch.manual_seed(args.seed + c * args.per_class + j)
            images.append(sample_one(generator, classifier, logits[c], means[c], c, args.iters, args.lr_latent,
                                     args.lr, args.momentum, args.noise, args.max_grad_norm))
        seconds.append(time.perf_counter() - start)
    torch.save(torch.cat(images).contiguous(), f"{args.out}.images.pt")
    with open(f"{args.out}.json", "w") as f:
        json.dump({"seconds_per_class": seconds, "samples_per_class": args.per_class, "classes": classes,
                   "iters": args.iters, "lr_latent": args.lr_latent, "lr": args.lr, "momentum": args.momentum,
                   "noise": args.noise, "max_grad_norm": args.max_grad_norm, "seed": args.seed,
                   "torch": torch.__version__, "threads": torch.get_num_threads()}, f)


if __name__ == "__main__":
    main()
