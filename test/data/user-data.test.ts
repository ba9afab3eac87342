/**
 * The user's image data: every format and layout gives the expected pixels after the conversion rule
 * (channels by PIL's convert, then Resize([H, W]) with Pillow's bilinear), and every bad input is a
 * DataError naming the path. Expected values are worked out by hand in the comments.
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import sharp from 'sharp';
import { afterAll, describe, expect, it } from 'vitest';
import {
  arrayGeometry,
  checkTrainTest,
  convertPixels,
  DataError,
  DataLoader,
  decodeImageInto,
  openImageSet,
  openLabelledImageSet,
  openTrainTest,
  rgbToLuma,
  type ArraySource,
  type Source,
} from '../../src/data/index.ts';
import { npy, png, tempDir, zip } from './helpers.ts';

const tmp = tempDir('goe-user-');
afterAll(tmp.cleanup);
let counter = 0;
/** A fresh path in the temp folder. */
const fresh = (name: string): string => join(tmp.dir, `${counter++}-${name}`);
const write = (name: string, data: Uint8Array): string => {
  const p = fresh(name);
  writeFileSync(p, data);
  return p;
};
const folder = (name: string, files: Record<string, Uint8Array>): string => {
  const root = fresh(name);
  for (const [rel, data] of Object.entries(files)) {
    mkdirSync(join(root, rel, '..'), { recursive: true });
    writeFileSync(join(root, rel), data);
  }
  return root;
};

/** An IDX file: magic 0x0000TTDD, big-endian sizes, then the elements. */
function idx(typeCode: number, shape: number[], body: Uint8Array): Buffer {
  const h = Buffer.alloc(4 + 4 * shape.length);
  h.writeUInt32BE((typeCode << 8) | shape.length, 0);
  shape.forEach((d, i) => h.writeUInt32BE(d, 4 + 4 * i));
  return Buffer.concat([h, body]);
}
const f4 = (values: number[]): Uint8Array => new Uint8Array(Float32Array.from(values).buffer);
const i8 = (values: number[]): Uint8Array => new Uint8Array(BigInt64Array.from(values.map(BigInt)).buffer);

/** Sample i of an in-memory uint8 source (CHW). */
function sample(s: Source, i: number): number[] {
  expect(s.kind).toBe('array');
  const a = s as ArraySource;
  const size = a.sampleShape.reduce((x, y) => x * y, 1);
  return [...a.data.subarray(i * size, (i + 1) * size)];
}

async function rejects(p: Promise<unknown>, path: string, what: RegExp): Promise<DataError> {
  const e = await p.then(
    () => null,
    (err: unknown) => err,
  );
  expect(e).toBeInstanceOf(DataError);
  const msg = (e as Error).message;
  expect(msg).toContain(path);
  expect(msg).toMatch(what);
  return e as DataError;
}

// Image A, 2x2 RGB (HWC): red, green / blue, (10, 20, 30).
//   luma (R*19595 + G*38470 + B*7471 + 0x8000) >> 16: 76, 150 / 29, 18.
//   Resize to 1x1 (bilinear, 2 -> 1 averages both pixels with weight 1/2, rounding half up per pass):
//     grey: rows (76+150)/2 = 113, (29+18)/2 = 23.5 -> 24; then (113+24)/2 = 68.5 -> 69.
//     RGB:  R rows 127.5 -> 128, 5; (128+5)/2 = 66.5 -> 67.  G rows 128, 10 -> 69.  B rows 0, 142.5 -> 143 -> 71.5 -> 72.
// Image B, 2x2 RGB, every pixel (200, 100, 50): luma 124 (8172318 >> 16).
const A_HWC = [255, 0, 0, 0, 255, 0, 0, 0, 255, 10, 20, 30];
const B_HWC = [200, 100, 50, 200, 100, 50, 200, 100, 50, 200, 100, 50];
const A_CHW = [255, 0, 0, 10, 0, 255, 0, 20, 0, 0, 255, 30];
const B_CHW = [200, 200, 200, 200, 100, 100, 100, 100, 50, 50, 50, 50];
const hwcToChw = (hwc: number[]): number[] => [0, 1, 2].flatMap((c) => [0, 1, 2, 3].map((p) => hwc[p * 3 + c]!));
const RGB = { channels: 3, height: 2, width: 2 } as const;
const GREY1 = { channels: 1, height: 1, width: 1 } as const;
const RGB1 = { channels: 3, height: 1, width: 1 } as const;

