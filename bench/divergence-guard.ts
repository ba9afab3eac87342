/**
 * The divergence guard's per-step cost in the classifier loop: a small WRN trained with the guard
 * on and off, alternately, from the same seed (same losses); prints dispatches per step and the
 * wall time per step (12 steps a run, one loss readback and the end check). The guard adds two
 * dispatches a step (the loss, the gradient arena) and, at the log step and the end, a scan of the
 * state (one dispatch per buffer) and an 8-byte read. Then the per-step scans alone, repeated
 * on one step's loss and gradients (the step's own noise left out).
 *
 *   node bench/divergence-guard.ts [depth] [widen] [batch] [reps]
 */
import { DivergenceGuard, backward, crossEntropy, init, manualSeed, runtime, scope, SGD, tensor } from '../src/engine/index.ts';
import { DataLoader } from '../src/data/index.ts';
import { WideResNet } from '../src/models/index.ts';
import { trainLoop } from '../src/goe/train/loop.ts';
import { syntheticImages } from '../src/goe/experiments/synthetic.ts';

const [depth = 16, widen = 2, batch = 32, reps = 3] = process.argv.slice(2).map(Number);
const rt = await init({ adapter: process.env.GOE_ADAPTER ?? 'auto' });
const steps = 12;
const source = syntheticImages({ classes: 10, n: steps * batch, seed: 1 });

async function run(divergenceGuard: boolean): Promise<{ ms: number; dispatches: number; last: number }> {
  manualSeed(0);
  const model = new WideResNet(10, { depth, widenFactor: widen });
  const opt = new SGD(model.parameters(), { lr: 0.05, momentum: 0.9, weightDecay: 5e-4 });
  const loader = new DataLoader({ source, batchSize: batch, seed: 2, workers: 0 });
  // one warm-up step builds the pipelines and bind groups outside the timed run
  await trainLoop({ name: 'warm', model, loader, epochs: 1, optimizer: opt, loss: 'ce', logEvery: 1, log: () => {}, stopAfter: 1, divergenceGuard });
  const d0 = runtime().device.stats.dispatches;
  const t0 = performance.now();
  const r = await trainLoop({ name: 'bench', model, loader, epochs: 1, optimizer: opt, loss: 'ce', logEvery: steps, log: () => {}, divergenceGuard });
  const ms = (performance.now() - t0) / steps;
  const dispatches = (runtime().device.stats.dispatches - d0) / steps;
  await loader.close();
  opt.dispose();
  model.dispose();
  return { ms, dispatches, last: r.losses.at(-1)!.loss };
}

console.log(`${rt.device.describe()}\nWRN-${depth}-${widen}, batch ${batch}, ${steps} steps a run`);
const times: Record<string, number[]> = { on: [], off: [] };
for (let i = 0; i < reps; i++) {
  for (const on of [false, true]) {
    const r = await run(on);
    times[on ? 'on' : 'off']!.push(r.ms);
    console.log(`guard ${on ? 'on ' : 'off'}: ${r.ms.toFixed(1)} ms/step, ${r.dispatches.toFixed(2)} dispatches/step, last loss ${r.last}`);
  }
}
{
  manualSeed(0);
  const model = new WideResNet(10, { depth, widenFactor: widen });
  const x = tensor(Float32Array.from({ length: batch * 3 * 32 * 32 }, (_, i) => Math.sin(i)), [batch, 3, 32, 32]);
  const y = tensor(Int32Array.from({ length: batch }, (_, i) => i % 10), [batch], 'i32');
  const loss = scope(() => {
    const l = crossEntropy(model.forward(x), y);
    backward(l);
    return l;
  });
  const guard = new DivergenceGuard({ phase: 'bench' });
  const n = 200;
  await guard.check(0, []);
  const t0 = performance.now();
  for (let i = 1; i <= n; i++) guard.step(i, loss, model.parameters());
  await guard.check(n, []);
  const ms = (performance.now() - t0) / n;
  console.log(`the per-step scans alone (loss + ${model.numParameters()} gradients), ${n} times: ${ms.toFixed(3)} ms per step`);
  guard.dispose();
}
const median = (a: number[]): number => [...a].sort((x, y) => x - y)[Math.floor(a.length / 2)]!;
if (reps > 0) console.log(`median ms/step: off ${median(times.off!).toFixed(1)}, on ${median(times.on!).toFixed(1)} (${((median(times.on!) / median(times.off!) - 1) * 100).toFixed(1)}%)`);
process.exit(0);
