import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import sharp from 'sharp';
import { afterAll, describe, expect, it } from 'vitest';
import {
  centerCrop,
  DataLoader,
  decodeImage,
  decodeImageInto,
  imageFiles,
  imageFolder,
  resample,
  resizeOutputSize,
  roundHalfEven,
  verifyImages,
} from '../../src/data/index.ts';
import { bytes, png, tempDir } from './helpers.ts';

interface PilRef {
  w: number;
  h: number;
  image: string;
  resized: { w: number; h: number; interpolation: 'bilinear' | 'bicubic'; data: string }[];
  resize12_crop10: string;
  png: string;
  jpeg: string;
  jpeg_decoded: string;
}
const ref = JSON.parse(readFileSync(join(import.meta.dirname, 'fixtures', 'pil-reference.json'), 'utf8')) as PilRef;
const b64 = (s: string): Uint8Array => new Uint8Array(Buffer.from(s, 'base64'));
const tmp = tempDir();
afterAll(tmp.cleanup);

describe('torchvision / Pillow geometry', () => {
  it('resample() matches Pillow BILINEAR and BICUBIC bit for bit (down, up, one axis)', () => {
    const img = b64(ref.image);
    for (const r of ref.resized) {
      const got = resample(img, ref.w, ref.h, 3, r.w, r.h, r.interpolation);
      expect(Buffer.from(got).equals(Buffer.from(b64(r.data))), `${r.interpolation} ${r.w}x${r.h}`).toBe(true);
    }
  });

  it('Resize(int) keeps the aspect ratio on the shorter side; CenterCrop rounds half to even and pads', () => {
    expect(resizeOutputSize(500, 375, 256)).toEqual([341, 256]);
    expect(resizeOutputSize(375, 500, 256)).toEqual([256, 341]);
    expect(resizeOutputSize(100, 100, 32)).toEqual([32, 32]);
    expect(resizeOutputSize(10, 20, [5, 7])).toEqual([7, 5]);
    expect([0.5, 1.5, 2.5, -0.5, 3].map(roundHalfEven)).toEqual([0, 2, 2, -0, 3]);
    // 1-channel 5x1 image cropped to 2 wide: (5 - 2) / 2 = 1.5 rounds to 2
    expect([...centerCrop(Uint8Array.from([1, 2, 3, 4, 5]), 5, 1, 1, 2, 1)]).toEqual([3, 4]);
    // 2x2 padded to 4x3: left pad 1, top pad 0, bottom pad 1
    expect([...centerCrop(Uint8Array.from([1, 2, 3, 4]), 2, 2, 1, 4, 3)]).toEqual([0, 1, 2, 0, 0, 3, 4, 0, 0, 0, 0, 0]);
  });

  it('decoding a PNG and applying Resize(12) + CenterCrop(10) gives torchvision-on-PIL pixels', async () => {
    const f = join(tmp.dir, 'ref.png');
    writeFileSync(f, b64(ref.png));
    const out = new Uint8Array(10 * 10 * 3);
    await decodeImageInto(f, { resize: 12, centerCrop: 10 }, out, 10, 10);
    expect(Buffer.from(out).equals(Buffer.from(b64(ref.resize12_crop10)))).toBe(true);
  });

  it("resampler 'libvips' keeps torchvision's geometry, with pixels close to Pillow's", async () => {
    const f = join(tmp.dir, 'ref-vips.png');
    writeFileSync(f, b64(ref.png));
    const out = new Uint8Array(10 * 10 * 3);
    await decodeImageInto(f, { resize: 12, centerCrop: 10, resampler: 'libvips' }, out, 10, 10);
    const want = b64(ref.resize12_crop10);
    let sum = 0;
    let max = 0;
    for (let i = 0; i < want.length; i++) {
      sum += Math.abs(want[i]! - out[i]!);
      max = Math.max(max, Math.abs(want[i]! - out[i]!));
    }
    expect(sum / want.length).toBeLessThan(1); // measured here: mean 0.24, max 1
    expect(max).toBeLessThanOrEqual(3);
  });

  it('JPEG decoding agrees with Pillow (libjpeg-turbo in both)', async () => {
    const f = join(tmp.dir, 'ref.jpg');
    writeFileSync(f, b64(ref.jpeg));
    const d = await decodeImage(f);
    expect([d.width, d.height]).toEqual([64, 48]);
    const want = b64(ref.jpeg_decoded);
    let maxDiff = 0;
    for (let i = 0; i < want.length; i++) maxDiff = Math.max(maxDiff, Math.abs(want[i]! - d.data[i]!));
    expect(maxDiff).toBeLessThanOrEqual(1); // measured here: 0 (bit-exact)
  });

  it('grey and RGBA PNGs become RGB as PIL convert("RGB") does (replicate grey, drop alpha)', async () => {
    const g = join(tmp.dir, 'grey.png');
    writeFileSync(g, png(2, 1, 1, Uint8Array.from([10, 200])));
    expect([...(await decodeImage(g)).data]).toEqual([10, 10, 10, 200, 200, 200]);
    const a = join(tmp.dir, 'rgba.png');
    writeFileSync(a, png(1, 1, 4, Uint8Array.from([1, 2, 3, 0])));
    expect([...(await decodeImage(a)).data]).toEqual([1, 2, 3]);
  });
});

