import { existsSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DataError } from '../../src/data/errors.ts';
import { buildFontGlyphs, GLYPH_CHARS, GLYPH_FONT_DIRS } from '../../src/data/font-glyphs.ts';
import { buildIconImages, ICON_THEMES } from '../../src/data/icon-images.ts';
import { NpzFile } from '../../src/data/npy.ts';
import { saveNpz } from '../../src/engine/io/node-files.ts';
import { fashionMnistOodSets, loadCifar10Grey, noiseSet } from '../../src/data/offline-ood.ts';
import type { OfflineSet } from '../../src/data/offline-sets.ts';
import { DATASETS, locate } from '../../src/data/registry.ts';
import { cifarBinary, tempDir } from './helpers.ts';

const PX = 28 * 28;
const haveFonts = GLYPH_FONT_DIRS.some((d) => existsSync(join('/usr/share/fonts', d.dir)));
const haveIcons = ICON_THEMES.some((t) => existsSync(join('/usr/share/icons', t.dir)));

let tmp: { dir: string; cleanup: () => void };
let glyphs: OfflineSet;
let icons: OfflineSet;
beforeAll(async () => {
  tmp = tempDir('goe-ood-');
  if (haveFonts) glyphs = await buildFontGlyphs({ dir: tmp.dir });
  if (haveIcons) icons = await buildIconImages({ dir: tmp.dir });
}, 240_000);
afterAll(() => tmp.cleanup());

function image(s: OfflineSet, k: number): Uint8Array {
  return (s.source.data as Uint8Array).subarray(k * PX, (k + 1) * PX);
}

function stats(img: Uint8Array): { std: number; max: number; cx: number; cy: number; colFrac: (a: number, b: number) => number } {
  let m = 0;
  let s2 = 0;
  let sx = 0;
  let sy = 0;
  let max = 0;
  for (let i = 0; i < PX; i++) {
    const v = img[i]!;
    m += v;
    s2 += v * v;
    sx += v * ((i % 28) + 0.5);
    sy += v * (Math.floor(i / 28) + 0.5);
    max = Math.max(max, v);
  }
  const mean = m / PX;
  const colFrac = (a: number, b: number): number => {
    let c = 0;
    for (let i = 0; i < PX; i++) if (i % 28 >= a && i % 28 <= b) c += img[i]!;
    return c / m;
  };
  return { std: Math.sqrt(s2 / PX - mean * mean), max, cx: sx / m, cy: sy / m, colFrac };
}

function expectGreySource(s: OfflineSet): void {
  expect(s.source.kind).toBe('array');
  expect(s.source.dtype).toBe('uint8');
  expect(s.source.layout).toBe('CHW');
  expect(s.source.sampleShape).toEqual([1, 28, 28]);
  expect(s.source.labels).toBeNull();
  expect(s.source.data.length).toBe(s.source.length * PX);
  expect(s.info.count).toBe(s.source.length);
}

