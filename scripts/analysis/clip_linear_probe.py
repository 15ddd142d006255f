#!/usr/bin/env python3
"""Where the tiny CLIP's noun accuracy is lost: in the image embedding or in its alignment with text.

Embeds every caption image (train and val lists of Fashion-Motion's captions set; centre 32x32
crop, as the CLIP's own validation) with `verbclip embed`, then reports on the val images
  - zero-shot noun accuracy with the text tower ("a photo of a {noun}"), and
  - a logistic regression (scikit-learn) on the frozen image embeddings, fitted on the train
    images, for the noun and for the posture (C = 1, 10, 100).
If the linear probe is far above zero-shot, the text side loses the noun; if both are low, the
image embedding does not hold it. Issue 12's note. Needs python3-numpy and python3-sklearn.

usage: clip_linear_probe.py DATA_ROOT CLIP.safetensors [VERBCLIP]
"""
import sys
import numpy as np
from sklearn.linear_model import LogisticRegression
from fashion_motion import NOUNS, POSTURES, embed, read_captions, which

if len(sys.argv) < 3:
    sys.exit(__doc__)
root, weights = sys.argv[1], sys.argv[2]
vc = sys.argv[3] if len(sys.argv) > 3 else 'build/bin/verbclip'
rows = {s: read_captions(root, s) for s in ('train', 'val')}
paths = [p for s in ('train', 'val') for p, _ in rows[s]]
captions = [c for s in ('train', 'val') for _, c in rows[s]]
X, T = embed(vc, weights, paths, [f'a photo of a {n}' for n in NOUNS])
ntr = len(rows['train'])
noun = np.array([which(c, NOUNS) for c in captions])
posture = np.array([which(c, POSTURES) for c in captions])
print(f'{ntr} train, {len(captions) - ntr} val caption images; embeddings of width {X.shape[1]}')
print(f'zero-shot noun (val, "a photo of a {{noun}}"): {100 * np.mean((X[ntr:] @ T.T).argmax(1) == noun[ntr:]):.1f}%'
      f'  (chance {100 / len(NOUNS):.1f})')
for name, y in (('noun', noun), ('posture', posture)):
    for C in (1, 10, 100):
        m = LogisticRegression(C=C, max_iter=3000).fit(X[:ntr], y[:ntr])
        print(f'linear probe on the image embedding, {name:7s} C={C:<3}: '
              f'train {100 * m.score(X[:ntr], y[:ntr]):5.1f}%  val {100 * m.score(X[ntr:], y[ntr:]):5.1f}%')
