/**
 * Checkpoints carry checksums and --resume keeps the last two (issue 20, item 3).
 *
 * Every safetensors file we write holds the CRC-32 of each tensor and of the metadata in
 * __metadata__["goe.crc32"]; a flipped bit anywhere in a tensor or the metadata is a ChecksumError
 * naming the file (and the tensor) before anything is restored. Files without checksums (PyTorch's,
 * ours from before) still load, unverified. A training loop resumed over a corrupt newest checkpoint
 * says so in one line and resumes from the previous one, or restarts the phase when neither reads
 * back; either way the run ends bit-identical to an uninterrupted one.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { engine } from '../helpers/gpu.ts';
import {
  CHECKSUM_KEY, ChecksumError, LambdaLR, SGD, SafetensorsError, crc32, loadCheckpoint, loadModel, manualSeed, parseSafetensors, releaseParameterArena, saveModel, serializeSafetensors,
} from '../../src/engine/index.ts';
import { CIFAR_MEAN, CIFAR_STD, DataLoader } from '../../src/data/index.ts';
import { WideResNet } from '../../src/models/index.ts';
import { isInputError, syntheticImages, trainLoop, type TrainLoopResult } from '../../src/goe/index.ts';
import { loadNewestGoodCheckpoint, previousCheckpoint } from '../../src/goe/train/checkpoint-files.ts';
import { crc32 as zlibCrc32 } from 'node:zlib';

let dir: string;
beforeAll(async () => {
  await engine();
  dir = mkdtempSync(join(tmpdir(), 'goe-crc-'));
});
afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
  releaseParameterArena();
});

/** The file's header JSON and where its data section starts. */
function header(bytes: Uint8Array): { json: Record<string, any>; dataStart: number } {
  const n = Number(new DataView(bytes.buffer, bytes.byteOffset).getBigUint64(0, true));
  return { json: JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + n))), dataStart: 8 + n };
}

/** The same file as written before checksums existed (no goe.crc32 key). */
function withoutChecksums(bytes: Uint8Array): Uint8Array {
  const { json, dataStart } = header(bytes);
  delete json.__metadata__[CHECKSUM_KEY];
  delete json.__metadata__[`${CHECKSUM_KEY}-copy`];
  let h = new TextEncoder().encode(JSON.stringify(json));
  const padded = new Uint8Array(Math.ceil(h.length / 8) * 8).fill(0x20);
  padded.set(h);
  h = padded;
  const out = new Uint8Array(8 + h.length + bytes.length - dataStart);
  new DataView(out.buffer).setBigUint64(0, BigInt(h.length), true);
  out.set(h, 8);
  out.set(bytes.subarray(dataStart), 8 + h.length);
  return out;
}

function flipByte(file: string, at: (bytes: Uint8Array) => number): void {
  const b = new Uint8Array(readFileSync(file));
  b[at(b)] ^= 0x10;
  writeFileSync(file, b);
}

