/**
 * Data-loading benchmark: batches per second the DataLoader delivers for CIFAR-sized and 224x224
 * images, against the training step rates the GOE models need.
 *
 *   node bench/data.ts            # full run (about a minute on 2 cores)
 *   node bench/data.ts --quick    # fewer batches
 *
 * The step rates the loader must beat are upper bounds: the model's training FLOPs per step at the
 * full FP32 peak of an H100 (67 TFLOP/s, no tensor cores through WebGPU), which no real step reaches:
 *   WRN-40-2, 32x32: about 0.33 GMAC forward per image, x3 for forward+backward = 2 GFLOP per image.
 *     OE fine-tune (128 in + 256 out = 384 images): 87 steps/s; GOE notebooks (256 mixed): 131 steps/s.
 *   ViT-B/16, 224x224: about 17.6 GMAC forward per image = 106 GFLOP per training image.
 *     GOE ImageNet fine-tune (64 in + 64 generated out): 5 steps/s, i.e. 320 decoded JPEGs/s (outliers come
 *     from the generator on the GPU, not from files).
 *   GRU text classifier (batch 32, 100 tokens, 2 layers): about 3 GFLOP per step, but 100 time steps x
 *     2 layers of dependent kernels forward and backward bound it by dispatch latency far below 1000 steps/s,
 *     which is used as a generous bound.
 * Data are synthetic (the real sets are not reachable here) but in the real formats and sizes.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { availableParallelism, cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { type ArraySource, basicEnglish, DataLoader, type LoaderOptions, openNpyImages, textSource, Vocab } from '../src/data/index.ts';
import { sharedUint8 } from '../src/data/shared.ts';
import { CIFAR_MEAN, CIFAR_STD, IMAGENET_MEAN, IMAGENET_STD } from '../src/data/transforms.ts';

const quick = process.argv.includes('--quick');
const cores = availableParallelism();
const auto = Math.max(1, Math.min(8, cores - 1));
const tmp = mkdtempSync(join(tmpdir(), 'goe-bench-data-'));

function noise(n: number, seed: number): Uint8Array {
  const out = sharedUint8(n);
  let s = seed >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    out[i] = s & 255;
  }
  return out;
}

function memorySource(n: number, shape: [number, number, number], layout: 'CHW' | 'HWC', labelled: boolean, seed: number): ArraySource {
  const size = shape[0] * shape[1] * shape[2];
  return {
    kind: 'array',
    name: `synthetic ${n}x${shape.join('x')}`,
    length: n,
    sampleShape: shape,
    layout,
    dtype: 'uint8',
    data: noise(n * size, seed),
    labels: labelled ? Int32Array.from({ length: n }, (_, i) => i % 100) : null,
  };
}

interface Row {
  name: string;
  workers: number;
  batchesPerSec: number;
  imagesPerSec: number;
  /** Batches per CPU-second (all threads of this process): what one dedicated core delivers, whatever else runs. */
  batchesPerCpuSec: number;
  need: number;
  needUnit: string;
}
const rows: Row[] = [];

/** Batches per second over `batches` batches after one warm-up batch (workers started, JIT warm). */
async function measure(name: string, opts: LoaderOptions, batches: number, need: number, needUnit: 'steps/s' | 'images/s'): Promise<void> {
  const loader = new DataLoader(opts);
  let n = 0;
  let images = 0;
  let t0 = 0;
  let epoch = 0;
  let cpu0 = process.cpuUsage();
  outer: for (;;) {
    for await (const b of loader.epoch(epoch++)) {
      if (n === 0) {
        t0 = performance.now();
        cpu0 = process.cpuUsage();
      } else images += b.shape[0]!;
      if (++n > batches) break outer;
    }
  }
  const secs = (performance.now() - t0) / 1000;
  const cpu = process.cpuUsage(cpu0);
  await loader.close();
  const cpuSecs = (cpu.user + cpu.system) / 1e6;
  const row = { name, workers: opts.workers ?? auto, batchesPerSec: batches / secs, imagesPerSec: images / secs, batchesPerCpuSec: batches / cpuSecs, need, needUnit };
  rows.push(row);
  const have = needUnit === 'steps/s' ? row.batchesPerSec : row.imagesPerSec;
  const perCpu = needUnit === 'steps/s' ? `${row.batchesPerCpuSec.toFixed(1)} batches` : `${((row.batchesPerCpuSec * images) / batches).toFixed(0)} img`;
  console.log(
    `${name.padEnd(62)} workers ${String(row.workers).padStart(1)} ${row.batchesPerSec.toFixed(1).padStart(7)} batches/s ${row.imagesPerSec.toFixed(0).padStart(6)} img/s ` +
      `(${perCpu} per CPU-s)  need <= ${need} ${needUnit}: ${have >= need ? 'OK' : `x${(need / have).toFixed(2)} short`}`,
  );
}