describe('conversion rule', () => {
  it('RGB -> grey is Pillow convert("L") fixed-point luma; RGBA ignores alpha', () => {
    expect([...rgbToLuma(Uint8Array.from(A_HWC), 4, 3)]).toEqual([76, 150, 29, 18]);
    expect([...rgbToLuma(Uint8Array.from([200, 100, 50, 0, 255, 255, 255, 7]), 2, 4)]).toEqual([124, 255]);
  });

  it('channels first, then Resize([H, W]); grey -> RGB replicates; bilinear up-sampling 1x2 -> 1x4', () => {
    const out = new Uint8Array(3);
    convertPixels(Uint8Array.from(A_HWC), 2, 2, 3, RGB1, out, 0);
    expect([...out]).toEqual([67, 69, 72]);
    const grey = new Uint8Array(1);
    convertPixels(Uint8Array.from(A_HWC), 2, 2, 3, GREY1, grey, 0);
    expect([...grey]).toEqual([69]);
    // 2 -> 4 wide: output centres 0.25, 0.75, 1.25, 1.75 take weights (1), (3/4, 1/4), (1/4, 3/4), (1).
    const up = new Uint8Array(12);
    convertPixels(Uint8Array.from([0, 100]), 2, 1, 1, { channels: 3, height: 1, width: 4 }, up, 0);
    expect([...up]).toEqual([0, 25, 75, 100, 0, 25, 75, 100, 0, 25, 75, 100]);
  });

  it('layout rule: a lone channel axis decides; both: the square reading; neither: refused unless named', () => {
    expect(arrayGeometry([5, 28, 28], undefined, 'f')).toMatchObject({ c: 1, h: 28, w: 28, layout: 'CHW' });
    expect(arrayGeometry([5, 3, 32, 32], undefined, 'f')).toMatchObject({ c: 3, h: 32, w: 32, layout: 'CHW' });
    expect(arrayGeometry([5, 32, 32, 4], undefined, 'f')).toMatchObject({ c: 4, h: 32, w: 32, layout: 'HWC' });
    expect(arrayGeometry([5, 4, 4, 3], undefined, 'f')).toMatchObject({ c: 3, h: 4, w: 4, layout: 'HWC' });
    expect(arrayGeometry([5, 3, 32, 3], 'NCHW', 'f')).toMatchObject({ c: 3, h: 32, w: 3, layout: 'CHW' });
    expect(() => arrayGeometry([5, 3, 32, 3], undefined, 'amb.npy')).toThrow(/amb\.npy.*cannot tell whether shape \(5, 3, 32, 3\) is NCHW/);
    expect(() => arrayGeometry([5, 3, 3, 3], undefined, 'f')).toThrow(DataError);
    expect(() => arrayGeometry([5, 32, 32, 2], undefined, 'two.npy')).toThrow(/two\.npy.*no channel axis/);
  });
});

