#!/usr/bin/env python3
"""How much of Fashion-Motion a frozen tiny CLIP's frame features can tell, pooled two ways.

Embeds 8 evenly spaced frames (2, 4, ..., 16; centre 32x32 crop) of 40 train and 10 val videos
per class with `verbclip embed`, then fits a logistic regression (scikit-learn) on
  - the mean of the 8 frame features (what the baseline's frame averaging keeps), and
  - their concatenation (order-aware: what a model whose frames exchange information can use).
Issue 12's note: it separates "the baseline does not train" from "the frame mean has nothing to
separate". Needs python3-numpy and python3-sklearn.

usage: frame_mean_probe.py DATA_ROOT CLIP.safetensors [VERBCLIP]
"""
import sys
import numpy as np
from sklearn.linear_model import LogisticRegression
from fashion_motion import embed

if len(sys.argv) < 3:
    sys.exit(__doc__)
root, weights = sys.argv[1], sys.argv[2]
vc = sys.argv[3] if len(sys.argv) > 3 else 'build/bin/verbclip'
names = [l.split(',', 1)[1].strip() for l in open(f'{root}/labels.csv').read().splitlines()[1:]]
family = lambda k: 'C' if k < 10 else 'B' if k < 12 else 'A' if k < 14 else 'D'
images, split, labels = [], [], []
for part, per_class in (('train', 40), ('val', 10)):
    count = {}
    for line in open(f'{root}/{part}.txt'):
        vid, _, y = line.split()
        y = int(y)
        if count.get(y, 0) >= per_class:
            continue
        count[y] = count.get(y, 0) + 1
        images += [f'{root}/rawframes/{vid}/img_{f:05d}.jpg' for f in range(2, 17, 2)]
        split.append(part); labels.append(y)
X = embed(vc, weights, images, [f'a video of a clothing item {n}.' for n in names])[0].reshape(len(labels), 8, -1)
y, train = np.array(labels), np.array([s == 'train' for s in split])
fam = np.array([family(k) for k in y])

def line(name, model, feats, mask):
    pred = model.predict(feats[mask])
    per = ' '.join(f'{f} {100 * np.mean(pred[fam[mask] == f] == y[mask][fam[mask] == f]):5.1f}' for f in 'ABCD')
    return f'{name} {100 * np.mean(pred == y[mask]):5.1f}  {per}'

print(f'{len(labels)} videos ({train.sum()} train, {(~train).sum()} val), 8 frames each; top-1 % and per family')
for C in (1, 10, 100):
    for pool, feats in (('mean of frames', X.mean(1)), ('concatenated  ', X.reshape(len(y), -1))):
        m = LogisticRegression(C=C, max_iter=3000).fit(feats[train], y[train])
        print(f'C={C:<3} {pool}  ' + line('train', m, feats, train) + '   |  ' + line('val', m, feats, ~train))
