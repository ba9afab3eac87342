// Live GPU objects and resident memory per iteration of a trainer (bench/NOTES.md, "Bind groups
// per dispatch: the silent SIGSEGV").
//   node bench/crash/bindgroup-soak.ts MODE [iterations] [logEvery]
// MODE: 'loader' (trainBigGANOn on Fashion-MNIST through the DataLoader, as the runner does),
//       'fixed'  (BigGANTrainer.step on one synthetic batch).
// Env: BATCH (10), DSTEPS (2), CH (16), LIMIT (images of Fashion-MNIST, 2000).
// Prints per log line: iteration, RSS, bind groups created / finalized by V8 / alive (created -
// finalized: the native descriptor sets Dawn still holds), the engine's bind-group cache size,
// pool buffers created and live, live tensors.
import { init, memoryStats, tensor, runtime } from '../../src/engine/index.ts';
import { loadMnist, subset } from '../../src/data/index.ts';
import { BigGANTrainer } from '../../src/models/index.ts';
import { trainBigGANOn } from '../../src/goe/train/biggan.ts';

const mode = process.argv[2] ?? 'fixed';
const iterations = Number(process.argv[3] ?? 60);
const logEvery = Number(process.argv[4] ?? 5);
const B = Number(process.env.BATCH ?? 10);
const DSTEPS = Number(process.env.DSTEPS ?? 2);
const CH = Number(process.env.CH ?? 16);
const LIMIT = Number(process.env.LIMIT ?? 2000);

const { device } = await init();
const g = device.gpu;
let created = 0;
let finalized = 0;
const registry = new FinalizationRegistry<null>(() => finalized++);
const orig = g.createBindGroup.bind(g);
(g as { createBindGroup: GPUDevice['createBindGroup'] }).createBindGroup = (d) => {
  const bg = orig(d);
  created++;
  registry.register(bg, null);
  return bg;
};
let textures = 0;
const origTex = g.createTexture.bind(g);
(g as { createTexture: GPUDevice['createTexture'] }).createTexture = (d) => {
  textures++;
  return origTex(d);
};
const t0 = performance.now();
let lastCreated = 0;
const bgCache = (): number => device.bindGroupStats().cached;
function line(itr: number): void {
  const p = device.pool.stats();
  const m = memoryStats();
  const rss = process.memoryUsage().rss / 2 ** 20;
  console.log(
    `itr ${itr} t ${((performance.now() - t0) / 1000).toFixed(1)}s rss ${rss.toFixed(0)} MB | bind groups created ${created} finalized ${finalized} alive ${created - finalized} cached ${bgCache()} | textures created ${textures} | dispatches ${device.stats.dispatches} | pool created ${p.created} live ${p.live} | tensors ${m.tensors}`,
  );
  lastCreated = device.bindGroupStats().created;
}

if (mode === 'loader') {
  const train = await loadMnist('fashion-mnist', 'train');
  const src = subset(train, Array.from({ length: Math.min(LIMIT, train.length) }, (_, i) => i));
  await trainBigGANOn({
    train: src, numClasses: 10, iterations, generator: { ch: CH, bottomWidth: 7, upsamples: 2 },
    config: { batchSize: B, numDSteps: DSTEPS }, logEvery, seed: 1, log: (s) => { const m = /iteration (\d+)\//.exec(s); if (m) line(Number(m[1])); else console.log(s); },
  });
} else {
  const trainer = BigGANTrainer.create({ nClasses: 10, ch: CH, outChannels: 1, bottomWidth: 7, upsamples: 2 }, {}, { batchSize: B, numDSteps: DSTEPS });
  const n = B * DSTEPS;
  const x = tensor(Float32Array.from({ length: n * 28 * 28 }, (_, i) => Math.sin(i * 0.37)), [n, 1, 28, 28]);
  const y = tensor(Int32Array.from({ length: n }, (_, i) => i % 10), [n], 'i32');
  for (let i = 1; i <= iterations; i++) {
    const l = trainer.step(x, y);
    if (i % logEvery === 0) {
      await l.g.item();
      line(i);
    }
    l.dReal.dispose();
    l.dFake.dispose();
    l.g.dispose();
  }
}
await runtime().device.sync();
line(-1);