describe('openImageSet: formats round-trip to the expected pixels', () => {
  it('a folder of PNGs (RGB, grey, RGBA, grey+alpha; nested; other files ignored) at native size and converted', async () => {
    const raw = (hwc: number[], ch: 1 | 2 | 3 | 4): Buffer => png(2, 2, ch, Uint8Array.from(hwc));
    const root = folder('pngs', {
      'a.png': raw(A_HWC, 3),
      'b/b.png': raw(B_HWC, 3),
      'c.png': raw([0, 100, 200, 255], 1),
      'd.png': raw([10, 20, 30, 0, 40, 50, 60, 9, 70, 80, 90, 200, 1, 2, 3, 255], 4),
      'e.png': raw([7, 0, 8, 50, 9, 99, 10, 255], 2),
      'notes.txt': new TextEncoder().encode('not an image'),
    });
    // Order: a folder's files sorted, then its sub-folders: a, c, d, e, b/b.
    const s = await openImageSet(root, RGB);
    expect(s).toMatchObject({ kind: 'array', length: 5, sampleShape: [3, 2, 2], labels: null, layout: 'CHW', dtype: 'uint8' });
    expect(sample(s, 0)).toEqual(A_CHW);
    expect(sample(s, 1)).toEqual([0, 100, 200, 255, 0, 100, 200, 255, 0, 100, 200, 255]);
    expect(sample(s, 2)).toEqual([10, 40, 70, 1, 20, 50, 80, 2, 30, 60, 90, 3]); // alpha dropped, not composited
    expect(sample(s, 3)).toEqual([7, 8, 9, 10, 7, 8, 9, 10, 7, 8, 9, 10]);
    expect(sample(s, 4)).toEqual(B_CHW);
    const g = await openImageSet(root, GREY1);
    expect(g.sampleShape).toEqual([1, 1, 1]);
    // grey c: rows (0+100)/2 = 50, (200+255)/2 = 227.5 -> 228; (50+228)/2 = 139.
    expect([0, 1, 4].map((i) => sample(g, i)[0])).toEqual([69, 139, 124]);
    const c = await openImageSet(root, RGB1);
    expect(sample(c, 0)).toEqual([67, 69, 72]);
    expect(sample(c, 1)).toEqual([139, 139, 139]);
  });

  it('a JPEG folder decodes to the encoded colour (lossy: within 3 levels)', async () => {
    const flat = Buffer.from(Uint8Array.from({ length: 8 * 8 * 3 }, (_, i) => [200, 100, 50][i % 3]!));
    const jpg = await sharp(flat, { raw: { width: 8, height: 8, channels: 3 } }).jpeg({ quality: 95 }).toBuffer();
    const root = folder('jpegs', { 'x.jpg': jpg, 'y.JPEG': jpg });
    const s = await openImageSet(root, { channels: 3, height: 4, width: 4 });
    expect(s.length).toBe(2);
    const px = sample(s, 1);
    for (let c = 0; c < 3; c++) for (let p = 0; p < 16; p++) expect(Math.abs(px[c * 16 + p]! - [200, 100, 50][c]!)).toBeLessThanOrEqual(3);
  });

  it('a big RGB folder can be lazy: an ImageFilesSource whose decode gives the same pixels', async () => {
    const root = folder('lazy', { 'a.png': png(2, 2, 3, Uint8Array.from(A_HWC)) });
    const s = await openImageSet(root, RGB1, { lazy: true });
    expect(s).toMatchObject({ kind: 'images', length: 1, sampleShape: [3, 1, 1], labels: null });
    if (s.kind !== 'images') throw new Error('lazy');
    const out = new Uint8Array(3);
    await decodeImageInto(s.files[0]!, s.decode, out, 1, 1);
    expect([...out]).toEqual([67, 69, 72]);
    const auto = await openImageSet(root, RGB1, { lazyBytes: 2 });
    expect(auto.kind).toBe('images');
  });

  it('IDX, plain and gzipped, grey (N, H, W) to RGB and to a new size', async () => {
    const body = Uint8Array.from([0, 100, 7, 8]);
    for (const [name, bytes] of [
      ['x-images-idx3-ubyte', idx(0x08, [2, 1, 2], body)],
      ['x.idx3-ubyte.gz', gzipSync(idx(0x08, [2, 1, 2], body))],
      ['x.gz', gzipSync(idx(0x08, [2, 1, 2], body))],
    ] as const) {
      const p = write(name, bytes);
      const s = await openImageSet(p, { channels: 3, height: 1, width: 4 });
      expect(s.length).toBe(2);
      expect(sample(s, 0)).toEqual([0, 25, 75, 100, 0, 25, 75, 100, 0, 25, 75, 100]);
      const same = await openImageSet(p, { channels: 1, height: 1, width: 2 });
      expect(sample(same, 1)).toEqual([7, 8]);
    }
    // float64 IDX in [0, 1]
    const fl = Buffer.alloc(16);
    [0, 1].forEach((v, i) => fl.writeDoubleBE(v, i * 8));
    const s = await openImageSet(write('f.idx', idx(0x0e, [1, 1, 2], fl)), { channels: 1, height: 1, width: 2 });
    expect(sample(s, 0)).toEqual([0, 255]);
  });

  it('.npy uint8 NHWC, NCHW, NHW; a uint8 file already at the target is read lazily by offset', async () => {
    const nhwc = write('nhwc.npy', npy('|u1', [2, 2, 2, 3], Uint8Array.from([...A_HWC, ...B_HWC])));
    const s = await openImageSet(nhwc, RGB, { lazy: false });
    expect(sample(s, 0)).toEqual(A_CHW);
    expect(sample(s, 1)).toEqual(B_CHW);
    const lazy = await openImageSet(nhwc, RGB);
    expect(lazy).toMatchObject({ kind: 'npy', layout: 'HWC', dtype: 'uint8', length: 2, sampleShape: [3, 2, 2], labels: null });
    if (lazy.kind !== 'npy') throw new Error('lazy');
    expect([...readFileSync(nhwc).subarray(lazy.dataOffset, lazy.dataOffset + 12)]).toEqual(A_HWC);

    const nchw = write('nchw.npy', npy('|u1', [2, 3, 2, 2], Uint8Array.from([...A_CHW, ...B_CHW])));
    expect(sample(await openImageSet(nchw, RGB1), 0)).toEqual([67, 69, 72]);
    expect(sample(await openImageSet(nchw, GREY1), 1)).toEqual([124]);

    const nhw = write('nhw.npy', npy('|u1', [1, 1, 2], Uint8Array.from([0, 100])));
    expect(sample(await openImageSet(nhw, { channels: 1, height: 1, width: 4 }), 0)).toEqual([0, 25, 75, 100]);
    // NHWC with 4 channels: alpha dropped
    const rgba = write('rgba.npy', npy('|u1', [1, 1, 1, 4], Uint8Array.from([200, 100, 50, 3])));
    expect(sample(await openImageSet(rgba, GREY1), 0)).toEqual([124]);
    expect(sample(await openImageSet(rgba, RGB1), 0)).toEqual([200, 100, 50]);
  });

  it('.npy float32 in [0, 1] (x 255, rounded), float "-1..1", int64 levels, big-endian, Fortran order', async () => {
    const levels = [0, 1, 127, 128, 254, 255];
    const p = write('f.npy', npy('<f4', [1, 1, 6], f4(levels.map((v) => v / 255))));
    expect(sample(await openImageSet(p, { channels: 1, height: 1, width: 6 }), 0)).toEqual(levels);
    const t = write('t.npy', npy('<f4', [1, 1, 3], f4([-1, 0, 1])));
    // (v + 1) / 2 * 255: 0, 127.5 -> 128, 255
    expect(sample(await openImageSet(t, { channels: 1, height: 1, width: 3 }, { floatRange: '-1..1' }), 0)).toEqual([0, 128, 255]);
    const q = write('q.npy', npy('<i8', [1, 1, 3], i8([0, 9, 255])));
    expect(sample(await openImageSet(q, { channels: 1, height: 1, width: 3 }), 0)).toEqual([0, 9, 255]);
    const be = Buffer.alloc(12);
    [0.5, 0, 1].forEach((v, i) => be.writeFloatBE(v, i * 4));
    const b = write('be.npy', npy('>f4', [1, 1, 3], be));
    expect(sample(await openImageSet(b, { channels: 1, height: 1, width: 3 }), 0)).toEqual([128, 0, 255]);
    // Fortran order (N, H, W) = (1, 2, 2): memory holds column-major [a00, a10, a01, a11]
    const fo = write('fo.npy', npy('|u1', [1, 2, 2], Uint8Array.from([1, 3, 2, 4]), true));
    expect(sample(await openImageSet(fo, { channels: 1, height: 2, width: 2 }), 0)).toEqual([1, 2, 3, 4]);
  });

  it('.npz: member "x" (stored or deflated), else the first member; NHW, NCHW, NHWC', async () => {
    const members = (deflate: boolean) => [
      { name: 'other.npy', data: npy('|u1', [1, 1, 1], Uint8Array.from([9])), deflate },
      { name: 'x.npy', data: npy('|u1', [2, 2, 2, 3], Uint8Array.from([...A_HWC, ...B_HWC])), deflate },
    ];
    for (const deflate of [false, true]) {
      const p = write(`x${deflate}.npz`, zip(members(deflate)));
      const s = await openImageSet(p, RGB, { lazy: false });
      expect(s.name).toBe(`${p}[x]`);
      expect(sample(s, 0)).toEqual(A_CHW);
      expect(sample(s, 1)).toEqual(B_CHW);
    }
    const stored = await openImageSet(write('lazy.npz', zip(members(false))), RGB);
    expect(stored.kind).toBe('npy');
    const nchw = write('nchw.npz', zip([{ name: 'arr_0.npy', data: npy('<f4', [1, 3, 2, 2], f4(A_CHW.map((v) => v / 255))) }]));
    expect(sample(await openImageSet(nchw, RGB1), 0)).toEqual([67, 69, 72]);
    const nhw = write('nhw.npz', zip([{ name: 'arr_0.npy', data: npy('|u1', [1, 1, 2], Uint8Array.from([0, 100])), deflate: true }]));
    expect(sample(await openImageSet(nhw, { channels: 3, height: 1, width: 4 }), 0)).toEqual([0, 25, 75, 100, 0, 25, 75, 100, 0, 25, 75, 100]);
  });
});

