#!/usr/bin/env python3
"""Writes a real-size model zoo of TorchScript stand-ins, with random weights.

The paper's models cannot be downloaded here, so these are architecture-
faithful stand-ins, built with Debian's python3-torch (1.13):

  clip_image.pt    CLIP ViT-B/32 image tower: [B, 3, 224, 224] in CLIP's
                   normalisation -> [B, 512] (patch 32, width 768, 12 layers,
                   12 heads, QuickGELU; about 88M parameters).
  clip_text.pt     CLIP's text tower: token ids [N, 77] -> [N, 512] (width
                   512, 12 layers, 8 heads, causal mask, the end token's
                   state), with `vocabulary` (49,408 words) and
                   `context_length` attributes, so `tr0n sample --prompt` works.
  stylegan.pt      A StyleGAN2-like generator: z [B, 512] -> an 8-layer mapping
                   network -> w, then modulated, demodulated 3x3 convolutions
                   from a learned 4 x 4 constant up to 256 x 256, skip toRGB
                   outputs; images [B, 3, 256, 256] in [-1, 1] (tanh).
  biggan.pt        A BigGAN-like G(z, y): z [B, 128] and a class embedding
                   y [B, 128]; z is split across the blocks, each block's
                   batch norm conditioned on [z chunk, y]; images
                   [B, 3, 256, 256] in [-1, 1].
  biggan_classes.pt  BigGAN's shared class-embedding table, [1000, 128], as a
                   tensor file (torch.save), for a `codebook:FILE` prior.
  aesthetic.pt     An aesthetic-style head: one linear layer, [B, 512] -> [B, 1].

Random weights check mechanics, memory and speed, not quality: images are
noise-like and CLIP scores mean nothing. Every module is traced with an example
input that requires grad (so nn.MultiheadAttention records its differentiable
path, not the inference fast path) and checked: the output shape, and a
gradient that reaches the input.

  python3 scripts/export-zoo.py OUT_DIR [--depth FULL|small] [--size 256]

`--depth small` keeps every architecture but with 2 layers or blocks where the
real one has 8 to 12, for tests that must run in minutes.
"""
import argparse
import math
import os
import sys

import torch
import torch.nn as nn
import torch.nn.functional as F


# ---------------------------------------------------------------- CLIP towers
class QuickGELU(nn.Module):
    def forward(self, x):
        return x * torch.sigmoid(1.702 * x)


class ResidualAttentionBlock(nn.Module):
    def __init__(self, width, heads, causal_length=0):
        super().__init__()
        self.attn = nn.MultiheadAttention(width, heads)
        self.ln_1 = nn.LayerNorm(width)
        self.mlp = nn.Sequential(nn.Linear(width, width * 4), QuickGELU(), nn.Linear(width * 4, width))
        self.ln_2 = nn.LayerNorm(width)
        self.causal = causal_length > 0
        if self.causal:
            self.register_buffer("mask", torch.full((causal_length, causal_length), float("-inf")).triu_(1))

    def forward(self, x):  # [L, B, width], as CLIP's
        h = self.ln_1(x)
        mask = self.mask if self.causal else None
        x = x + self.attn(h, h, h, need_weights=False, attn_mask=mask)[0]
        return x + self.mlp(self.ln_2(x))


