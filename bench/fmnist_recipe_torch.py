#!/usr/bin/env python3
"""Test accuracy of the fmnist baseline recipe candidates in PyTorch (Debian's python3-torch, CPU).

The fmnist experiment must reach >= 90% test accuracy within a ~20-minute CPU budget on our
engine, where one WRN-10-1 step of 128 costs ~0.8 s on lavapipe; PyTorch runs the same recipe 5x
faster, so it picks among recipes quickly. The network is wrn.py's WideResNet (pre-activation
blocks, no bias, its init) with global average pooling over the 7x7 maps, as
src/models/wideresnet.ts builds it for 1x28x28; data and normalisation as the experiment
(mean 0.286, std 0.353, no augmentation); SGD Nesterov 0.9, wd 5e-4, per-step cosine to ~0.

  python3 bench/fmnist_recipe_torch.py --depth 10 --widen 1 --epochs 1 --batch 128 --lr 0.1

Prints one JSON line: the recipe, steps, seconds and test accuracy. bench/NOTES.md records runs.
"""
import argparse
import gzip
import json
import math
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

ROOT = '/usr/share/datasets/fashion-mnist'


def idx(path):
    with gzip.open(path, 'rb') as f:
        data = f.read()
    dims = data[3]
    shape = [int.from_bytes(data[4 + 4 * i:8 + 4 * i], 'big') for i in range(dims)]
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * dims).reshape(shape)


class Block(nn.Module):
    def __init__(self, cin, cout, stride):
        super().__init__()
        self.bn1, self.conv1 = nn.BatchNorm2d(cin), nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn2, self.conv2 = nn.BatchNorm2d(cout), nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.equal = cin == cout
        self.short = None if self.equal else nn.Conv2d(cin, cout, 1, stride, 0, bias=False)

    def forward(self, x):
        o = F.relu(self.bn1(x))
        y = self.conv2(F.relu(self.bn2(self.conv1(o))))
        return y + (x if self.equal else self.short(o))


class WRN(nn.Module):
    def __init__(self, depth, k, classes=10):
        super().__init__()
        n = (depth - 4) // 6
        w = [16, 16 * k, 32 * k, 64 * k]
        self.conv1 = nn.Conv2d(1, 16, 3, 1, 1, bias=False)
        layers = []
        for s, stride in enumerate([1, 2, 2]):
            for i in range(n):
                layers.append(Block(w[s] if i == 0 else w[s + 1], w[s + 1], stride if i == 0 else 1))
        self.blocks = nn.Sequential(*layers)
        self.bn = nn.BatchNorm2d(w[3])
        self.fc = nn.Linear(w[3], classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.normal_(m.weight, 0, math.sqrt(2.0 / (m.kernel_size[0] * m.kernel_size[1] * m.out_channels)))
            elif isinstance(m, nn.Linear):
                nn.init.zeros_(m.bias)

    def forward(self, x):
        h = F.relu(self.bn(self.blocks(self.conv1(x))))
        return self.fc(h.mean((2, 3)))


def main():
    p = argparse.ArgumentParser()
    p.add_argument('--depth', type=int, default=10)
    p.add_argument('--widen', type=int, default=1)
    p.add_argument('--epochs', type=float, default=1)
    p.add_argument('--batch', type=int, default=128)
    p.add_argument('--lr', type=float, default=0.1)
    p.add_argument('--seed', type=int, default=0)
    a = p.parse_args()
    torch.manual_seed(a.seed)
    norm = lambda x: (torch.from_numpy(x.astype(np.float32) / 255.0) - 0.286) / 0.353
    xtr, ytr = norm(idx(f'{ROOT}/train-images-idx3-ubyte.gz'))[:, None], torch.from_numpy(idx(f'{ROOT}/train-labels-idx1-ubyte.gz').astype(np.int64))
    xte, yte = norm(idx(f'{ROOT}/t10k-images-idx3-ubyte.gz'))[:, None], torch.from_numpy(idx(f'{ROOT}/t10k-labels-idx1-ubyte.gz').astype(np.int64))
    model = WRN(a.depth, a.widen)
    opt = torch.optim.SGD(model.parameters(), lr=a.lr, momentum=0.9, nesterov=True, weight_decay=5e-4)
    per_epoch = len(xtr) // a.batch + (len(xtr) % a.batch > 0)
    total = int(math.ceil(a.epochs * per_epoch))
    lr_min = 1e-6 / a.lr
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: lr_min + (1 - lr_min) * 0.5 * (1 + math.cos(s / total * math.pi)))
    t0 = time.time()
    step = 0
    model.train()
    while step < total:
        perm = torch.randperm(len(xtr))
        for b in range(per_epoch):
            if step >= total:
                break
            i = perm[b * a.batch:(b + 1) * a.batch]
            loss = F.cross_entropy(model(xtr[i]), ytr[i])
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            step += 1
    secs = time.time() - t0
    model.eval()
    with torch.no_grad():
        correct = sum((model(xte[i:i + 1000]).argmax(1) == yte[i:i + 1000]).sum().item() for i in range(0, len(xte), 1000))
    print(json.dumps({'depth': a.depth, 'widen': a.widen, 'epochs': a.epochs, 'batch': a.batch, 'lr': a.lr, 'seed': a.seed,
                      'steps': total, 'seconds': round(secs, 1), 'accuracy': correct / len(xte), 'torch': torch.__version__, 'threads': torch.get_num_threads()}))


if __name__ == '__main__':
    main()