describe('openImageSet: bad input is a DataError naming the path', () => {
  it('missing path, unknown extension, a lone image, an empty folder, a folder of non-images', async () => {
    const missing = join(tmp.dir, 'nope', 'x.npy');
    await rejects(openImageSet(missing, RGB), missing, /no such file or folder.*\.npy or a \.npz/);
    const txt = write('data.csv', new Uint8Array(4));
    await rejects(openImageSet(txt, RGB), txt, /unknown file type '\.csv': expected a folder of images/);
    const lone = write('one.png', png(1, 1, 1, Uint8Array.from([3])));
    await rejects(openImageSet(lone, RGB), lone, /pass the folder/);
    const empty = folder('empty', {});
    mkdirSync(empty);
    await rejects(openImageSet(empty, RGB), empty, /no image files .* it is empty/);
    const other = folder('other', { 'a.npy': new Uint8Array(3) });
    await rejects(openImageSet(other, RGB), other, /pass an array file itself/);
  });

  it('a corrupt PNG names the file', async () => {
    const good = png(2, 2, 3, Uint8Array.from(A_HWC));
    const root = folder('corrupt', { 'a.png': good, 'b.png': good.subarray(0, good.length - 20) });
    await rejects(openImageSet(root, RGB), join(root, 'b.png'), /failed to decode/);
  });

  it('a truncated or padded .npy, a truncated IDX, an empty array', async () => {
    const full = npy('|u1', [2, 2, 2, 3], new Uint8Array(24));
    const cut = write('cut.npy', full.subarray(0, full.length - 5));
    await rejects(openImageSet(cut, RGB), cut, /truncated \.npy file: .*shape \(2, 2, 2, 3\).*24 bytes of data, but only 19/);
    const long = write('long.npy', Buffer.concat([full, Buffer.alloc(3)]));
    await rejects(openImageSet(long, RGB), long, /3 bytes after/);
    const gz = write('cut-idx3-ubyte.gz', gzipSync(idx(0x08, [2, 2, 2], new Uint8Array(5))));
    await rejects(openImageSet(gz, RGB), gz, /truncated IDX data/);
    const tgz = write('data.tar.gz', gzipSync(Buffer.from('not idx at all')));
    await rejects(openImageSet(tgz, RGB), tgz, /not an IDX file.*a \.gz must be a gzipped IDX file/);
    const none = write('none.npy', npy('|u1', [0, 2, 2], new Uint8Array(0)));
    await rejects(openImageSet(none, RGB), none, /holds no images/);
    const bool = write('bool.npy', npy('|b1', [1, 1, 1], new Uint8Array(1)));
    await rejects(openImageSet(bool, RGB), bool, /not an image dtype/);
  });

  it('values out of range: floats outside [0, 1], NaN, integers above 255; the message hints the fix', async () => {
    const big = write('big.npy', npy('<f4', [1, 1, 2], f4([0.5, 200])));
    await rejects(openImageSet(big, RGB), big, /sample 0, element 1 is 200: float images must hold values in \[0, 1\]; levels 0\.\.255 should be saved as uint8/);
    const neg = write('neg.npy', npy('<f4', [2, 1, 1], f4([0, -0.5])));
    await rejects(openImageSet(neg, RGB), neg, /sample 1, element 0 is -0\.5.*floatRange '-1\.\.1'/);
    const nan = write('nan.npy', npy('<f4', [1, 1, 1], f4([Number.NaN])));
    await rejects(openImageSet(nan, RGB), nan, /is NaN/);
    const wide = write('wide.npy', npy('<i8', [1, 1, 1], i8([256])));
    await rejects(openImageSet(wide, RGB), wide, /integer images must hold levels 0\.\.255/);
    const bad = write('bad.npy', npy('<f4', [1, 1, 1], f4([0])));
    await rejects(openImageSet(bad, { channels: 2 as 3, height: 1, width: 1 }), bad, /target must have channels 1 or 3/);
  });
});

