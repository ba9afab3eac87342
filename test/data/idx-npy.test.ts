import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { afterAll, describe, expect, it } from 'vitest';
import { Assembler } from '../../src/data/assemble.ts';
import {
  DEBIAN_FASHION_MNIST_DIR,
  NpzFile,
  openNpyImages,
  parseIdx,
  readIdxPair,
  readMnist,
  readNpy,
  readNpyHeader,
  type Source,
  toLabels,
} from '../../src/data/index.ts';
import { compileTransform } from '../../src/data/transforms.ts';
import { bytes, npy, tempDir, zip } from './helpers.ts';

const fixtures = join(import.meta.dirname, 'fixtures');
const tmp = tempDir();
afterAll(tmp.cleanup);

function idx(typeCode: number, shape: number[], body: Uint8Array): Buffer {
  const h = Buffer.alloc(4 + 4 * shape.length);
  h.writeUInt32BE((typeCode << 8) | shape.length, 0);
  shape.forEach((d, i) => h.writeUInt32BE(d, 4 + 4 * i));
  return Buffer.concat([h, body]);
}

/** Read samples of a source through the same code the loader's workers use (uint8 scaled by 1, no normalisation). */
async function samples(src: Source, indices: number[]): Promise<Float32Array> {
  const size = src.sampleShape.reduce((a, b) => a * b, 1);
  const slot = { x: new SharedArrayBuffer(indices.length * size * 4), y: new SharedArrayBuffer(indices.length * 4) };
  const t = compileTransform({ scale: 1 }, src.sampleShape, src.dtype as 'uint8' | 'float32');
  const asm = new Assembler({ sources: [src], transforms: [t], sampleOut: size, output: 'float32', slots: [slot] });
  const r = await asm.run({ id: 0, slot: 0, entries: Int32Array.from(indices.flatMap((i) => [0, i])), start: 0, seed: [0] });
  asm.close();
  if (r.error) throw new Error(r.error.message);
  return new Float32Array(slot.x);
}

describe('IDX', () => {
  const pixels = bytes(3 * 4 * 5, 9);
  it('parses plain and gzipped files the same', () => {
    const raw = idx(0x08, [3, 4, 5], pixels);
    for (const buf of [raw, gzipSync(raw)]) {
      const a = parseIdx(buf, 'x');
      expect(a.type).toBe('uint8');
      expect(a.shape).toEqual([3, 4, 5]);
      expect(Buffer.from(a.data as Uint8Array).equals(Buffer.from(pixels))).toBe(true);
    }
    const ints = parseIdx(idx(0x0c, [2], Buffer.from([0, 0, 1, 0, 0xff, 0xff, 0xff, 0xfe])));
    expect([...ints.data]).toEqual([256, -2]);
  });

  it('rejects bad magic, truncation, trailing bytes and corrupt gzip with the file name', () => {
    expect(() => parseIdx(Buffer.from([1, 2, 3, 4, 5, 6, 7, 8]), 'bad.idx')).toThrow(/bad\.idx: not an IDX file: bad magic number 0x01020304/);
    expect(() => parseIdx(idx(0x08, [3, 4, 5], pixels.subarray(0, 50)), 't.idx')).toThrow(/t\.idx: truncated IDX data: shape \(3, 4, 5\) of uint8 needs 76 bytes, file has 66/);
    expect(() => parseIdx(Buffer.concat([idx(0x08, [3, 4, 5], pixels), Buffer.from([0])]), 'l.idx')).toThrow(/1 bytes after the declared shape/);
    const gz = gzipSync(idx(0x08, [3, 4, 5], pixels));
    expect(() => parseIdx(gz.subarray(0, gz.length - 8), 'c.gz')).toThrow(/c\.gz: gzip stream is corrupt or truncated/);
  });

  it('pairs images and labels, checking counts and label range', async () => {
    const im = join(tmp.dir, 'train-images-idx3-ubyte.gz');
    const lb = join(tmp.dir, 'train-labels-idx1-ubyte');
    writeFileSync(im, gzipSync(idx(0x08, [3, 4, 5], pixels)));
    writeFileSync(lb, idx(0x08, [3], Buffer.from([1, 9, 0])));
    const s = await readIdxPair(im, lb);
    expect(s.sampleShape).toEqual([1, 4, 5]);
    expect([...s.labels!]).toEqual([1, 9, 0]);
    const m = await readMnist({ name: 'mnist', split: 'train', root: tmp.dir });
    expect(m.length).toBe(3);
    writeFileSync(lb, idx(0x08, [3], Buffer.from([1, 10, 0])));
    await expect(readIdxPair(im, lb)).rejects.toThrow(/label 1 is 10, outside 0\.\.9/);
    writeFileSync(lb, idx(0x08, [2], Buffer.from([1, 1])));
    await expect(readIdxPair(im, lb)).rejects.toThrow(/2 labels for 3 images/);
    await expect(readMnist({ name: 'fashion-mnist', split: 'test', root: tmp.dir })).rejects.toThrow(/no fashion-mnist test files/);
  });

  it.skipIf(!existsSync(join(DEBIAN_FASHION_MNIST_DIR, 't10k-labels-idx1-ubyte.gz')))("reads Debian's dataset-fashion-mnist package when installed", async () => {
    const s = await readMnist({ name: 'fashion-mnist', split: 'test', root: DEBIAN_FASHION_MNIST_DIR });
    expect(s.length).toBe(10000);
    expect(s.sampleShape).toEqual([1, 28, 28]);
    expect(s.classes?.[9]).toBe('Ankle boot');
  });
});