/** With a simulated GPU step of `stepMs` (the step awaits the GPU; the CPU is free), the mean time the step waits for its batch. */
async function waitPerStep(name: string, opts: LoaderOptions, steps: number, stepMs: number): Promise<void> {
  const loader = new DataLoader(opts);
  let waited = 0;
  let n = 0;
  let t = 0;
  for await (const b of loader.epoch(0)) {
    void b;
    if (n > 0) waited += performance.now() - t;
    if (++n > steps) break;
    await new Promise((r) => setTimeout(r, stepMs));
    t = performance.now();
  }
  await loader.close();
  console.log(`${name.padEnd(58)} step ${stepMs} ms: mean wait for the next batch ${(waited / steps).toFixed(2)} ms`);
}

console.log(
  `# node ${process.version}, ${cores} cores (${cpus()[0]?.model ?? 'unknown cpu'}), load average ${loadavg()[0]!.toFixed(1)} at start, ${quick ? 'quick' : 'full'} run`,
);
console.log('# "per CPU-s": throughput per CPU-second this process used (all its threads), a measure that holds on a busy machine');
const B = quick ? 40 : 150;

// ----------------------------------------------------------------- CIFAR-sized (3 x 32 x 32)
console.log('\n## CIFAR-sized images (3x32x32 uint8 in memory, 50,000 each)');
const cifar = memorySource(50_000, [3, 32, 32], 'CHW', true, 1);
const goe = memorySource(50_000, [3, 32, 32], 'CHW', false, 2);
const norm = { mean: CIFAR_MEAN, std: CIFAR_STD };
const aug = { ...norm, randomCrop: { size: 32, padding: 4 }, hflip: true };
for (const workers of [0, auto]) {
  await measure('GOE notebooks: 256 mixed in+out, normalise', { source: cifar, batchSize: 256, transform: norm, outliers: { source: goe, mode: 'mixed' }, workers }, B, 131, 'steps/s');
  await measure('OE repo: 128 in (crop+flip) + 256 out, normalise', { source: cifar, batchSize: 128, transform: aug, outliers: { source: goe, mode: 'paired', batchSize: 256 }, workers }, B, 87, 'steps/s');
}
// TinyImages-style lazy .npy outliers: (N, 32, 32, 3) uint8 read by file offset
const tinyN = quick ? 20_000 : 60_000;
const tinyPath = join(tmp, 'tiny.npy');
{
  let header = `{'descr': '|u1', 'fortran_order': False, 'shape': (${tinyN}, 32, 32, 3), }`;
  header += ' '.repeat((64 - ((10 + header.length + 1) % 64)) % 64) + '\n';
  const pre = Buffer.from([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, 1, 0, header.length & 255, header.length >> 8]);
  writeFileSync(tinyPath, Buffer.concat([pre, Buffer.from(header, 'latin1'), noise(tinyN * 3072, 3)]));
}
const tiny = await openNpyImages(tinyPath);
await measure(`OE repo with TinyImages-style .npy outliers (${tinyN / 1000}k, lazy)`, { source: cifar, batchSize: 128, transform: aug, outliers: { source: tiny, mode: 'paired', batchSize: 256 }, workers: auto }, B, 87, 'steps/s');
await waitPerStep('  ...the same, fed to a 10 ms training step', { source: cifar, batchSize: 128, transform: aug, outliers: { source: tiny, mode: 'paired', batchSize: 256 }, workers: auto }, quick ? 20 : 60, 10);

