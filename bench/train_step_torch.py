#!/usr/bin/python3
"""PyTorch peer of bench/train_step.ts: the same training steps (forward, backward, optimizer
update) on the CPU with Debian's python3-torch (1.13), the same thread count, random data of the
real shapes; with "device": "cuda" on the GPU instead (fp32, TF32 off: bench/gpu-run.sh). Reads one
JSON object on stdin (model, batch, steps, warmup, threads, device and the model's sizes),
runs `warmup` untimed steps (2 unless given), then `steps` timed steps (wall time, loss.item()
included), and prints {"ms": [...], "torch": version, "threads": n} as one JSON line; the vit row
adds "blas_gflops" (one [197, 768] x [768, 3072] product, ViT-B/16's MLP at batch 1) and "blas"
(torch's BLAS_INFO: 'generic' is the reference BLAS of Debian's CPU torch, 0.1-4 GFLOP/s here).

The models come from the fixture scripts that produce the engine's goldens (scripts/fixtures/:
WideResNet, GRUClassifier, TransformerModel; BigGAN-PyTorch's Generator/Discriminator), adapted
where the fmnist configuration needs it (1 input channel and global pooling for WRN-10-1; the
7x7 -> 28x28 grey BigGAN arch). The imagenet rows (issue 16, item 5): torchvision's vit_b_16 and
resnet101 with random weights (the fixture modules of scripts/fixtures/torch_vit_resnet.py, the same
module tree, where torchvision is not installed), a fine-tuning step with plain SGD; biggan128 is
bench/biggan_deep_torch.py's BigGAN-deep-128 (eval, power-iterated random weights) sampling one
batch at the given z std and truncation, no grad, the images copied to the host.
"""
import json
import math
import os
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, '..', 'scripts', 'fixtures'))
import torch_models as tm  # noqa: E402

DEV = torch.device('cpu')


def classifier_step(m, opt, x, y):
    """One training step of a classifier on fixed data: forward, cross-entropy, backward, update."""
    def step():
        opt.zero_grad()
        loss = F.cross_entropy(m(x), y)
        loss.backward()
        opt.step()
        return loss.item()
    return step


def wrn(cfg):
    m = tm.WideResNet(cfg['depth'], 10, widen_factor=cfg['widen'], dropRate=cfg['drop'])
    if cfg['channels'] != 3:
        m.conv1 = nn.Conv2d(cfg['channels'], 16, kernel_size=3, stride=1, padding=1, bias=False)
    pool_global = cfg['size'] != 32

    def features(x):
        out = m.block3(m.block2(m.block1(m.conv1(x))))
        out = m.relu(m.bn1(out))
        out = F.adaptive_avg_pool2d(out, 1) if pool_global else F.avg_pool2d(out, 8)
        return out.view(-1, m.nChannels)
    m.features = features
    m.to(DEV)
    m.train()
    opt = torch.optim.SGD(m.parameters(), lr=cfg['lr'], momentum=0.9, nesterov=True, weight_decay=5e-4)
    B, C, H = cfg['batch'], cfg['channels'], cfg['size']
    x = (torch.rand(B, C, H, H) * 2 - 1).to(DEV)
    y = torch.randint(0, 10, (B,)).to(DEV)

    return classifier_step(m, opt, x, y)


def gru(cfg):
    m = tm.GRUClassifier(20, cfg['vocab']).to(DEV)
    m.train()
    opt = torch.optim.Adam(m.parameters(), lr=1e-3)
    ids = torch.randint(0, cfg['vocab'], (cfg['batch'], cfg['T'])).to(DEV)
    y = torch.randint(0, 20, (cfg['batch'],)).to(DEV)
    return classifier_step(m, opt, ids, y)


def lm(cfg):
    V, S, B = cfg['vocab'], cfg['S'], cfg['batch']
    m = tm.TransformerModel(V, 200, 2, 200, 2, 0.2).to(DEV)
    m.train()
    src = torch.randint(0, V, (S, B)).to(DEV)
    tgt = torch.randint(0, V, (S * B,)).to(DEV)
    lr = 20.0

    def step():
        m.zero_grad()
        out = m(src)
        loss = F.nll_loss(out.view(-1, V), tgt)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(m.parameters(), 0.25)
        for p in m.parameters():
            p.data.add_(p.grad, alpha=-lr)
        return loss.item()
    return step


