"""The PyTorch peer's timing loop, shared by bench/attention.ts, bench/gru.ts, bench/conv2d.ts
(through harness.ts's runTorchPeer) and bench/torch_matmul.py, so every peer row is timed the
same way: 3 warm-up runs, a sync, then repetitions until the time budget (at least 3, at most
max_reps), each timed with CUDA events on 'cuda' or perf_counter on 'cpu'; median, min, max.

A bench's own snippet only sets up its family's tensors and a `run()` closure per problem:

    from torch_peer import torch, dev, problems, time_problem
    for p in problems():
        ...
        def run(): ...
        time_problem(p, run)
"""
import json
import sys
import time

import torch

dev = 'cuda' if torch.cuda.is_available() else 'cpu'


def problems():
    """The problems the bench sent as one JSON list on stdin."""
    return json.loads(sys.stdin.read())


def sync():
    if dev == 'cuda':
        torch.cuda.synchronize()


def device_name():
    return torch.cuda.get_device_name() if dev == 'cuda' else 'cpu'


def time_run(run, budget, max_reps=100):
    """Warm-up, then repetitions of run() until `budget` seconds (at least 3, at most max_reps);
    returns the sorted times in ms."""
    for _ in range(3):
        run()
    sync()
    times = []
    t_end = time.perf_counter() + budget
    while len(times) < 3 or (time.perf_counter() < t_end and len(times) < max_reps):
        if dev == 'cuda':
            a = torch.cuda.Event(enable_timing=True)
            b = torch.cuda.Event(enable_timing=True)
            a.record()
            run()
            b.record()
            b.synchronize()
            times.append(a.elapsed_time(b))
        else:
            t0 = time.perf_counter()
            run()
            times.append((time.perf_counter() - t0) * 1e3)
    times.sort()
    return times


def time_problem(p, run):
    """Times run() for problem p (its 'name' and 'budget') and prints the JSON line that
    harness.ts's runTorchPeer reads."""
    times = time_run(run, p['budget'])
    print(json.dumps({'name': p['name'], 'ms': times[len(times) // 2], 'min': times[0], 'max': times[-1],
                      'reps': len(times), 'device': device_name(), 'torch': torch.__version__}), flush=True)