class VisionTransformer(nn.Module):
    def __init__(self, layers, size=224, patch=32, width=768, heads=12, output=512):
        super().__init__()
        self.conv1 = nn.Conv2d(3, width, patch, patch, bias=False)
        scale = width ** -0.5
        self.class_embedding = nn.Parameter(scale * torch.randn(width))
        self.positional_embedding = nn.Parameter(scale * torch.randn((size // patch) ** 2 + 1, width))
        self.ln_pre = nn.LayerNorm(width)
        self.blocks = nn.Sequential(*[ResidualAttentionBlock(width, heads) for _ in range(layers)])
        self.ln_post = nn.LayerNorm(width)
        self.proj = nn.Parameter(scale * torch.randn(width, output))

    def forward(self, x):
        x = self.conv1(x).flatten(2).permute(0, 2, 1)  # [B, patches, width]
        cls = self.class_embedding.to(x.dtype).expand(x.shape[0], 1, -1)
        x = torch.cat([cls, x], 1) + self.positional_embedding.to(x.dtype)
        x = self.ln_pre(x).permute(1, 0, 2)
        x = self.blocks(x).permute(1, 0, 2)
        return self.ln_post(x[:, 0, :]) @ self.proj


class TextTransformer(nn.Module):
    def __init__(self, layers, vocabulary, context=77, width=512, heads=8, output=512):
        super().__init__()
        self.vocabulary = vocabulary
        self.context_length = context
        self.token_embedding = nn.Embedding(len(vocabulary), width)
        self.positional_embedding = nn.Parameter(0.01 * torch.randn(context, width))
        self.blocks = nn.Sequential(*[ResidualAttentionBlock(width, heads, context) for _ in range(layers)])
        self.ln_final = nn.LayerNorm(width)
        self.text_projection = nn.Parameter(width ** -0.5 * torch.randn(width, output))

    def forward(self, tokens):
        x = self.token_embedding(tokens) + self.positional_embedding
        x = self.blocks(x.permute(1, 0, 2)).permute(1, 0, 2)
        x = self.ln_final(x)
        # CLIP takes the end token's state (the highest id); here, the last non-padding token's.
        last = (tokens != 0).long().sum(1).clamp(min=1) - 1
        return x[torch.arange(x.shape[0]), last] @ self.text_projection


def vocabulary(size=49408):
    """A word list of CLIP's size: `<pad>` at 0, a few hundred real words, then filler words."""
    words = ("a an the photo picture painting drawing of with and in on at man woman person child dog cat bird "
             "horse car tree flower house city street beach forest mountain sky sunset night red green blue "
             "yellow black white dark bright smiling happy sad old young glasses hat face portrait landscape "
             "snow water river ocean boat castle bridge road field garden sandal bag shoe shirt dress coat").split()
    out = ["<pad>"] + list(dict.fromkeys(words))
    out += ["w%d" % i for i in range(size - len(out))]
    return out


# ---------------------------------------------------------------- StyleGAN2-like
class MappingNetwork(nn.Module):
    def __init__(self, layers, z_dim=512, w_dim=512):
        super().__init__()
        dims = [z_dim] + [w_dim] * layers
        self.fcs = nn.ModuleList([nn.Linear(a, b) for a, b in zip(dims[:-1], dims[1:])])

    def forward(self, z):
        x = z * torch.rsqrt(z.pow(2).mean(1, keepdim=True) + 1e-8)  # pixel norm
        for fc in self.fcs:
            x = F.leaky_relu(fc(x), 0.2) * math.sqrt(2)
        return x


class ModulatedConv(nn.Module):
    """StyleGAN2's modulated 3x3 convolution, demodulated, in its unfused form (the activations scaled
    by the style before a shared convolution, by the demodulation after), which works at any batch size."""

    def __init__(self, w_dim, cin, cout, k=3, demodulate=True, up=False):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(cout, cin, k, k))
        self.affine = nn.Linear(w_dim, cin)
        nn.init.ones_(self.affine.bias)
        self.demodulate, self.up, self.pad = demodulate, up, k // 2
        self.scale = 1 / math.sqrt(cin * k * k)
        self.bias = nn.Parameter(torch.zeros(cout))

    def forward(self, x, w):
        style = self.affine(w) * self.scale  # [B, cin]
        if self.up:
            x = F.interpolate(x, scale_factor=2.0, mode="bilinear", align_corners=False)
        out = F.conv2d(x * style[:, :, None, None], self.weight, padding=self.pad)
        if self.demodulate:  # 1 / |weight * style| over (cin, k, k), per sample and output channel
            coefficients = torch.rsqrt(style.pow(2) @ self.weight.pow(2).sum([2, 3]).t() + 1e-8)
            out = out * coefficients[:, :, None, None]
        return out + self.bias.view(1, -1, 1, 1)


class SynthesisBlock(nn.Module):
    def __init__(self, w_dim, cin, cout):
        super().__init__()
        self.conv0 = ModulatedConv(w_dim, cin, cout, up=True)
        self.conv1 = ModulatedConv(w_dim, cout, cout)
        self.torgb = ModulatedConv(w_dim, cout, 3, k=1, demodulate=False)
        self.noise_strength = nn.Parameter(torch.zeros(2))

    def forward(self, x, img, w):
        x = F.leaky_relu(self.conv0(x, w), 0.2) * math.sqrt(2)
        x = F.leaky_relu(self.conv1(x, w), 0.2) * math.sqrt(2)
        img = F.interpolate(img, scale_factor=2.0, mode="bilinear", align_corners=False) + self.torgb(x, w)
        return x, img


class StyleGAN2(nn.Module):
    def __init__(self, mapping_layers, size=256, z_dim=512, w_dim=512, max_channels=512, min_channels=64):
        super().__init__()
        self.mapping = MappingNetwork(mapping_layers, z_dim, w_dim)
        self.const = nn.Parameter(torch.randn(max_channels, 4, 4))
        self.conv = ModulatedConv(w_dim, max_channels, max_channels)
        self.torgb = ModulatedConv(w_dim, max_channels, 3, k=1, demodulate=False)
        blocks, res, cin = [], 4, max_channels
        while res < size:
            res *= 2
            cout = max(min_channels, min(max_channels, 2 ** 14 // res))
            blocks.append(SynthesisBlock(w_dim, cin, cout))
            cin = cout
        self.blocks = nn.ModuleList(blocks)

    def forward(self, z):
        w = self.mapping(z)
        x = self.const.unsqueeze(0).expand(z.shape[0], -1, -1, -1)
        x = F.leaky_relu(self.conv(x, w), 0.2) * math.sqrt(2)
        img = self.torgb(x, w)
        for block in self.blocks:
            x, img = block(x, img, w)
        return torch.tanh(img)


# ---------------------------------------------------------------- BigGAN-like
class ConditionalBatchNorm(nn.Module):
    def __init__(self, channels, cond_dim):
        super().__init__()
        self.bn = nn.BatchNorm2d(channels, affine=False)
        self.gain = nn.Linear(cond_dim, channels)
        self.bias = nn.Linear(cond_dim, channels)

    def forward(self, x, cond):
        g = 1 + self.gain(cond)
        return self.bn(x) * g[:, :, None, None] + self.bias(cond)[:, :, None, None]


class GBlock(nn.Module):
    def __init__(self, cin, cout, cond_dim):
        super().__init__()
        self.bn1 = ConditionalBatchNorm(cin, cond_dim)
        self.conv1 = nn.Conv2d(cin, cout, 3, padding=1)
        self.bn2 = ConditionalBatchNorm(cout, cond_dim)
        self.conv2 = nn.Conv2d(cout, cout, 3, padding=1)
        self.skip = nn.Conv2d(cin, cout, 1)

    def forward(self, x, cond):
        h = F.interpolate(F.relu(self.bn1(x, cond)), scale_factor=2.0)
        h = self.conv2(F.relu(self.bn2(self.conv1(h), cond)))
        return h + self.skip(F.interpolate(x, scale_factor=2.0))


class BigGAN(nn.Module):
    """G(z, y): z [B, 128] split into one chunk a block (and one for the input), y the class embedding [B, 128]."""

    def __init__(self, blocks=6, z_dim=128, y_dim=128, ch=32):
        super().__init__()
        mult = [16, 16, 8, 8, 4, 2, 1, 1][:blocks + 1]
        self.chunk = z_dim // (blocks + 1)
        self.z_dim, self.ch0 = z_dim, ch * mult[0]
        self.linear = nn.Linear(self.chunk, self.ch0 * 16)
        self.blocks = nn.ModuleList([GBlock(ch * mult[i], ch * mult[i + 1], self.chunk + y_dim) for i in range(blocks)])
        self.out_bn = nn.BatchNorm2d(ch * mult[blocks])
        self.out = nn.Conv2d(ch * mult[blocks], 3, 3, padding=1)

    def forward(self, z, y):
        zs = torch.split(z[:, :self.chunk * (len(self.blocks) + 1)], self.chunk, 1)
        x = self.linear(zs[0]).view(z.shape[0], self.ch0, 4, 4)
        for i, block in enumerate(self.blocks):
            x = block(x, torch.cat([zs[i + 1], y], 1))
        return torch.tanh(self.out(F.relu(self.out_bn(x))))


class AestheticHead(nn.Module):
    def __init__(self, dim=512):
        super().__init__()
        self.linear = nn.Linear(dim, 1)

    def forward(self, x):
        return self.linear(x)


# ---------------------------------------------------------------- export
def export(module, inputs, path):
    """Traces `module` eval-mode and frozen, with inputs that require grad; checks the gradient reaches them."""
    module = module.eval()
    for p in module.parameters():
        p.requires_grad_(False)
    inputs = tuple(x.requires_grad_() if x.is_floating_point() else x for x in inputs)
    traced = torch.jit.trace(module, inputs, check_trace=False)
    out = traced(*inputs)
    floats = [x for x in inputs if x.is_floating_point()]
    if floats:
        grads = torch.autograd.grad(out.float().sum(), floats, allow_unused=True)
        if any(g is None for g in grads):
            sys.exit("export-zoo: %s: no gradient reaches an input" % path)
    other = tuple(torch.cat([x.detach()] * 2) for x in inputs)  # a batch twice as large must work too
    if traced(*other).shape[0] != out.shape[0] * 2:
        sys.exit("export-zoo: %s: the traced module does not follow the batch size" % path)
    traced.save(path)
    count = sum(p.numel() for p in module.parameters())
    print("%-20s %6.1fM parameters, output %s" % (os.path.basename(path), count / 1e6, list(out.shape)))
    return traced


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("out")
    ap.add_argument("--depth", choices=["full", "small"], default="full")
    ap.add_argument("--size", type=int, default=256, help="StyleGAN's and BigGAN's image size")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    torch.manual_seed(args.seed)
    full = args.depth == "full"
    path = lambda name: os.path.join(args.out, name)

    vit = VisionTransformer(layers=12 if full else 2)
    export(vit, (torch.rand(2, 3, 224, 224),), path("clip_image.pt"))
    words = vocabulary()
    text = TextTransformer(layers=12 if full else 2, vocabulary=words)
    text_traced = export(text, (torch.randint(1, 200, (2, 77)),), path("clip_text.pt"))
    # The tokenisation the tool reads (see tr0n::torchscript_text_encoder).
    scripted = torch.jit.load(path("clip_text.pt"))
    del text_traced
    scripted._c._register_attribute("vocabulary", torch._C.ListType(torch._C.StringType.get()), words)
    scripted._c._register_attribute("context_length", torch._C.IntType.get(), 77)
    scripted.save(path("clip_text.pt"))

    stylegan = StyleGAN2(mapping_layers=8 if full else 2, size=args.size)
    export(stylegan, (torch.randn(2, 512),), path("stylegan.pt"))
    blocks = int(math.log2(args.size)) - 2
    biggan = BigGAN(blocks=blocks)
    export(biggan, (torch.randn(2, 128), torch.randn(2, 128)), path("biggan.pt"))
    torch.save(0.1 * torch.randn(1000, 128), path("biggan_classes.pt"))
    export(AestheticHead(), (torch.randn(2, 512),), path("aesthetic.pt"))
    print("random weights: these check mechanics, memory and speed, not quality")


if __name__ == "__main__":
    main()