describe('image folders', () => {
  const root = join(tmp.dir, 'folder');
  const mk = (rel: string, seed: number, w = 6, h = 4): void => {
    mkdirSync(join(root, rel, '..'), { recursive: true });
    writeFileSync(join(root, rel), png(w, h, 3, bytes(w * h * 3, seed)));
  };
  mk('zebra/b.png', 1);
  mk('zebra/a.png', 2);
  mk('ant/x.PNG', 3);
  mk('ant/sub/y.png', 4);
  mk('ant/.hidden.png', 5);
  writeFileSync(join(root, 'ant', 'notes.txt'), 'not an image');

  it('class per sub-folder: sorted classes, sorted files, nested files, dotfiles and other extensions skipped', async () => {
    const s = await imageFolder(root, { size: [4, 6] });
    expect(s.classes).toEqual(['ant', 'zebra']);
    expect(s.files.map((f) => f.slice(root.length + 1))).toEqual(['ant/sub/y.png', 'ant/x.PNG', 'zebra/a.png', 'zebra/b.png']);
    expect([...s.labels!]).toEqual([0, 0, 1, 1]);
    expect(s.sampleShape).toEqual([3, 4, 6]);
    const mapped = await imageFolder(root, { size: [4, 6], classIndex: { ant: 310, zebra: 340 } });
    expect([...mapped.labels!]).toEqual([310, 310, 340, 340]);
    await expect(imageFolder(root, { size: [4, 6], classIndex: { ant: 1 } })).rejects.toThrow(/sub-folder 'zebra' has no entry in classIndex/);
  });

  it('flat folders are unlabelled (or carry one label); a fixed output size is required', async () => {
    const s = await imageFolder(join(root, 'ant'), { structure: 'flat', resize: 3, centerCrop: 3 });
    expect(s.files.length).toBe(2);
    expect(s.labels).toBeNull();
    expect((await imageFolder(join(root, 'ant'), { structure: 'flat', size: [4, 6], label: 7 })).labels![1]).toBe(7);
    await expect(imageFolder(root, { resize: 32 })).rejects.toThrow(/images of different sizes cannot be batched/);
    await expect(imageFolder(join(tmp.dir, 'nope'), { size: [2, 2] })).rejects.toThrow(/nope: cannot list image folder/);
  });

  it('images that fail to decode: a named error, or skipped and reported', async () => {
    const bad = join(tmp.dir, 'bad');
    mkdirSync(bad, { recursive: true });
    const good = await sharp(Buffer.from(bytes(8 * 8 * 3, 11)), { raw: { width: 8, height: 8, channels: 3 } }).jpeg().toBuffer();
    writeFileSync(join(bad, '0.jpg'), good);
    writeFileSync(join(bad, '1.jpg'), good.subarray(0, good.length >> 1)); // truncated
    writeFileSync(join(bad, '2.jpg'), Buffer.from('plain text, not a JPEG'));
    writeFileSync(join(bad, '3.jpg'), good);
    await expect(decodeImageInto(join(bad, '2.jpg'), { size: [8, 8] }, new Uint8Array(192), 8, 8)).rejects.toThrow(/2\.jpg: image failed to decode/);
    const wrongSize = join(bad, '..', 'big.png');
    writeFileSync(wrongSize, png(9, 8, 3, bytes(216)));
    await expect(decodeImageInto(wrongSize, { size: [8, 8] }, new Uint8Array(192), 8, 8)).rejects.toThrow(/big\.png: image is 9x8 .* samples are 8x8/);

    const src = await imageFolder(bad, { structure: 'flat', size: [8, 8] });
    const report = await verifyImages(src);
    expect(report.ok).toBe(2);
    expect(report.bad.map((b) => b.index)).toEqual([1, 2]);
    expect(report.bad[0]!.reason).toMatch(/1\.jpg: image failed to decode/);

    const strict = new DataLoader({ source: src, batchSize: 4, shuffle: false, workers: 0 });
    await expect(async () => {
      for await (const _ of strict.epoch(0)) void _;
    }).rejects.toThrow(/1\.jpg: image failed to decode/);
    await strict.close();

    const seen: string[] = [];
    const lenient = new DataLoader({ source: { ...src, onError: 'skip' }, batchSize: 4, shuffle: false, workers: 1, onSkip: (s) => seen.push(...s.map((x) => x.file)) });
    for await (const b of lenient.epoch(0)) {
      expect(b.skipped.map((s) => s.index)).toEqual([1, 2]);
      // samples 1 and 2 are replaced by the next good one (3); the shape is intact
      expect(b.shape).toEqual([4, 3, 8, 8]);
      expect(b.x.subarray(192, 384)).toEqual(b.x.subarray(576, 768));
    }
    expect(seen.map((f) => f.slice(bad.length + 1)).sort()).toEqual(['1.jpg', '2.jpg']);
    expect(lenient.skipped.length).toBe(2);
    await lenient.close();
  });

  it('explicit file lists (e.g. ImageNet validation with a label file)', () => {
    const s = imageFiles(['/a.jpg', '/b.jpg'], Int32Array.from([5, 6]), { resize: 256, centerCrop: 224 });
    expect(s.sampleShape).toEqual([3, 224, 224]);
    expect(() => imageFiles(['/a.jpg'], Int32Array.from([1, 2]), { size: [2, 2] })).toThrow(/2 labels for 1 files/);
  });
});
