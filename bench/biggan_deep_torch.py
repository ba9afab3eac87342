"""PyTorch peer of bench/biggan_deep_sample.ts: BigGAN-deep sampling (eval forward, no grad) on the
CPU with Debian's torch 1.13, the same architecture as the engine's (the re-implementation of
huggingface/pytorch-pretrained-BigGAN in scripts/fixtures/torch_biggan_deep.py), random weights
with the converter's power iteration, float32. One JSON line per batch size:
{"batch": B, "ms": median, "images_per_s": ...}.

  /usr/bin/python3 bench/biggan_deep_torch.py --config 128 --batches 1,8 --steps 2 --threads 2
"""
import argparse
import json
import os
import sys
import time

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'scripts', 'fixtures'))
from torch_biggan_deep import BigGAN  # noqa: E402

LAYERS = {
    '128': [(False, 16, 16), (True, 16, 16), (False, 16, 16), (True, 16, 8), (False, 8, 8), (True, 8, 4), (False, 4, 4), (True, 4, 2), (False, 2, 2), (True, 2, 1)],
    '256': [(False, 16, 16), (True, 16, 16), (False, 16, 16), (True, 16, 8), (False, 8, 8), (True, 8, 8), (False, 8, 8), (True, 8, 4), (False, 4, 4), (True, 4, 2), (False, 2, 2), (True, 2, 1)],
}


def build(config='128'):
    """BigGAN-deep of `config` ('128', '256') with random weights after the converter's power
    iteration, in eval mode (also bench/train_step_torch.py's biggan128 peer)."""
    c = dict(z_dim=128, channel_width=128, num_classes=1000, layers=LAYERS[config], attention_layer_position=8, eps=1e-4, n_stats=51)
    model = BigGAN(c)
    with torch.no_grad():
        for m in model.modules():
            if hasattr(m, 'weight_v'):
                w = m.weight_orig.reshape(m.weight_orig.shape[0], -1)
                v = F.normalize(torch.mv(w.t(), m.weight_u), dim=0, eps=c['eps'])
                m.weight_v.copy_(v)
                m.weight_u.copy_(F.normalize(torch.mv(w, v), dim=0, eps=c['eps']))
    model.eval()
    return model


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--config', default='128')
    ap.add_argument('--batches', default='1,8')
    ap.add_argument('--steps', type=int, default=2)
    ap.add_argument('--threads', type=int, default=os.cpu_count())
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    model = build(a.config)
    for b in [int(x) for x in a.batches.split(',')]:
        z = 2 * torch.randn(b, 128)
        y = F.one_hot(torch.arange(b) * 97 % 1000, 1000).float()
        times = []
        with torch.no_grad():
            for i in range(a.steps + 1):
                t = time.perf_counter()
                out = model(z, y, 1.0)
                dt = time.perf_counter() - t
                if i > 0:
                    times.append(dt)
        assert torch.isfinite(out).all()
        times.sort()
        ms = 1000 * times[len(times) // 2]
        print(json.dumps({'batch': b, 'ms': ms, 'images_per_s': b / (ms / 1000), 'threads': a.threads, 'torch': torch.__version__}), flush=True)


if __name__ == '__main__':
    main()
