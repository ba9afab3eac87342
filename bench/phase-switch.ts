/**
 * A WRN-10-1 step (batch 128, 1x28x28) after a few BigGAN iterations (ch 8, 28x28 grey) in the same process, as the fmnist
 * run trains them, or alone (`nogan`): the panel-texture cache must serve the second phase's shapes (bench/NOTES.md,
 * "Panel-texture cache"). `node bench/phase-switch.ts [nogan]`
 */
import { init, tensor, scope, backward, crossEntropy, SGD } from '../src/engine/index.ts';
import { BigGANTrainer, WideResNet } from '../src/models/index.ts';
await init();
const gan = process.argv[2] !== 'nogan';
if (gan) {
  const tr = BigGANTrainer.create({ nClasses: 10, ch: 8, bottomWidth: 7, upsamples: 2, outChannels: 1 }, {}, { batchSize: 32, numDSteps: 2, ema: false });
  const x = new Float32Array(64 * 784).map(() => Math.random() * 2 - 1);
  const y = new Int32Array(64).map(() => Math.floor(Math.random() * 10));
  for (let i = 0; i < 5; i++) { const xx = tensor(x, [64, 1, 28, 28]); const yy = tensor(y, [64], 'i32'); const l = tr.step(xx, yy); await l.g.item(); for (const v of Object.values(l)) (v as any).dispose(); xx.dispose(); yy.dispose(); }
}
const m = new WideResNet(10, { depth: 10, widenFactor: 1, dropRate: 0, inChannels: 1, pooling: 'global' });
const opt = new SGD(m.parameters(), { lr: 0.01, momentum: 0.9 });
const x = new Float32Array(128 * 784).map(() => Math.random());
const y = new Int32Array(128).map(() => Math.floor(Math.random() * 10));
const ts: number[] = [];
for (let i = 0; i < 6; i++) {
  const t = performance.now();
  const l = scope(() => { opt.zeroGrad(); const lo = crossEntropy(m.forward(tensor(x, [128, 1, 28, 28])), tensor(y, [128], 'i32')); backward(lo); opt.step(); return lo; });
  await l.item(); l.dispose(); ts.push(performance.now() - t);
}
console.log(`${gan ? 'after GAN' : 'alone'}: WRN-10-1 steps ${ts.map((t) => t.toFixed(0)).join(' ')} ms`);
