"""What the analysis scripts share: Fashion-Motion's caption lists and `verbclip embed`."""
import json, os, subprocess, sys, tempfile
import numpy as np

NOUNS = ['t-shirt', 'trouser', 'pullover', 'dress', 'coat', 'sandal', 'shirt', 'sneaker', 'bag', 'ankle boot']
POSTURES = ['standing upright', 'lying on its side', 'hanging upside down']


def read_captions(root, part):
    """(image path, caption) rows of DATA_ROOT/captions/{part}.tsv, the paths made whole."""
    path = f'{root}/captions/{part}.tsv'
    if not os.path.isfile(path):
        sys.exit(f'{path}: no such file (DATA_ROOT is a folder written by `verbclip make-data`)')
    return [(f'{root}/captions/{p}', c) for p, c in (l.rstrip('\n').split('\t') for l in open(path))]


def which(caption, options):
    """Index of the one option the caption names (word-bounded: 'shirt' does not match 't-shirt')."""
    found = [i for i, o in enumerate(options) if f' {o} ' in f' {caption} ']
    if len(found) != 1:
        sys.exit(f'caption "{caption}" names {len(found)} of {options}, not one')
    return found[0]


def embed(vc, weights, images, texts):
    """L2-normalised CLIP embeddings (centre crop, no resize): images [N, D], texts [M, D]."""
    for f in (vc, weights):
        if not os.path.isfile(f):
            sys.exit(f'{f}: no such file')
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, 'embed.json')
        subprocess.run([vc, 'embed', '--weights', weights, '--resize', '0', '--out', out,
                        '--image', *images, '--text', *texts], check=True, stdout=subprocess.DEVNULL)
        e = json.load(open(out))
    return np.array(e['image_embeds']), np.array(e['text_embeds'])
