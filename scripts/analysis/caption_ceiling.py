#!/usr/bin/env python3
"""A supervised ceiling for the tiny CLIP's caption images (issue 12).

Trains a small CNN (3 stages of two 3x3 conv + BN + ReLU, 32-64-128 channels; PyTorch) with labels,
not captions, on the 7,200 train caption images: one head for the noun (10) and one for the
posture (3), random 32x32 crops of the 40x40 images, AdamW one-cycle 2e-3, batch 128. Tests on the
800 val captions (centre crop). If this does not reach a figure, a CLIP trained contrastively on
the same images will not either. Decodes the JPEGs with ImageMagick's `convert`.

usage: caption_ceiling.py DATA_ROOT [STEPS=1500]
"""
import subprocess, sys, time
import numpy as np, torch, torch.nn as nn, torch.nn.functional as F
from fashion_motion import NOUNS, POSTURES, read_captions, which

if len(sys.argv) < 2:
    sys.exit(__doc__)
root = sys.argv[1]
steps = int(sys.argv[2]) if len(sys.argv) > 2 else 1500
torch.manual_seed(0); np.random.seed(0)

def load(part):
    rows = read_captions(root, part)
    raw = subprocess.run(['convert', *[p for p, _ in rows], '-depth', '8', 'rgb:-'],
                         check=True, stdout=subprocess.PIPE).stdout
    x = np.frombuffer(raw, np.uint8).reshape(len(rows), 40, 40, 3).astype(np.float32) / 255
    noun = [which(c, NOUNS) for _, c in rows]
    posture = [which(c, POSTURES) for _, c in rows]
    return torch.tensor(x).permute(0, 3, 1, 2), torch.tensor(noun), torch.tensor(posture)

Xt, nt, pt = load('train')
Xv, nv, pv = load('val')
def stage(i, o):
    return [nn.Conv2d(i, o, 3, padding=1), nn.BatchNorm2d(o), nn.ReLU(), nn.Conv2d(o, o, 3, padding=1), nn.BatchNorm2d(o), nn.ReLU()]
net = nn.Sequential(*stage(3, 32), nn.MaxPool2d(2), *stage(32, 64), nn.MaxPool2d(2), *stage(64, 128),
                    nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(128, 13))
opt = torch.optim.AdamW(net.parameters(), 2e-3, weight_decay=0.05)
sched = torch.optim.lr_scheduler.OneCycleLR(opt, 2e-3, total_steps=steps)
t0 = time.time()
for s in range(steps):
    idx = torch.randint(0, len(Xt), (128,))
    oy, ox = np.random.randint(0, 9, 2)
    z = net.train()(Xt[idx, :, oy:oy + 32, ox:ox + 32])
    loss = F.cross_entropy(z[:, :10], nt[idx]) + F.cross_entropy(z[:, 10:], pt[idx])
    opt.zero_grad(); loss.backward(); opt.step(); sched.step()
    if (s + 1) % max(1, steps // 6) == 0 or s + 1 == steps:
        with torch.no_grad():
            z = net.eval()(Xv[:, :, 4:36, 4:36])
        print(f'step {s + 1} ({time.time() - t0:.0f}s)  loss {loss.item():.3f}  val noun '
              f'{100 * (z[:, :10].argmax(1) == nv).float().mean():.1f}%  posture {100 * (z[:, 10:].argmax(1) == pv).float().mean():.1f}%',
              flush=True)
