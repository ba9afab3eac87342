#!/usr/bin/env python3
"""The fmnist experiment's OE phase in PyTorch (Debian's python3-torch, CPU), to choose its budget.

Trains (or reloads) the fmnist baseline as bench/fmnist_recipe_torch.py does, then fine-tunes one
copy per outlier set with the OE loss (pytorch-ood's averaging over the mixed batch, lambda 0.5)
for a given number of steps, and reports test accuracy and MSP / Energy AUROC and FPR95 against
OOD sets given as .npz files (uint8 N x 1 x 28 x 28 under "x"): the engine's built sets (font
glyphs, icons, cached under the data folder's offline-ood/) and outliers sampled by the engine's
BigGAN. PyTorch runs this ~5x faster than the engine on lavapipe, so budgets are compared here
and the chosen one is then run by `goe run` (bench/NOTES.md, "fmnist default run").

  python3 bench/fmnist_oe_torch.py --ood glyphs=G.npz --ood icons=I.npz --outliers generated=gen.npz --steps 64 --lr 0.01
"""
import argparse
import json
import math
import os
import sys

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(__file__))
from fmnist_recipe_torch import ROOT, WRN, idx  # noqa: E402

MEAN, STD = 0.286, 0.353


def norm(x):
    return (torch.from_numpy(x.astype(np.float32) / 255.0) - MEAN) / STD


def auroc_fpr(s_in, s_out):
    """AUROC (OOD positive, ties halved) and FPR at the first threshold with TPR >= 0.95."""
    s = np.concatenate([s_in, s_out])
    y = np.concatenate([np.zeros(len(s_in)), np.ones(len(s_out))])
    order = np.argsort(s, kind='mergesort')
    ranks = np.empty(len(s))
    ranks[order] = np.arange(1, len(s) + 1)
    for v in np.unique(s):  # average ranks of ties
        m = s == v
        if m.sum() > 1:
            ranks[m] = ranks[m].mean()
    auroc = (ranks[y == 1].sum() - len(s_out) * (len(s_out) + 1) / 2) / (len(s_in) * len(s_out))
    thr = np.sort(s_out)[::-1][int(math.ceil(0.95 * len(s_out))) - 1]
    return auroc, float((s_in >= thr).mean())


def scores(model, x):
    model.eval()
    with torch.no_grad():
        logits = torch.cat([model(x[i:i + 1000]) for i in range(0, len(x), 1000)])
    return {'MSP': -F.softmax(logits, 1).max(1).values.numpy(), 'Energy': -torch.logsumexp(logits, 1).numpy()}, logits.argmax(1)


def main():
    p = argparse.ArgumentParser()
    p.add_argument('--baseline-epochs', type=float, default=2)
    p.add_argument('--baseline', default='/tmp/fmnist-baseline.pt', help='cache of the trained baseline')
    p.add_argument('--steps', type=int, default=64)
    p.add_argument('--batch', type=int, default=128)
    p.add_argument('--lr', type=float, default=0.01)
    p.add_argument('--momentum', type=float, default=0.9)
    p.add_argument('--subset', type=int, default=4096)
    p.add_argument('--ood', action='append', default=[])
    p.add_argument('--outliers', action='append', default=[])
    a = p.parse_args()
    torch.manual_seed(0)
    xtr, ytr = norm(idx(f'{ROOT}/train-images-idx3-ubyte.gz'))[:, None], torch.from_numpy(idx(f'{ROOT}/train-labels-idx1-ubyte.gz').astype(np.int64))
    xte, yte = norm(idx(f'{ROOT}/t10k-images-idx3-ubyte.gz'))[:, None], torch.from_numpy(idx(f'{ROOT}/t10k-labels-idx1-ubyte.gz').astype(np.int64))
    base = WRN(10, 1)
    if os.path.exists(a.baseline):
        base.load_state_dict(torch.load(a.baseline))
    else:
        opt = torch.optim.SGD(base.parameters(), lr=0.1, momentum=0.9, nesterov=True, weight_decay=5e-4)
        per_epoch = math.ceil(len(xtr) / 128)
        total = int(a.baseline_epochs * per_epoch)
        sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 1e-5 + (1 - 1e-5) * 0.5 * (1 + math.cos(s / total * math.pi)))
        base.train()
        step = 0
        while step < total:
            perm = torch.randperm(len(xtr))
            for b in range(per_epoch):
                if step >= total:
                    break
                i = perm[b * 128:(b + 1) * 128]
                loss = F.cross_entropy(base(xtr[i]), ytr[i])
                opt.zero_grad()
                loss.backward()
                opt.step()
                sched.step()
                step += 1
        torch.save(base.state_dict(), a.baseline)
    ood = {name: norm(np.load(path)['x'][:2000]) for name, path in (o.split('=', 1) for o in a.ood)}
    outlier_sets = {'none': None, 'noise': torch.from_numpy(np.random.default_rng(1).integers(0, 256, (a.subset, 1, 28, 28)).astype(np.uint8))}
    for o in a.outliers:
        name, path = o.split('=', 1)
        outlier_sets[name] = torch.from_numpy(np.load(path)['x'][:a.subset])
    for name, outl in outlier_sets.items():
        model = WRN(10, 1)
        model.load_state_dict(base.state_dict())
        if outl is not None:
            xo = ((outl.float() / 255.0) - MEAN) / STD
            sub = torch.randperm(len(xtr))[:a.subset]
            xin, yin = xtr[sub], ytr[sub]
            pool_x = torch.cat([xin, xo])
            pool_y = torch.cat([yin, torch.full((len(xo),), -1)])
            opt = torch.optim.SGD(model.parameters(), lr=a.lr, momentum=a.momentum)
            model.train()
            step = 0
            while step < a.steps:
                perm = torch.randperm(len(pool_x))
                for b in range(0, len(perm) - a.batch + 1, a.batch):
                    if step >= a.steps:
                        break
                    i = perm[b:b + a.batch]
                    logits = model(pool_x[i])
                    y = pool_y[i]
                    ce = F.cross_entropy(logits[y >= 0], y[y >= 0], reduction='sum')
                    oe = -(logits[y < 0].mean(1) - torch.logsumexp(logits[y < 0], 1)).sum()
                    loss = (ce + 0.5 * oe) / len(y)
                    opt.zero_grad()
                    loss.backward()
                    opt.step()
                    step += 1
        s_in, pred = scores(model, xte)
        row = {'outliers': name, 'accuracy': float((pred == yte).float().mean()), 'steps': a.steps, 'lr': a.lr, 'momentum': a.momentum}
        for d in ['MSP', 'Energy']:
            per = {k: auroc_fpr(s_in[d], scores(model, v)[0][d]) for k, v in ood.items()}
            row[d] = {k: [round(100 * v[0], 2), round(100 * v[1], 2)] for k, v in per.items()}
            row[d]['mean'] = [round(100 * float(np.mean([v[0] for v in per.values()])), 2), round(100 * float(np.mean([v[1] for v in per.values()])), 2)]
        print(json.dumps(row))


if __name__ == '__main__':
    main()
