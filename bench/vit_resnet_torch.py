#!/usr/bin/python3
"""PyTorch peer of bench/vit_resnet.ts: ViT-B/16 and ResNet-101 (torchvision 0.14's modules as
scripts/fixtures/torch_vit_resnet.py writes them out; Debian has no torchvision) on the CPU with
Debian's python3-torch 1.13 in float32, the same thread count; or on the lent GPU ("device":
"cuda", fp32 with TF32 off, every run ends in .item(), a synchronisation). Reads one JSON object on
stdin ({case, batch, steps, warmup, threads, device}), runs `warmup` untimed runs, then `steps` timed runs, and
prints {"ms": [...], "torch": version, "threads": n, "blas_gflops": g} as one JSON line, where g is
the rate of one [197, 768] x [768, 3072] product (ViT-B/16's MLP at batch 1) through torch's BLAS.

Cases: vit_fwd (eval, no grad), vit_train (cross-entropy, backward, plain SGD lr 0.001 as the
paper's fine-tuning), resnet101_fwd (eval, no grad), resnet101_train (as vit_train).
"""
import json
import os
import sys
import time

import torch
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, '..', 'scripts', 'fixtures'))
import torch_vit_resnet as vr  # noqa: E402


def main():
    cfg = json.loads(sys.stdin.read())
    torch.set_num_threads(int(cfg['threads']))
    torch.manual_seed(16)
    dev = torch.device(cfg.get('device', 'cpu'))
    if dev.type == 'cuda':
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False
    B = int(cfg['batch'])
    x = (torch.rand(B, 3, 224, 224) * 2 - 1).to(dev)
    y = torch.randint(0, 1000, (B,)).to(dev)
    case = cfg['case']
    if case.startswith('vit'):
        m = vr.VisionTransformer(224, 16, 12, 12, 768, 3072)
    else:
        m = vr.ResNet(vr.Bottleneck, [3, 4, 23, 3])
    m = m.to(dev)
    if case.endswith('_fwd'):
        m.eval()

        def run():
            with torch.no_grad():
                m(x).sum().item()
    else:
        m.train()
        opt = torch.optim.SGD(m.parameters(), lr=0.001)

        def run():
            opt.zero_grad()
            loss = F.cross_entropy(m(x), y)
            loss.backward()
            opt.step()
            loss.item()
    for _ in range(int(cfg.get('warmup', 1))):
        run()
    a, w = torch.randn(197, 768, device=dev), torch.randn(3072, 768, device=dev)
    t0 = time.perf_counter()
    (a @ w.t()).sum().item()
    blas = 2 * 197 * 768 * 3072 / (time.perf_counter() - t0) / 1e9
    ms = []
    for _ in range(int(cfg['steps'])):
        t0 = time.perf_counter()
        run()
        ms.append((time.perf_counter() - t0) * 1e3)
    print(json.dumps({'ms': ms, 'torch': torch.__version__, 'threads': torch.get_num_threads(), 'blas_gflops': blas}))


if __name__ == '__main__':
    main()