describe('openLabelledImageSet: the user in-distribution', () => {
  it('a class-folder tree: sorted names are the classes; native geometry is the common size, grey unless colour', async () => {
    const g = (v: number): Buffer => png(2, 2, 1, Uint8Array.from([v, v, v, v]));
    const root = folder('tree', { 'dog/b.png': g(2), 'dog/sub/c.png': g(3), 'cat/a.png': g(1), 'cat/odd.png': png(4, 2, 1, new Uint8Array(8).fill(5)), 'loose.png': g(9) });
    const set = await openLabelledImageSet(root);
    expect(set).toMatchObject({ classes: ['cat', 'dog'], namedClasses: true, channels: 1, height: 2, width: 2 });
    expect([...set.source.labels!]).toEqual([0, 0, 1, 1]);
    expect(set.source.classes).toEqual(['cat', 'dog']);
    expect([0, 1, 2, 3].map((i) => sample(set.source, i))).toEqual([
      [1, 1, 1, 1],
      [5, 5, 5, 5], // 4x2 squashed to 2x2
      [2, 2, 2, 2],
      [3, 3, 3, 3],
    ]);
    const rgb = await openLabelledImageSet(root, { target: RGB1 });
    expect(rgb).toMatchObject({ channels: 3, height: 1, width: 1 });
    expect(sample(rgb.source, 2)).toEqual([2, 2, 2]);
    const colour = folder('colour', { 'a/x.png': g(1), 'b/y.png': png(2, 2, 3, Uint8Array.from(A_HWC)) });
    expect((await openLabelledImageSet(colour)).channels).toBe(3);
  });

  it('an IDX pair: the labels beside by MNIST naming (plain or .gz), or IMAGES,LABELS', async () => {
    const dir = fresh('mnist');
    mkdirSync(dir);
    const imgs = idx(0x08, [3, 1, 2], Uint8Array.from([0, 100, 1, 2, 3, 4]));
    const labs = idx(0x08, [3], Uint8Array.from([2, 0, 1]));
    writeFileSync(join(dir, 'train-images-idx3-ubyte.gz'), gzipSync(imgs));
    writeFileSync(join(dir, 'train-labels-idx1-ubyte'), labs);
    const set = await openLabelledImageSet(join(dir, 'train-images-idx3-ubyte.gz'));
    expect(set).toMatchObject({ classes: ['0', '1', '2'], namedClasses: false, channels: 1, height: 1, width: 2 });
    expect([...set.source.labels!]).toEqual([2, 0, 1]);
    expect(sample(set.source, 2)).toEqual([3, 4]);
    writeFileSync(join(dir, 'imgs.idx3-ubyte.gz'), gzipSync(imgs));
    writeFileSync(join(dir, 'labs.idx1-ubyte.gz'), gzipSync(labs));
    const pair = await openLabelledImageSet(`${join(dir, 'imgs.idx3-ubyte.gz')},${join(dir, 'labs.idx1-ubyte.gz')}`, { target: { channels: 3, height: 1, width: 4 } });
    expect(sample(pair.source, 0)).toEqual([0, 25, 75, 100, 0, 25, 75, 100, 0, 25, 75, 100]);
    await rejects(openLabelledImageSet(join(dir, 'imgs.idx3-ubyte.gz')), join(dir, 'imgs.idx3-ubyte.gz'), /not named like MNIST.*IMAGES,LABELS/);
    writeFileSync(join(dir, 't10k-images-idx3-ubyte'), imgs);
    await rejects(openLabelledImageSet(join(dir, 't10k-images-idx3-ubyte')), join(dir, 't10k-images-idx3-ubyte'), /no labels file beside it.*t10k-labels-idx1-ubyte/);
    writeFileSync(join(dir, 'short-labels'), idx(0x08, [2], Uint8Array.from([0, 1])));
    await rejects(openLabelledImageSet(`${join(dir, 't10k-images-idx3-ubyte')},${join(dir, 'short-labels')}`), join(dir, 'short-labels'), /2 labels for the 3 images/);
  });

  it('an .npz with x and y (y int64), checked lengths and members; a .npy has no labels', async () => {
    const x = npy('|u1', [2, 2, 2, 3], Uint8Array.from([...A_HWC, ...B_HWC]));
    const p = write('xy.npz', zip([{ name: 'x.npy', data: x }, { name: 'y.npy', data: npy('<i8', [2], i8([1, 0])), deflate: true }]));
    const set = await openLabelledImageSet(p, { lazy: false });
    expect(set).toMatchObject({ classes: ['0', '1'], channels: 3, height: 2, width: 2 });
    expect([...set.source.labels!]).toEqual([1, 0]);
    expect(sample(set.source, 0)).toEqual(A_CHW);
    const lazy = await openLabelledImageSet(p);
    expect(lazy.source).toMatchObject({ kind: 'npy', layout: 'HWC', classes: ['0', '1'] });
    expect([...lazy.source.labels!]).toEqual([1, 0]);
    const mis = write('mis.npz', zip([{ name: 'x.npy', data: x }, { name: 'y.npy', data: npy('|u1', [3], Uint8Array.from([0, 1, 2])) }]));
    await rejects(openLabelledImageSet(mis), mis, /3 labels for the 2 images/);
    const noY = write('noy.npz', zip([{ name: 'x.npy', data: x }]));
    await rejects(openLabelledImageSet(noY), noY, /needs members x \(images\) and y \(labels\).*has: x/);
    const fy = write('fy.npz', zip([{ name: 'x.npy', data: x }, { name: 'y.npy', data: npy('<f4', [2], f4([0, 1])) }]));
    await rejects(openLabelledImageSet(fy), fy, /labels must be integers/);
    const plain = write('x.npy', x);
    await rejects(openLabelledImageSet(plain), plain, /holds no labels.*numpy\.savez/);
  });

  it('train and test must agree: geometry, class folders, label range', async () => {
    const g = (v: number, w = 2): Buffer => png(w, 2, 1, new Uint8Array(2 * w).fill(v));
    const train = folder('train', { 'a/1.png': g(1), 'b/2.png': g(2) });
    const test = folder('test', { 'a/1.png': g(3), 'b/2.png': g(4) });
    const both = await openTrainTest(train, test);
    expect(both.classes).toEqual(['a', 'b']);
    expect(sample(both.test.source, 1)).toEqual([4, 4, 4, 4]);
    const wide = folder('wide', { 'a/1.png': g(3, 4), 'b/2.png': g(4, 4) });
    await rejects(openTrainTest(train, wide), wide, /1 channel\(s\) of 2x4 but the training images .* are 1 channel\(s\) of 2x2/);
    expect((await openTrainTest(train, wide, { target: { channels: 1, height: 2, width: 2 } })).test.width).toBe(2);
    const other = folder('other', { 'a/1.png': g(3), 'c/2.png': g(4) });
    await rejects(openTrainTest(train, other), other, /missing \[b\], extra \[c\]/);
    const tr = await openLabelledImageSet(train);
    const many = write('many.npz', zip([{ name: 'x.npy', data: npy('|u1', [1, 2, 2], new Uint8Array(4)) }, { name: 'y.npy', data: npy('|u1', [1], Uint8Array.from([4])) }]));
    const te = await openLabelledImageSet(many);
    expect(() => checkTrainTest(tr, te)).toThrow(/many\.npz.*test labels go up to class 4 but the training set .* has 2 classes/);
  });
});

describe('the sources feed the DataLoader', () => {
  it('array, lazy .npy (HWC) and lazy image-file sources give the same batch (x / 255, CHW)', async () => {
    const nhwc = write('feed.npy', npy('|u1', [2, 2, 2, 3], Uint8Array.from([...A_HWC, ...B_HWC])));
    const root = folder('feed', { 'a.png': png(2, 2, 3, Uint8Array.from(A_HWC)), 'b.png': png(2, 2, 3, Uint8Array.from(B_HWC)) });
    const expected = [...A_CHW, ...B_CHW];
    for (const source of [await openImageSet(nhwc, RGB, { lazy: false }), await openImageSet(nhwc, RGB), await openImageSet(root, RGB, { lazy: true })]) {
      const loader = new DataLoader({ source, batchSize: 2, shuffle: false, workers: 0 });
      try {
        const batches = [];
        for await (const b of loader.epoch(0)) batches.push({ x: [...b.x].map((v) => Math.round(v * 255)), y: [...b.y], shape: b.shape });
        expect(batches, source.kind).toEqual([{ x: expected, y: [-1, -1], shape: [2, 3, 2, 2] }]);
      } finally {
        await loader.close();
      }
    }
  });
});