describe.runIf(haveFonts)('font glyphs', () => {
  it('renders 20 glyphs x 3 placements for every usable font, none blank', () => {
    expectGreySource(glyphs);
    const fonts = glyphs.info.inputs.length;
    expect(fonts).toBeGreaterThanOrEqual(10);
    expect(glyphs.source.length).toBe(fonts * GLYPH_CHARS.length * 3);
    for (let k = 0; k < glyphs.source.length; k++) {
      const st = stats(image(glyphs, k));
      expect(st.std).toBeGreaterThan(10);
      expect(st.max).toBeGreaterThan(100);
    }
  });

  it("leaves symbol fonts out (URW's Symbol and Dingbats map A-Z to other shapes)", () => {
    expect(glyphs.info.inputs.some((f) => /StandardSymbolsPS|D050000L/.test(f))).toBe(false);
  });

  it("puts an 'I' in the centre columns and MNIST placements' centre of mass at (14, 14)", () => {
    const ci = GLYPH_CHARS.indexOf('I');
    const ca = GLYPH_CHARS.indexOf('A');
    for (let f = 0; f < glyphs.info.inputs.length; f++) {
      for (let p = 0; p < 3; p++) {
        const i = stats(image(glyphs, (f * GLYPH_CHARS.length + ci) * 3 + p));
        const a = stats(image(glyphs, (f * GLYPH_CHARS.length + ca) * 3 + p));
        expect(i.colFrac(10, 17)).toBeGreaterThan(0.5);
        expect(i.colFrac(10, 17)).toBeGreaterThan(a.colFrac(10, 17));
      }
      const mnist = stats(image(glyphs, (f * GLYPH_CHARS.length + ca) * 3));
      expect(Math.abs(mnist.cx - 14)).toBeLessThan(0.5);
      expect(Math.abs(mnist.cy - 14)).toBeLessThan(0.5);
    }
  });

  it('is deterministic and reads back its .npz cache unchanged', async () => {
    expect(glyphs.info.cache).toBeDefined();
    const again = await buildFontGlyphs({ dir: tmp.dir, cache: false });
    expect(Buffer.from(again.source.data as Uint8Array).equals(Buffer.from(glyphs.source.data as Uint8Array))).toBe(true);
    const cached = await buildFontGlyphs({ dir: tmp.dir });
    expect(cached.info.cache).toBe(glyphs.info.cache);
    expect(Buffer.from(cached.source.data as Uint8Array).equals(Buffer.from(glyphs.source.data as Uint8Array))).toBe(true);
  }, 240_000);
});

describe.runIf(haveIcons)('icons', () => {
  it('gives de-duplicated, non-constant 28x28 grey icons', () => {
    expectGreySource(icons);
    expect(icons.source.length).toBeGreaterThanOrEqual(200);
    const seen = new Set<string>();
    for (let k = 0; k < icons.source.length; k++) {
      const img = image(icons, k);
      expect(stats(img).std).toBeGreaterThanOrEqual(8);
      seen.add(Buffer.from(img).toString('base64'));
    }
    expect(seen.size).toBe(icons.source.length);
  });

  it('is deterministic', async () => {
    const again = await buildIconImages({ dir: tmp.dir, cache: false });
    expect(again.info.count).toBe(icons.info.count);
    expect(Buffer.from(again.source.data as Uint8Array).equals(Buffer.from(icons.source.data as Uint8Array))).toBe(true);
  }, 120_000);
});

describe('missing system packages', () => {
  it('names the font packages to install', async () => {
    const empty = tempDir('goe-nofonts-');
    try {
      const e = await buildFontGlyphs({ root: empty.dir, dir: empty.dir }).catch((x: unknown) => x);
      expect(e).toBeInstanceOf(DataError);
      expect((e as Error).message).toMatch(/apt-get install .*fonts-liberation2.*fonts-urw-base35/);
    } finally {
      empty.cleanup();
    }
  });

  it('names the icon packages to install', async () => {
    const empty = tempDir('goe-noicons-');
    try {
      const e = await buildIconImages({ root: empty.dir, dir: empty.dir }).catch((x: unknown) => x);
      expect(e).toBeInstanceOf(DataError);
      expect((e as Error).message).toMatch(/apt-get install adwaita-icon-theme tango-icon-theme gnome-icon-theme/);
    } finally {
      empty.cleanup();
    }
  });
});

