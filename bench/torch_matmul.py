#!/usr/bin/env python3
"""PyTorch peer for bench/matmul.ts: the same problems, timed with CUDA events on the same GPU.

    node bench/matmul.ts --list-shapes > shapes.json
    python3 bench/torch_matmul.py shapes.json [--budget 0.3] > torch.jsonl

Two rows per problem: cuBLAS fp32 with TF32 off (the like-for-like peer: our kernels are fp32
FMA) and TF32 on (what PyTorch does by default for convolutions, shown for scale). Each row is a
JSON line with the fields of bench/harness.ts's Row, so both files concatenate into one table.
Every result is checked first against a float64 product on sampled rows (TF32 shows its ~1e-3
relative error there, which is why it is not the like-for-like number).
"""
import json
import sys

import torch
import torch.nn.functional as F

from torch_peer import time_run


def act(y, name):
    if name == 'relu':
        return F.relu(y)
    if name == 'gelu':
        return F.gelu(y)
    if name == 'gelu_tanh':
        return F.gelu(y, approximate='tanh')
    if name == 'leaky_relu':
        return F.leaky_relu(y, 0.01)
    if name == 'tanh':
        return torch.tanh(y)
    if name == 'sigmoid':
        return torch.sigmoid(y)
    return y


def main():
    args = sys.argv[1:]
    budget = 0.3
    if '--budget' in args:
        budget = float(args[args.index('--budget') + 1])
    with open(args[0]) as f:
        problems = json.load(f)
    dev = 'cuda' if torch.cuda.is_available() else 'cpu'
    name = torch.cuda.get_device_name() if dev == 'cuda' else 'cpu'
    print(json.dumps({'adapter': f'torch {torch.__version__} on {name}', 'bench': 'matmul-torch'}), flush=True)
    gen = torch.Generator(device=dev).manual_seed(0)
    for p in problems:
        M, N, K, B = p['M'], p['N'], p['K'], p['batch']
        bt = (B,) if B > 1 else ()
        a = torch.rand(bt + ((K, M) if p['transA'] else (M, K)), device=dev, generator=gen) * 2 - 1
        b = torch.rand(bt + ((N, K) if p['transB'] else (K, N)), device=dev, generator=gen) * 2 - 1
        bias = torch.rand(N, device=dev, generator=gen) * 2 - 1 if p['bias'] else None
        A = a.mT if p['transA'] else a
        Bm = b.mT if p['transB'] else b

        def run():
            y = torch.matmul(A, Bm)
            if bias is not None:
                y = y + bias
            return act(y, p['act'])

        # float64 reference on up to 64 rows of the first batch entry
        rows = torch.arange(0, M, max(1, M // 64), device=dev)
        A0 = A[0] if B > 1 else A
        B0 = Bm[0] if B > 1 else Bm
        ref = A0[rows].double() @ B0.double()
        if bias is not None:
            ref = ref + bias.double()
        ref = act(ref, p['act'])
        scale = max(K ** 0.5 / 3, 1.0)
        for tf32 in (False, True):
            torch.backends.cuda.matmul.allow_tf32 = tf32
            variant = 'torch-cublas-tf32' if tf32 else 'torch-cublas-fp32'
            if dev == 'cpu':
                variant = 'torch-cpu-tf32' if tf32 else 'torch-cpu'
            try:
                out = run()
                got = (out[0] if B > 1 else out)[rows].double()
                max_rel = ((got - ref).abs() / ref.abs().clamp(min=scale)).max().item()
                times = time_run(run, budget, max_reps=200)
                ms = times[len(times) // 2]
                row = {
                    'problem': p['name'], 'shape': p['shape'], 'variant': variant, 'peer': True, 'status': 'ok',
                    'ms': ms, 'msMin': times[0], 'msMax': times[-1], 'reps': len(times),
                    'gflops': p['flops'] / (ms * 1e6), 'gbps': p['bytes'] / (ms * 1e6), 'maxRelErr': max_rel,
                    'timing': 'timestamp' if dev == 'cuda' else 'wall',
                    'note': f'{name}, torch {torch.__version__}, allow_tf32={tf32}',
                }
            except Exception as e:  # out of memory on a small card, for instance
                row = {'problem': p['name'], 'shape': p['shape'], 'variant': variant, 'peer': True,
                       'status': 'failed', 'note': f'error: {e}'.split('\n')[0]}
            print(json.dumps(row), flush=True)
        del a, b, bias, A, Bm
        if dev == 'cuda':
            torch.cuda.empty_cache()


if __name__ == '__main__':
    main()