// ----------------------------------------------------------------- 224 x 224
console.log('\n## 224x224 images');
const big = memorySource(quick ? 256 : 512, [3, 224, 224], 'HWC', true, 4);
const inorm = { mean: IMAGENET_MEAN, std: IMAGENET_STD };
for (const workers of [0, auto]) {
  await measure('decoded uint8 HWC in memory: 64 in + 64 out, normalise', { source: big, batchSize: 64, transform: inorm, outliers: { source: big, mode: 'paired', batchSize: 64 }, workers }, quick ? 10 : 30, 5, 'steps/s');
}
// JPEG files at typical ImageNet size (500x375), Resize(256) + CenterCrop(224) + normalise, 64 per batch
const jpegCount = quick ? 64 : 192;
const files: string[] = [];
for (let i = 0; i < jpegCount; i++) {
  const w = 500;
  const h = 375;
  const px = Buffer.alloc(w * h * 3);
  const n = noise(w * h * 3, 10 + i);
  for (let y = 0; y < h; y++)
    for (let x = 0; x < w; x++)
      for (let c = 0; c < 3; c++) px[(y * w + x) * 3 + c] = ((x * (c + 1) + y * (3 - c) + i * 17) & 255) * 0.75 + (n[(y * w + x) * 3 + c]! & 63);
  const f = join(tmp, `img${i}.jpg`);
  writeFileSync(f, await sharp(px, { raw: { width: w, height: h, channels: 3 } }).jpeg({ quality: 90 }).toBuffer());
  files.push(f);
}
const jpegs = { kind: 'images' as const, name: 'jpegs', length: files.length, sampleShape: [3, 224, 224], layout: 'HWC' as const, dtype: 'uint8' as const, files, labels: null, decode: { resize: 256, centerCrop: 224, size: [224, 224] as [number, number] }, onError: 'throw' as const };
const jb = quick ? 3 : 8;
for (const workers of [0, auto]) {
  await measure('JPEG 500x375 -> Resize(256)+CenterCrop(224), exact Pillow', { source: jpegs, batchSize: 64, transform: inorm, workers }, jb, 320, 'images/s');
}
const vips = { ...jpegs, decode: { ...jpegs.decode, resampler: 'libvips' as const } };
for (const workers of [0, auto]) {
  await measure("JPEG 500x375 -> Resize(256)+CenterCrop(224), resampler 'libvips'", { source: vips, batchSize: 64, transform: inorm, workers }, jb, 320, 'images/s');
}

// ----------------------------------------------------------------- text (20 Newsgroups-sized)
console.log('\n## Text (20 Newsgroups-sized: 11,314 documents of about 250 words)');
{
  const words = Array.from({ length: 30_000 }, (_, i) => `w${i.toString(36)}`);
  const rng = noise(11_314 * 250 * 2, 7);
  const docs = Array.from({ length: 11_314 }, (_, d) => {
    const parts: string[] = [];
    for (let k = 0; k < 250; k++) parts.push(words[(rng[(d * 250 + k) * 2]! * 131 + rng[(d * 250 + k) * 2 + 1]!) % words.length]!);
    return parts.join(' ') + ". It's (very) good, isn't it?";
  });
  let t = performance.now();
  const tokens = docs.map(basicEnglish);
  const tokMs = performance.now() - t;
  t = performance.now();
  const vocab = Vocab.build(tokens, { maxSize: 10_000 });
  const src = textSource(tokens, Int32Array.from({ length: docs.length }, (_, i) => i % 20), vocab, { length: 100 });
  const vocMs = performance.now() - t;
  console.log(`basic_english on 11,314 documents: ${tokMs.toFixed(0)} ms; vocabulary + numericalisation (length 100): ${vocMs.toFixed(0)} ms`);
  await measure('token ids, batch 32 (GRU classifier), shuffled', { source: src, batchSize: 32, workers: 0 }, quick ? 100 : 300, 1000, 'steps/s');
}

console.log(`\n## Summary (loader throughput vs the most a training step could consume); load average now ${loadavg()[0]!.toFixed(1)}`);
for (const r of rows) {
  const have = r.needUnit === 'steps/s' ? r.batchesPerSec : r.imagesPerSec;
  console.log(`- ${r.name} [${r.workers} workers]: ${have.toFixed(1)} ${r.needUnit} (need <= ${r.need}); ${r.batchesPerCpuSec.toFixed(1)} batches per CPU-second`);
}
rmSync(tmp, { recursive: true, force: true });