describe('.npy / .npz', () => {
  it('reads numpy-written .npz (stored and deflated) and a Fortran-order big-endian .npy', async () => {
    const expected = JSON.parse(readFileSync(join(fixtures, 'arrays-expected.json'), 'utf8')) as { x: number[]; y: number[]; fortran_c_order: number[] };
    for (const f of ['arrays-stored.npz', 'arrays-deflated.npz']) {
      const z = await NpzFile.open(join(fixtures, f));
      expect(z.keys.sort()).toEqual(['x', 'y']);
      const x = await z.array('x');
      expect(x.shape).toEqual([3, 3, 4, 5]);
      expect([...x.data]).toEqual(expected.x);
      expect([...toLabels(await z.array('y'), 3)]).toEqual(expected.y);
      const src = await z.images('x');
      expect(src.kind).toBe(f === 'arrays-stored.npz' ? 'npy' : 'array'); // stored members are read lazily by offset
      expect(src.layout).toBe('CHW');
      expect([...(await samples(src, [2, 0]))]).toEqual([...expected.x.slice(120, 180), ...expected.x.slice(0, 60)]);
    }
    const fa = await readNpy(join(fixtures, 'fortran-be.npy'));
    expect(fa.header.fortranOrder).toBe(true);
    expect(fa.header.littleEndian).toBe(false);
    expect([...fa.data]).toEqual(expected.fortran_c_order.map(Math.fround));
  });

  it('opens a large C-order array lazily: header only, samples by offset (HWC uint8 like TinyImages)', async () => {
    const n = 50;
    const data = bytes(n * 8 * 6 * 3, 5);
    const f = join(tmp.dir, 'tiny.npy');
    writeFileSync(f, npy('|u1', [n, 8, 6, 3], data));
    const s = await openNpyImages(f);
    expect(s.kind).toBe('npy');
    expect(s.layout).toBe('HWC');
    expect(s.sampleShape).toEqual([3, 8, 6]);
    const got = await samples(s, [49]);
    // CHW out of HWC in: channel 1, row 2, col 3 of sample 49
    expect(got[1 * 48 + 2 * 6 + 3]).toBe(data[49 * 144 + (2 * 6 + 3) * 3 + 1]);
    const h = await readNpyHeader(f);
    expect(h.shape).toEqual([n, 8, 6, 3]);
  });

  it('float32 arrays (little and big endian) and Fortran-order image arrays', async () => {
    const vals = Float32Array.from({ length: 2 * 3 * 2 * 2 }, (_, i) => i / 8 - 1);
    const le = join(tmp.dir, 'f.npy');
    writeFileSync(le, npy('<f4', [2, 3, 2, 2], new Uint8Array(vals.buffer)));
    expect([...(await samples(await openNpyImages(le), [0, 1]))]).toEqual([...vals]);
    const beBytes = new Uint8Array(vals.buffer.slice(0));
    for (let i = 0; i < beBytes.length; i += 4) beBytes.subarray(i, i + 4).reverse();
    const be = join(tmp.dir, 'fbe.npy');
    writeFileSync(be, npy('>f4', [2, 3, 2, 2], beBytes));
    expect([...(await samples(await openNpyImages(be), [1]))]).toEqual([...vals.subarray(12)]);
    // Fortran order: element (i, j, k, l) at i + 2j + 6k + 12l
    const fortran = new Uint8Array(24);
    for (let i = 0; i < 2; i++) for (let j = 0; j < 3; j++) for (let k = 0; k < 2; k++) for (let l = 0; l < 2; l++) fortran[i + 2 * j + 6 * k + 12 * l] = i * 12 + j * 4 + k * 2 + l;
    const ff = join(tmp.dir, 'fort.npy');
    writeFileSync(ff, npy('|u1', [2, 3, 2, 2], fortran, true));
    const fs = await openNpyImages(ff);
    expect(fs.kind).toBe('array');
    expect([...(await samples(fs, [0, 1]))]).toEqual(Array.from({ length: 24 }, (_, i) => i));
  });

  it('rejects bad files with clear errors', async () => {
    const f = join(tmp.dir, 'bad.npy');
    writeFileSync(f, Buffer.from('not numpy at all'));
    await expect(openNpyImages(f)).rejects.toThrow(/bad\.npy: not a \.npy file/);
    writeFileSync(f, npy('|u1', [10, 3, 4, 4], bytes(100)));
    await expect(openNpyImages(f)).rejects.toThrow(/bad\.npy: truncated: shape \(10, 3, 4, 4\) of \|u1 needs \d+ bytes, file has \d+/);
    writeFileSync(f, npy('<i8', [2, 3, 4, 4], bytes(2 * 48 * 8)));
    await expect(openNpyImages(f)).rejects.toThrow(/image arrays must be uint8 or float32, this one is '<i8'/);
    writeFileSync(f, npy('<c8', [2], bytes(16)));
    await expect(readNpy(f)).rejects.toThrow(/unsupported dtype '<c8'/);
    writeFileSync(f, npy('|u1', [7, 7, 7, 7], bytes(7 ** 4)));
    await expect(openNpyImages(f)).rejects.toThrow(/cannot tell the layout of shape \(7, 7, 7, 7\)/);
    const l = await readNpy(join(fixtures, 'fortran-be.npy'));
    expect(() => toLabels(l, 3, 'lab')).toThrow(/labels must be one-dimensional/);
    const z = join(tmp.dir, 'bad.npz');
    writeFileSync(z, zip([{ name: 'x.npy', data: npy('|u1', [2, 3, 2, 2], bytes(24)) }]).subarray(0, 60));
    await expect(NpzFile.open(z)).rejects.toThrow(/bad\.npz: not a readable zip archive/);
    writeFileSync(z, zip([{ name: 'x.npy', data: npy('|u1', [2, 3, 2, 2], bytes(24)), deflate: true }]));
    const npz = await NpzFile.open(z);
    await expect(npz.images('y')).rejects.toThrow(/no array 'y' in the archive \(has: x\)/);
    expect((await npz.images('x')).length).toBe(2);
  });
});