describe('safetensors checksums', () => {
  const file = () => serializeSafetensors({ w: { shape: [2, 3], data: Float32Array.from([1, 2, 3, 4, 5, 6]) }, b: { shape: [3], data: Int32Array.from([7, 8, 9]) } }, { note: 'epoch 3' });

  it('crc32 is zlib\'s CRC-32 at every length and across chunks', () => {
    for (const n of [0, 1, 3, 7, 8, 9, 16, 63, 1000, 4099]) {
      const a = Uint8Array.from({ length: n }, (_, i) => (i * 131 + 7 * n) & 255);
      expect(crc32(a), `n = ${n}`).toBe(zlibCrc32(a));
      expect(crc32(a.subarray(Math.floor(n / 3)), crc32(a.subarray(0, Math.floor(n / 3)))), `chunks, n = ${n}`).toBe(zlibCrc32(a));
    }
  });

  it('written with every tensor\'s and the metadata\'s CRC-32, verified and taken out of the metadata on read', () => {
    const bytes = file();
    const sums = JSON.parse(header(bytes).json.__metadata__[CHECKSUM_KEY]) as Record<string, string>;
    expect(Object.keys(sums).sort()).toEqual(['__metadata__', 'b', 'w']);
    expect(sums.w).toBe(zlibCrc32(new Uint8Array(Float32Array.from([1, 2, 3, 4, 5, 6]).buffer)).toString(16).padStart(8, '0'));
    const f = parseSafetensors(bytes);
    expect(f.verified).toBe(true);
    expect(f.metadata).toEqual({ note: 'epoch 3' });
  });

  it('a flipped bit in any tensor, or in the metadata, is a ChecksumError naming the file', () => {
    const bytes = file();
    const { dataStart } = header(bytes);
    for (let at = dataStart; at < bytes.length; at++) {
      const c = bytes.slice();
      c[at] ^= 0x01;
      const e = (() => { try { parseSafetensors(c, { source: 'run/ckpt.safetensors' }); } catch (x) { return x; } })();
      expect(e, `byte ${at}`).toBeInstanceOf(ChecksumError);
      expect((e as Error).message).toMatch(/^safetensors: run\/ckpt\.safetensors: tensor "(w|b)" fails its CRC-32 check \(stored "[0-9a-f]{8}", computed [0-9a-f]{8}\): the file is corrupt$/);
    }
    const text = new TextDecoder().decode(bytes);
    const c = bytes.slice();
    c[text.indexOf('epoch 3') + 6] = '4'.charCodeAt(0);
    expect(() => parseSafetensors(c, { source: 'm.safetensors' })).toThrow(/m\.safetensors: its metadata fails its CRC-32 check/);
    // any flip in the header is a SafetensorsError (structure, JSON or checksums: a flip in one
    // checksum key's name leaves the other copy) or changes nothing read
    const want = parseSafetensors(bytes);
    for (let at = 8; at < header(bytes).dataStart; at++) {
      const d = bytes.slice();
      d[at] ^= 0x04;
      let got;
      try {
        got = parseSafetensors(d);
      } catch (x) {
        expect(x, `header byte ${at}`).toBeInstanceOf(SafetensorsError);
        continue;
      }
      expect(got, `header byte ${at}`).toEqual(want);
    }
  });

  it('files without checksums (PyTorch\'s, ours from before) load unverified', () => {
    const f = parseSafetensors(withoutChecksums(file()));
    expect(f.verified).toBeUndefined();
    expect(Array.from(f.tensors.get('b')!.data as Int32Array)).toEqual([7, 8, 9]);
  });

  it('a model file with a flipped bit is refused by loadModel, naming the file', async () => {
    const m = new WideResNet(3, { depth: 10, widenFactor: 1, pooling: 'global' });
    const path = join(dir, 'model.safetensors');
    try {
      await saveModel(path, m);
      flipByte(path, (b) => b.length - 5);
      await expect(loadModel(path, m)).rejects.toThrow(new RegExp(`${path.replace(/[.]/g, '\\.')}: tensor ".+" fails its CRC-32 check`));
    } finally {
      m.dispose();
    }
  });
});

const train = syntheticImages({ classes: 3, n: 24, seed: 5, size: 8 });
const T = { mean: CIFAR_MEAN, std: CIFAR_STD };

/** WRN-10-1 on 8x8 images, 2 epochs of 3 steps, a checkpoint after every step. */
async function run(ckpt: string, opts: { stopAfter?: number; resume?: boolean; initSeed: number }): Promise<{ r: TrainLoopResult; weights: Map<string, Float32Array>; lines: string[] }> {
  manualSeed(opts.initSeed);
  const model = new WideResNet(3, { depth: 10, widenFactor: 1, dropRate: 0.3, pooling: 'global' });
  const loader = new DataLoader({ source: train, batchSize: 8, seed: 3, transform: T, workers: 0 });
  const opt = new SGD(model.parameters(), { lr: 0.02, momentum: 0.9 });
  const sched = new LambdaLR(opt, (s: number) => 1 / (1 + s));
  const lines: string[] = [];
  try {
    const r = await trainLoop({
      name: 'crc', model, loader, epochs: 2, optimizer: opt, scheduler: sched, schedulerUnit: 'step', loss: 'ce',
      logEvery: 1, checkpoint: ckpt, checkpointEvery: 1, resume: opts.resume, stopAfter: opts.stopAfter, log: (l) => lines.push(l),
    });
    const weights = new Map<string, Float32Array>();
    for (const [k, t] of model.stateDict()) weights.set(k, Float32Array.from((await t.data()) as Float32Array));
    return { r, weights, lines };
  } finally {
    await loader.close();
    opt.dispose();
    model.dispose();
  }
}

function expectSameWeights(a: Map<string, Float32Array>, b: Map<string, Float32Array>): void {
  expect([...a.keys()]).toEqual([...b.keys()]);
  for (const [k, w] of a) expect(Buffer.from(b.get(k)!.buffer).equals(Buffer.from(w.buffer)), k).toBe(true);
}