def biggan(cfg):
    import torch_biggan as tb
    ch, B, n_d = cfg['ch'], cfg['batch'], cfg['dSteps']
    # the fmnist arch (src/models/biggan.ts, bottomWidth 7, 2 upsamples, 1 output channel): G
    # 4ch 7x7 -> 14 -> 28; D (4 DBlocks as the 32x32 arch: down, down, -, -) on 28x28 grey
    g_arch = {'in_channels': [ch * 4, ch * 4], 'out_channels': [ch * 4, ch * 4], 'upsample': [True, True],
              'resolution': [14, 28], 'attention': {14: False, 28: False}}
    d_arch = {'in_channels': [1] + [ch * 4] * 3, 'out_channels': [ch * 4] * 4, 'downsample': [True, True, False, False],
              'resolution': [14, 7, 7, 7], 'attention': {7: False, 14: False, 28: False}}
    tb.G_arch = lambda ch_=64, attention='64': {28: g_arch}
    tb.D_arch = lambda ch_=64, attention='64': {28: d_arch}
    G = tb.Generator(G_ch=ch, dim_z=128, bottom_width=7, resolution=28, n_classes=10)
    # one output channel
    G.output_layer[2] = G.which_conv(ch * 4, 1)
    D = tb.Discriminator(D_ch=ch, resolution=28, n_classes=10)
    G.to(DEV)
    D.to(DEV)
    optG = torch.optim.Adam(G.parameters(), lr=5e-4, betas=(0.0, 0.999), eps=1e-8)
    optD = torch.optim.Adam(D.parameters(), lr=5e-4, betas=(0.0, 0.999), eps=1e-8)
    x = (torch.rand(B * n_d, 1, 28, 28) * 2 - 1).to(DEV)
    y = torch.randint(0, 10, (B * n_d,)).to(DEV)

    def step():
        G.train()
        D.train()
        for s in range(n_d):
            optD.zero_grad()
            z = torch.randn(B, 128, device=DEV)
            yf = torch.randint(0, 10, (B,), device=DEV)
            with torch.no_grad():
                g = G(z, yf)
            d = D(torch.cat([g, x[s * B:(s + 1) * B]]), torch.cat([yf, y[s * B:(s + 1) * B]]))
            d_fake, d_real = d[:B], d[B:]
            loss_d = torch.mean(F.relu(1. - d_real)) + torch.mean(F.relu(1. + d_fake))
            loss_d.backward()
            optD.step()
        optG.zero_grad()
        z = torch.randn(B, 128, device=DEV)
        yf = torch.randint(0, 10, (B,), device=DEV)
        loss_g = -torch.mean(D(G(z, yf), yf))
        loss_g.backward()
        optG.step()
        return loss_g.item()
    return step


def imagenet_classifier(cfg):
    try:
        import torchvision.models as tvm
        m = tvm.vit_b_16(weights=None) if cfg['model'] == 'vit' else tvm.resnet101(weights=None)
    except ImportError:
        import torch_vit_resnet as vr
        m = vr.VisionTransformer(224, 16, 12, 12, 768, 3072) if cfg['model'] == 'vit' else vr.ResNet(vr.Bottleneck, [3, 4, 23, 3])
    m.to(DEV)
    m.train()
    opt = torch.optim.SGD(m.parameters(), lr=cfg['lr'])
    B = cfg['batch']
    x = (torch.rand(B, 3, 224, 224) * 2 - 1).to(DEV)
    y = torch.randint(0, 1000, (B,)).to(DEV)
    return classifier_step(m, opt, x, y)


def biggan128(cfg):
    sys.path.insert(0, HERE)
    from biggan_deep_torch import build
    G = build('128').to(DEV)
    B = cfg['batch']
    y = F.one_hot(torch.randint(0, 1000, (B,)), 1000).float().to(DEV)

    def step():
        with torch.no_grad():
            z = torch.randn(B, 128, device=DEV) * cfg['std']
            return G(z, y, float(cfg['truncation'])).cpu()
    return step


def blas_probe():
    """GFLOP/s of one [197, 768] x [768, 3072] product, and torch's BLAS_INFO."""
    a, w = torch.randn(197, 768, device=DEV), torch.randn(3072, 768, device=DEV)
    t0 = time.perf_counter()
    (a @ w.t()).sum().item()
    gflops = 2 * 197 * 768 * 3072 / (time.perf_counter() - t0) / 1e9
    info = [part.split('=', 1)[1] for part in torch.__config__.show().replace(',', '\n').split() if part.startswith('BLAS_INFO=')]
    return gflops, info[0] if info else '?'


def main():
    global DEV
    cfg = json.loads(sys.stdin.read())
    torch.set_num_threads(int(cfg['threads']))
    DEV = torch.device(cfg.get('device', 'cpu'))
    cuda = DEV.type == 'cuda'
    if cuda:
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False
    torch.manual_seed(19)
    step = {'wrn': wrn, 'gru': gru, 'lm': lm, 'biggan': biggan, 'vit': imagenet_classifier, 'resnet101': imagenet_classifier,
            'biggan128': biggan128}[cfg['model']](cfg)
    for _ in range(int(cfg.get('warmup', 2))):
        step()
    ms = []
    for _ in range(int(cfg['steps'])):
        t0 = time.perf_counter()
        step()
        ms.append((time.perf_counter() - t0) * 1e3)
    out = {'ms': ms, 'torch': torch.__version__, 'threads': torch.get_num_threads(), 'device': torch.cuda.get_device_name() if cuda else 'cpu'}
    if cfg['model'] == 'vit':
        out['blas_gflops'], out['blas'] = blas_probe()
    if cfg.get('profile'):
        # one more step under the profiler: self time per op (the GPU's on cuda), the largest first
        acts = [torch.profiler.ProfilerActivity.CPU] + ([torch.profiler.ProfilerActivity.CUDA] if cuda else [])
        with torch.profiler.profile(activities=acts) as prof:
            step()
        def self_us(e):
            return e.self_cuda_time_total if cuda else e.self_cpu_time_total
        ops = sorted(prof.key_averages(), key=self_us, reverse=True)
        out['ops'] = [{'label': e.key, 'count': e.count, 'ms': self_us(e) / 1e3} for e in ops if self_us(e) > 0]
    print(json.dumps(out))


if __name__ == '__main__':
    main()
