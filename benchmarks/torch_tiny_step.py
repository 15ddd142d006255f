#!/usr/bin/python3
"""bench_step's tiny video transformer in PyTorch: one training step (forward, backward, AdamW).

The same shapes as benchmarks/bench_step.cpp's "tiny": B = 16 clips of T = 8 RGB frames of
32x32, 8x8 patches (16 + a class token = 17 tokens per frame), width 128, 4 heads, 6 pre-LN
residual blocks with a QuickGELU MLP (4x width), ln_pre / ln_post, the class token of each frame
averaged over the frames, a linear head to 18 classes, cross-entropy, AdamW (lr 1e-3, weight
decay 0.01 on every tensor). 1,219,346 parameters. Initial values differ (irrelevant to timing).

Prints JSON with bench_step's keys (threads, models[].model/params/step_ms/step_ms_all/
gflop_per_step/gflops) and which libblas the process resolved: Debian's python3-torch calls
the system BLAS (libblas.so.3, chosen by update-alternatives); the reference BLAS is about 10x
slower than OpenBLAS and would make the comparison meaningless, so it is named in a warning.

Usage: /usr/bin/python3 benchmarks/torch_tiny_step.py [--threads 1] [--steps 10] [--warmup 2]
                                                       [--out FILE]
"""
import argparse
import json
import os
import sys
import time


def parse():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--out", default="")
    return p.parse_args()


args = parse()
# Before torch loads: OpenBLAS (pthreads build) and OpenMP size their pools at start-up.
for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[var] = str(args.threads)

try:
    import torch
    import torch.nn as nn
    import torch.nn.functional as F
except ImportError:
    print("torch_tiny_step: PyTorch is not installed (apt-get install python3-torch)", file=sys.stderr)
    sys.exit(3)

torch.set_num_threads(args.threads)


def blas_libraries():
    """The BLAS/LAPACK shared objects mapped into this process, resolved to real paths."""
    found = set()
    with open("/proc/self/maps") as f:
        for line in f:
            path = line.split()[-1] if len(line.split()) >= 6 else ""
            name = os.path.basename(path)
            if any(k in name for k in ("blas", "lapack", "mkl", "blis")):
                found.add(os.path.realpath(path))
    return sorted(found)


class QuickGELU(nn.Module):
    def forward(self, x):
        return x * torch.sigmoid(1.702 * x)


class Block(nn.Module):
    def __init__(self, d, heads):
        super().__init__()
        self.heads = heads
        self.ln_1 = nn.LayerNorm(d)
        self.in_proj = nn.Linear(d, 3 * d)
        self.out_proj = nn.Linear(d, d)
        self.ln_2 = nn.LayerNorm(d)
        self.mlp = nn.Sequential(nn.Linear(d, 4 * d), QuickGELU(), nn.Linear(4 * d, d))

    def attn(self, x):
        n, l, d = x.shape
        q, k, v = self.in_proj(x).split(d, dim=-1)
        q, k, v = (t.reshape(n, l, self.heads, d // self.heads).transpose(1, 2) for t in (q, k, v))
        s = (q @ k.transpose(-1, -2)) * (d // self.heads) ** -0.5
        o = (s.softmax(-1) @ v).transpose(1, 2).reshape(n, l, d)
        return self.out_proj(o)

    def forward(self, x):
        x = x + self.attn(self.ln_1(x))
        return x + self.mlp(self.ln_2(x))


class TinyVideoTransformer(nn.Module):
    def __init__(self, image=32, patch=8, d=128, heads=4, layers=6, classes=18):
        super().__init__()
        self.conv1 = nn.Conv2d(3, d, patch, stride=patch, bias=False)
        self.class_embedding = nn.Parameter(torch.zeros(d))
        self.positional_embedding = nn.Parameter(torch.zeros((image // patch) ** 2 + 1, d))
        self.ln_pre = nn.LayerNorm(d)
        self.blocks = nn.Sequential(*[Block(d, heads) for _ in range(layers)])
        self.ln_post = nn.LayerNorm(d)
        self.head = nn.Linear(d, classes)

    def forward(self, video):
        b, t = video.shape[:2]
        x = self.conv1(video.flatten(0, 1)).flatten(2).transpose(1, 2)  # [BT, P, D]
        cls = self.class_embedding.expand(x.shape[0], 1, -1)
        x = torch.cat([cls, x], 1) + self.positional_embedding
        x = self.blocks(self.ln_pre(x))
        frame = self.ln_post(x[:, 0].reshape(b, t, -1))
        return self.head(frame.mean(1))


def tiny_step_flops(B=16, T=8, image=32, patch=8, D=128, layers=6, classes=18):
    """bench_step.cpp's closed formula (the same rule, see its header)."""
    Fr, P = B * T, (image // patch) ** 2
    L = P + 1
    R = Fr * L
    linears = 2 * R * D * (3 * D) + 2 * R * D * D + 2 * R * D * (4 * D) + 2 * R * (4 * D) * D
    attention = 2 * Fr * L * L * (D + D)
    patch_embed = 2 * Fr * P * (3 * patch * patch) * D
    head = 2 * B * D * classes
    return 3 * (layers * (linears + attention) + head) + 2 * patch_embed


def main():
    torch.manual_seed(1)
    model = TinyVideoTransformer()
    model.train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.01)
    video = torch.randn(16, 8, 3, 32, 32)
    labels = torch.arange(16) % 18

    def step():
        opt.zero_grad(set_to_none=True)
        F.cross_entropy(model(video), labels).backward()
        opt.step()

    for _ in range(args.warmup):
        step()
    ms = []
    for _ in range(args.steps):
        t0 = time.perf_counter()
        step()
        ms.append((time.perf_counter() - t0) * 1e3)
    s = sorted(ms)
    n = len(s)
    median = s[n // 2] if n % 2 else 0.5 * (s[n // 2 - 1] + s[n // 2])
    flops = tiny_step_flops()
    libs = blas_libraries()
    # Debian's reference BLAS lives in /usr/lib/<triplet>/blas/ (OpenBLAS in openblas-*/,
    # ATLAS in atlas/, BLIS in blis-*/).
    reference = [p for p in libs if os.path.basename(os.path.dirname(p)) == "blas"]
    if reference:
        print("torch_tiny_step: WARNING: the process uses the reference BLAS (" + ", ".join(reference) +
              "), about 10x slower than OpenBLAS: select OpenBLAS with "
              "update-alternatives --config libblas.so.3-x86_64-linux-gnu", file=sys.stderr)
    report = {
        "benchmark": "training step (PyTorch)",
        "torch": torch.__version__,
        "blas_libraries": libs,
        "reference_blas": bool(reference),
        "threads": args.threads,
        "steps": args.steps,
        "warmup": args.warmup,
        "models": [{
            "model": "tiny",
            "params": sum(p.numel() for p in model.parameters()),
            "clips": 16,
            "frames": 8,
            "step_ms": median,
            "step_ms_all": ms,
            "gflop_per_step": flops / 1e9,
            "gflop_source": "closed formula",
            "gflops": flops / (median * 1e-3) / 1e9,
        }],
    }
    text = json.dumps(report)
    print(text)
    if args.out:
        with open(args.out, "w") as f:
            f.write(text + "\n")


if __name__ == "__main__":
    main()