describe('--resume keeps the last two checkpoints and skips a corrupt one', () => {
  let full: Awaited<ReturnType<typeof run>>;
  beforeAll(async () => {
    full = await run(join(dir, 'full.safetensors'), { initSeed: 1 });
  });

  /** A run stopped after 4 steps: checkpoint = step 4, previous = step 3. */
  async function interrupted(name: string): Promise<string> {
    const ckpt = join(dir, `${name}.safetensors`);
    const first = await run(ckpt, { initSeed: 1, stopAfter: 4 });
    expect(first.r.steps).toBe(4);
    expect(previousCheckpoint(ckpt)).toBe(join(dir, `${name}.prev.safetensors`));
    expect(existsSync(previousCheckpoint(ckpt))).toBe(true);
    return ckpt;
  }

  it('the newest corrupt: one line saying so, resumed from the previous, bit-identical to the uninterrupted run', async () => {
    expect(full.r.steps).toBe(6);
    const ckpt = await interrupted('newest-bad');
    flipByte(ckpt, (b) => b.length - 100);
    const second = await run(ckpt, { initSeed: 77, resume: true });
    const said = second.lines.filter((l) => l.includes('corrupt'));
    expect(said).toHaveLength(1);
    expect(said[0]).toMatch(new RegExp(`^\\[crc\\] ${ckpt.replace(/[.]/g, '\\.')} is corrupt \\(.*tensor ".+" fails its CRC-32 check.*\\); resuming from the previous checkpoint .*newest-bad\\.prev\\.safetensors$`));
    expect(second.r.resumedFrom).toEqual({ epoch: 1, batch: 0, step: 3 });
    expect(second.r.losses.map((l) => l.loss)).toEqual(full.r.losses.map((l) => l.loss));
    expectSameWeights(full.weights, second.weights);
  });

  it('both corrupt: the phase restarts from its beginning (said), and still ends bit-identical', async () => {
    const ckpt = await interrupted('both-bad');
    flipByte(ckpt, (b) => b.length - 100);
    flipByte(previousCheckpoint(ckpt), (b) => b.length - 100);
    const second = await run(ckpt, { initSeed: 1, resume: true });
    expect(second.lines.filter((l) => l.includes('corrupt'))).toHaveLength(2);
    expect(second.lines.some((l) => /no good checkpoint is left: the phase restarts from its beginning$/.test(l))).toBe(true);
    expect(second.r.resumedFrom).toBeNull();
    expectSameWeights(full.weights, second.weights);
  });

  it('a checkpoint written before checksums existed still resumes (unverified)', async () => {
    const ckpt = await interrupted('old-format');
    writeFileSync(ckpt, withoutChecksums(new Uint8Array(readFileSync(ckpt))));
    expect(parseSafetensors(new Uint8Array(readFileSync(ckpt))).verified).toBeUndefined();
    const second = await run(ckpt, { initSeed: 77, resume: true });
    expect(second.r.resumedFrom).toEqual({ epoch: 1, batch: 1, step: 4 });
    expectSameWeights(full.weights, second.weights);
  });

  it('loadCheckpoint of a corrupt file names it; loadNewestGoodCheckpoint passes other errors through', async () => {
    const ckpt = await interrupted('direct');
    flipByte(ckpt, (b) => b.length - 100);
    const m = new WideResNet(3, { depth: 10, widenFactor: 1, dropRate: 0.3, pooling: 'global' });
    try {
      await expect(loadCheckpoint(ckpt, { model: m })).rejects.toThrow(ChecksumError);
      await expect(loadCheckpoint(ckpt, { model: m })).rejects.toThrow(ckpt);
      // a file that does not read back is the user's input (exit 2); a writing error is a bug (exit 1)
      const e = await loadCheckpoint(ckpt, { model: m }).catch((x) => x);
      expect((e as SafetensorsError).file).toBe(ckpt);
      expect(isInputError(e)).toBe(true);
      const w = (() => { try { serializeSafetensors({ x: { shape: [2], data: new Float32Array(3) } }); } catch (x) { return x; } })();
      expect(w).toBeInstanceOf(SafetensorsError);
      expect(isInputError(w)).toBe(false);
    } finally {
      m.dispose();
    }
    await expect(loadNewestGoodCheckpoint(previousCheckpoint(ckpt), async () => { throw new Error('another model'); }, () => {}, 'x')).rejects.toThrow('another model');
    expect(await loadNewestGoodCheckpoint(join(dir, 'none.safetensors'), async () => 1, () => {}, 'x')).toBeNull();
  });
});