describe('noise and standard sets', () => {
  it('draws seeded noise in the OE repository scale', () => {
    const g = noiseSet('gaussian', 50, 3);
    const u = noiseSet('uniform', 50, 3);
    expectGreySource(g);
    expect(g.info.kind).toBe('noise');
    expect(Buffer.from(noiseSet('gaussian', 50, 3).source.data as Uint8Array).equals(Buffer.from(g.source.data as Uint8Array))).toBe(true);
    const mean = (s: OfflineSet): number => (s.source.data as Uint8Array).reduce((a, b) => a + b, 0) / s.source.data.length;
    expect(Math.abs(mean(g) - 127.5)).toBeLessThan(3);
    expect(Math.abs(mean(u) - 127.5)).toBeLessThan(3);
    expect(stats(image(g, 0)).std).toBeGreaterThan(50);
    expect(stats(image(g, 0)).std).toBeLessThan(70);
    expect(stats(image(u, 0)).std).toBeGreaterThan(65);
  });

  it('registers KMNIST with md5s and notMNIST with a size check', async () => {
    expect(DATASETS.kmnist!.files.map((f) => f.md5)).toEqual(['bdb82020997e1d708af4cf47b453dcf7', 'e144d726b3acfaa3e44228e80efcd344', '5c965bf0a639b31b8f53240b1b52f4d7', '7320c461ea6c1c855c0b718fb2a4b134']);
    const d = tempDir('goe-notmnist-');
    try {
      mkdirSync(join(d.dir, 'notmnist-small'));
      writeFileSync(join(d.dir, 'notmnist-small', 'notMNIST_small.tar.gz'), Buffer.alloc(100));
      await expect(locate('notmnist-small', { dir: d.dir })).rejects.toThrow(/size is 100 bytes, expected 8458043/);
    } finally {
      d.cleanup();
    }
  });

  it('converts CIFAR-10 test images to 28x28 luma', async () => {
    const d = tempDir('goe-cifar-');
    try {
      const n = 3;
      const px = new Uint8Array(n * 3072);
      for (let i = 0; i < n; i++) {
        px.fill(200, i * 3072, i * 3072 + 1024);
        px.fill(100, i * 3072 + 1024, i * 3072 + 2048);
        px.fill(i * 100, i * 3072 + 2048, (i + 1) * 3072);
      }
      mkdirSync(join(d.dir, 'cifar10', 'cifar-10-batches-bin'), { recursive: true });
      writeFileSync(join(d.dir, 'cifar10', 'cifar-10-batches-bin', 'test_batch.bin'), cifarBinary(px, [0, 1, 2]));
      const s = await loadCifar10Grey({ dir: d.dir });
      expectGreySource(s);
      for (let i = 0; i < n; i++) {
        const want = (200 * 19595 + 100 * 38470 + i * 100 * 7471 + 0x8000) >> 16;
        expect([...new Set(image(s, i))]).toEqual([want]);
      }
    } finally {
      d.cleanup();
    }
  });

  it('lists what is missing and why, and keeps noise apart', async () => {
    const sets = await fashionMnistOodSets({ dir: tmp.dir, noiseCount: 10 });
    expect(sets.noise.map((s) => s.info.name)).toEqual(['gaussian-noise', 'uniform-noise']);
    const real = sets.real.map((s) => s.info.name);
    if (haveFonts) expect(real).toContain('font-glyphs');
    if (haveIcons) expect(real).toContain('icons');
    for (const s of sets.real) expect(s.info.kind).toBe('real');
    const kmnist = sets.missing.find((m) => m.name === 'kmnist');
    expect(kmnist?.reason).toMatch(/codh\.rois\.ac\.jp/);
    expect(readdirSync(join(tmp.dir, 'offline-ood')).filter((f) => f.endsWith('.npz')).length).toBe(Number(haveFonts) + Number(haveIcons));
  }, 120_000);
});

describe('npz writer', () => {
  it('writes what NpzFile (numpy layout) reads back', async () => {
    const d = tempDir('goe-npz-');
    try {
      const x = Uint8Array.from({ length: 2 * 3 * 5 }, (_, i) => (i * 37) & 255);
      await saveNpz(join(d.dir, 'a.npz'), { x: { data: x, shape: [2, 1, 3, 5] }, y: { data: Uint8Array.of(7, 9), shape: [2] } });
      const npz = await NpzFile.open(join(d.dir, 'a.npz'));
      expect(npz.keys).toEqual(['x', 'y']);
      const ax = await npz.array('x');
      expect(ax.shape).toEqual([2, 1, 3, 5]);
      expect([...(ax.data as Uint8Array)]).toEqual([...x]);
      expect([...((await npz.array('y')).data as Uint8Array)]).toEqual([7, 9]);
      const img = await npz.images('x');
      expect(img.kind).toBe('npy');
      expect(img.sampleShape).toEqual([1, 3, 5]);
    } finally {
      d.cleanup();
    }
  });
});
