/**
 * Soak test (issue 20, item 5; not in CI): many training steps of a small classifier through the
 * real training loop (src/goe/train/loop.ts: data loader with workers, divergence guard, atomic
 * checkpoints kept two at a time), sampling the process's resident memory and the engine's GPU
 * object counts every K steps. After a warm-up every GPU count must stay exactly where it was
 * (live buffers, tensors, storages, cached bind groups, staging buffers; nothing created), and the
 * RSS must not grow by more than --rss-slack MB (default 64) from the first sample after warm-up
 * to the median of the last quarter. Prints a table and PASS / FAIL (exit 1).
 *
 *   node bench/soak.ts [--steps 10000] [--every 100] [--warmup 500] [--minutes M] [--batch 16]
 *                      [--size 16] [--checkpoint-every 500] [--workers 1] [--rss-slack 64] [--progress]
 *
 * --minutes stops early (the table covers the steps done). --progress prints each sample as it is taken. Numbers in bench/NOTES.md, "Soak".
 */
import { parseArgs } from 'node:util';
import { mkdtempSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { LambdaLR, SGD, init, memoryStats, runtime } from '../src/engine/index.ts';
import { CIFAR_MEAN, CIFAR_STD, DataLoader } from '../src/data/index.ts';
import { WideResNet } from '../src/models/index.ts';
import { trainLoop } from '../src/goe/train/loop.ts';
import { syntheticImages } from '../src/goe/experiments/synthetic.ts';

const { values: a } = parseArgs({
  options: {
    steps: { type: 'string', default: '10000' },
    every: { type: 'string', default: '100' },
    warmup: { type: 'string', default: '500' },
    minutes: { type: 'string' },
    batch: { type: 'string', default: '16' },
    size: { type: 'string', default: '16' },
    'checkpoint-every': { type: 'string', default: '500' },
    workers: { type: 'string', default: '1' },
    'rss-slack': { type: 'string', default: '64' },
    progress: { type: 'boolean', default: false },
  },
});
const num = (k: keyof typeof a): number => {
  const v = Number(a[k]);
  if (!Number.isFinite(v) || v < 0) throw new Error(`--${k} takes a number >= 0, got ${String(a[k])}`);
  return v;
};
const steps = num('steps');
const every = Math.max(1, num('every'));
const warmup = num('warmup');
const progress = a.progress === true;
const deadline = a.minutes !== undefined ? performance.now() + num('minutes') * 60_000 : Infinity;

const rt = await init();
const dev = rt.device;
console.log(`soak: ${dev.describe()}`);
console.log(`WRN-10-1 on 3x${num('size')}x${num('size')} synthetic images, batch ${num('batch')}, SGD momentum + per-step cosine, checkpoint every ${num('checkpoint-every')} steps, up to ${steps} steps${Number.isFinite(deadline) ? ` or ${num('minutes')} min` : ''}`);

interface Sample {
  step: number;
  seconds: number;
  rssMB: number;
  heapMB: number;
  tensors: number;
  storages: number;
  buffersLive: number;
  buffersCreated: number;
  bindGroupsCreated: number;
  bindGroupsCached: number;
  staging: number;
}
const t0 = performance.now();
function sample(step: number): Sample {
  const p = dev.pool.stats();
  const bg = dev.bindGroupStats();
  const m = process.memoryUsage();
  return {
    step, seconds: (performance.now() - t0) / 1000, rssMB: m.rss / 2 ** 20, heapMB: m.heapUsed / 2 ** 20,
    tensors: memoryStats().tensors, storages: memoryStats().storages, buffersLive: p.live, buffersCreated: p.created,
    bindGroupsCreated: bg.created, bindGroupsCached: bg.cached, staging: dev.staging.count,
  };
}

const fmt = (s: Sample) =>
  `${String(s.step).padStart(6)} ${s.seconds.toFixed(0).padStart(6)} ${s.rssMB.toFixed(1).padStart(8)} ${s.heapMB.toFixed(1).padStart(7)} ${String(s.tensors).padStart(7)} ${String(s.storages).padStart(8)} ` +
  `${String(s.buffersLive).padStart(6)} ${String(s.buffersCreated).padStart(8)} ${String(s.bindGroupsCreated).padStart(6)} ${String(s.bindGroupsCached).padStart(6)} ${String(s.staging).padStart(7)}`;

const dir = mkdtempSync(join(tmpdir(), 'goe-soak-'));
const source = syntheticImages({ classes: 10, n: 512, seed: 1, size: num('size') });
const loader = new DataLoader({ source, batchSize: num('batch'), seed: 2, workers: num('workers'), transform: { mean: CIFAR_MEAN, std: CIFAR_STD, randomCrop: { size: num('size'), padding: 2 }, hflip: true } });
const model = new WideResNet(10, { depth: 10, widenFactor: 1, dropRate: 0.3, pooling: 'global' });
const opt = new SGD(model.parameters(), { lr: 0.05, momentum: 0.9, nesterov: true, weightDecay: 5e-4 });
const sched = new LambdaLR(opt, (s: number) => 0.5 * (1 + Math.cos((s / steps) * Math.PI)));
const samples: Sample[] = [sample(0)];
class Stop extends Error {}
let done = 0;
try {
  await trainLoop({
    name: 'soak', model, loader, epochs: steps / loader.numBatches, optimizer: opt, scheduler: sched, schedulerUnit: 'step', loss: 'ce',
    logEvery: every, checkpoint: join(dir, 'checkpoint.safetensors'), checkpointEvery: num('checkpoint-every'), log: () => {},
    onStep: (step) => {
      done = step;
      if (step % every === 0) {
        samples.push(sample(step));
        if (progress) console.log(`progress ${fmt(samples.at(-1)!)}`);
      }
      if (performance.now() > deadline) throw new Stop();
    },
  });
} catch (e) {
  if (!(e instanceof Stop)) throw e;
} finally {
  await loader.close();
  opt.dispose();
  model.dispose();
  rmSync(dir, { recursive: true, force: true });
}

console.log('  step      s   RSS MB heap MB tensors storages bufLive bufMade bgMade bgCache staging');
const shown = samples.length <= 24 ? samples : samples.filter((_, i) => i % Math.ceil(samples.length / 20) === 0 || i === samples.length - 1);
for (const s of shown) console.log(fmt(s));

const after = samples.filter((s) => s.step >= warmup);
const ms = samples.length > 1 ? ((samples.at(-1)!.seconds - samples[1]!.seconds) * 1000) / Math.max(1, samples.at(-1)!.step - samples[1]!.step) : NaN;
console.log(`${done} steps in ${((performance.now() - t0) / 1000).toFixed(0)} s (${ms.toFixed(0)} ms/step)`);
if (after.length < 4) {
  console.log(`FAIL: only ${after.length} samples after the ${warmup}-step warm-up; run longer or lower --warmup`);
  process.exit(1);
}
const ref = after[0]!;
const tail = after.slice(Math.floor((after.length * 3) / 4)).map((s) => s.rssMB).sort((x, y) => x - y);
const rssGrowth = tail[Math.floor(tail.length / 2)]! - ref.rssMB;
const counts = ['tensors', 'storages', 'buffersLive', 'buffersCreated', 'bindGroupsCreated', 'bindGroupsCached', 'staging'] as const;
const grew = counts.filter((k) => after.some((s) => s[k] !== ref[k]));
const slope = ((after.at(-1)!.rssMB - ref.rssMB) / Math.max(1, after.at(-1)!.step - ref.step)) * 1000;
console.log(`after warm-up (step ${ref.step} .. ${after.at(-1)!.step}, ${after.length} samples): RSS ${ref.rssMB.toFixed(1)} -> median of last quarter ${tail[Math.floor(tail.length / 2)]!.toFixed(1)} MB (${rssGrowth >= 0 ? '+' : ''}${rssGrowth.toFixed(1)} MB; end to end ${slope.toFixed(2)} MB per 1000 steps); GPU counts ${grew.length === 0 ? 'flat' : `changed: ${grew.join(', ')}`}`);
const ok = grew.length === 0 && rssGrowth <= num('rss-slack');
console.log(ok ? 'PASS' : 'FAIL');
process.exit(ok ? 0 : 1);
