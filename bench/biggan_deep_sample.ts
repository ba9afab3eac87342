/**
 * BigGAN-deep sampling (issue 16: the pretrained generator of the imagenet experiment) on the
 * engine beside PyTorch on the CPU (Debian's /usr/bin/python3, torch 1.13, the peer
 * bench/biggan_deep_torch.py over the same architecture, the same thread count), back to back.
 *
 *   node bench/biggan_deep_sample.ts [--json] [--config=biggan-deep-128] [--batches=1,8] [--steps=2]
 *                                    [--threads=N] [--no-torch] [--no-recompute]
 *
 * Random weights with the converter's power iteration (settleSpectralNorms), evaluation mode,
 * z ~ N(0, 2^2), truncation 1: an image costs what a pretrained one does. Per batch size: the
 * forward with the spectral-norm weights frozen (freezeSpectralNorms, what the experiment samples
 * with) and, unless --no-recompute, recomputed per forward as torch does. Outputs are checked
 * (finite, in [-1, 1], not constant) before anything is timed; one warm-up, then --steps timed
 * runs, each from its first op until the images are read back; medians.
 */
import { spawnSync } from 'node:child_process';
import { availableParallelism } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { init, noGrad, randn, scope, tensor, type Tensor } from '../src/engine/index.ts';
import { BigGANDeep } from '../src/models/biggan-deep.ts';
import { parseArgs, median } from './harness.ts';

const { flags, values } = parseArgs(process.argv.slice(2));
const json = flags.has('json');
const out = (s: string) => (json ? process.stderr : process.stdout).write(s + '\n');
const config = values.get('config') ?? 'biggan-deep-128';
const batches = (values.get('batches') ?? '1,8').split(',').map(Number);
const steps = Number(values.get('steps') ?? 2);
const threads = Number(values.get('threads') ?? availableParallelism());

const { device } = await init();
out(device.describe());
const G = new BigGANDeep(config);
G.settleSpectralNorms();
G.eval();

async function forward(n: number): Promise<Float32Array> {
  const img: Tensor = noGrad(() => scope(() => G.forward(randn([n, G.dimZ], { seed: 1, std: 2 }), tensor(Int32Array.from({ length: n }, (_, i) => (i * 97) % G.numClasses), [n], 'i32'), 1)));
  const d = (await img.data()) as Float32Array;
  img.dispose();
  return d;
}

const rows: Record<string, unknown>[] = [];
for (const frozen of flags.has('no-recompute') ? [true] : [true, false]) {
  if (frozen) G.freezeSpectralNorms();
  else G.thawSpectralNorms();
  for (const n of batches) {
    const first = await forward(n); // warm-up and validation
    const bad = first.findIndex((v) => !Number.isFinite(v) || Math.abs(v) > 1);
    if (bad >= 0) throw new Error(`${config} batch ${n}: output ${bad} is ${first[bad]}`);
    if (Math.max(...first.subarray(0, 4096)) - Math.min(...first.subarray(0, 4096)) < 0.01) throw new Error(`${config} batch ${n}: constant output`);
    const times: number[] = [];
    for (let s = 0; s < steps; s++) {
      const t = performance.now();
      await forward(n);
      times.push(performance.now() - t);
    }
    const ms = median(times);
    const row = { config, batch: n, spectralNorm: frozen ? 'frozen' : 'per-forward', ms, imagesPerSecond: n / (ms / 1000) };
    rows.push(row);
    out(`${config} batch ${n} (${row.spectralNorm} W/sigma): ${(ms / 1000).toFixed(2)} s, ${row.imagesPerSecond.toFixed(3)} images/s`);
  }
}
if (!flags.has('no-torch')) {
  const script = join(dirname(fileURLToPath(import.meta.url)), 'biggan_deep_torch.py');
  const r = spawnSync('/usr/bin/python3', [script, '--config', config.replace('biggan-deep-', ''), '--batches', batches.join(','), '--steps', String(steps), '--threads', String(threads)], { encoding: 'utf8' });
  if (r.status !== 0) out(`torch peer failed: ${r.stderr.split('\n').slice(-3).join(' ')}`);
  for (const line of r.stdout.split('\n').filter(Boolean)) {
    const p = JSON.parse(line) as { batch: number; ms: number; images_per_s: number };
    const ours = rows.find((x) => x.batch === p.batch && x.spectralNorm === 'frozen') as { ms: number } | undefined;
    out(`torch ${config} batch ${p.batch}: ${(p.ms / 1000).toFixed(2)} s, ${p.images_per_s.toFixed(3)} images/s; ours / torch speed ${ours ? (p.ms / ours.ms).toFixed(2) : '-'}x`);
    rows.push({ config, batch: p.batch, peer: 'torch', ms: p.ms, imagesPerSecond: p.images_per_s, threads });
  }
}
if (json) process.stdout.write(rows.map((r) => JSON.stringify(r)).join('\n') + '\n');
G.dispose();
