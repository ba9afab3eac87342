// Pictures of a run, decoded back: image grids (tile pixels equal the input images), ROC curves
// (the plotted curve's area is the reported AUROC, the legend prints it), score histograms
// (both populations' colours present), and writeRunFigures' files and markdown links.
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { describe, expect, it } from 'vitest';
import type { ArraySource } from '../../src/data/index.ts';
import { computeOodMetrics, evaluateOodSets } from '../../src/goe/metrics/index.ts';
import {
  LABEL_HEIGHT, histogram, imageGridPng, realVsOutliersPng, rocCurve, rocCurveSvg, sampleImages, scoreHistogramSvg, svgToPng, thinPolyline, writeRunFigures,
} from '../../src/goe/report/index.ts';
import { reportMarkdown } from '../../src/goe/train/report.ts';
import { evaluateScores, type RunScores } from '../../src/goe/train/evaluate.ts';

/** Deterministic uniform numbers in [0, 1) (mulberry32). */
function uniform(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function randomImages(n: number, c: number, h: number, w: number, seed: number): Uint8Array {
  const r = uniform(seed);
  return Uint8Array.from({ length: n * c * h * w }, () => Math.floor(r() * 256));
}

/** float32-exact normal scores with mean mu (Box-Muller). */
function normalScores(n: number, mu: number, seed: number): Float64Array {
  const r = uniform(seed);
  return Float64Array.from({ length: n }, () => Math.fround(mu + Math.sqrt(-2 * Math.log(1 - r())) * Math.cos(2 * Math.PI * r())));
}

async function decode(png: Buffer): Promise<{ data: Buffer; width: number; height: number; channels: number }> {
  const meta = await sharp(png).metadata();
  expect(meta.format).toBe('png');
  const { data, info } = await sharp(png).raw().toBuffer({ resolveWithObject: true });
  return { data, width: info.width, height: info.height, channels: info.channels };
}

/** Checks that the tile at output offset (left, top) shows image i of an NCHW batch, each pixel a scale x scale square. */
function expectTile(img: Awaited<ReturnType<typeof decode>>, left: number, top: number, scale: number, images: Uint8Array, i: number, c: number, h: number, w: number): void {
  let mismatches = 0;
  for (let y = 0; y < h * scale; y++) {
    for (let x = 0; x < w * scale; x++) {
      const at = ((top + y) * img.width + left + x) * img.channels;
      for (let ch = 0; ch < 3; ch++) {
        const want = images[((i * c + (c === 1 ? 0 : ch)) * h + Math.floor(y / scale)) * w + Math.floor(x / scale)];
        if (img.data[at + ch] !== want) mismatches++;
      }
    }
  }
  expect(mismatches).toBe(0);
}

function countDark(img: Awaited<ReturnType<typeof decode>>, top: number, bottom: number, left = 0, right = img.width): number {
  let dark = 0;
  for (let y = top; y < bottom; y++) for (let x = left; x < right; x++) if (img.data[(y * img.width + x) * img.channels]! < 100) dark++;
  return dark;
}

describe('imageGridPng', () => {
  it('lays RGB images out in rows of `columns`, scaled by nearest neighbour, on a padded background', async () => {
    const [n, c, h, w] = [5, 3, 4, 6];
    const images = randomImages(n, c, h, w, 1);
    const [columns, scale, pad] = [3, 2, 1];
    const img = await decode(await imageGridPng(images, [n, c, h, w], { columns, scale, padding: pad, background: [10, 20, 30] }));
    expect(img.width).toBe(scale * (pad + columns * (w + pad)));
    expect(img.height).toBe(scale * (pad + 2 * (h + pad)));
    expect(img.channels).toBe(3);
    for (let i = 0; i < n; i++) {
      const [r, col] = [Math.floor(i / columns), i % columns];
      expectTile(img, scale * (pad + col * (w + pad)), scale * (pad + r * (h + pad)), scale, images, i, c, h, w);
    }
    // the empty sixth cell and the padding are background
    const empty = ((scale * (pad + h + pad) + 1) * img.width + scale * (pad + 2 * (w + pad)) + 1) * 3;
    expect([...img.data.subarray(empty, empty + 3)]).toEqual([10, 20, 30]);
    expect([...img.data.subarray(0, 3)]).toEqual([10, 20, 30]);
  });

  it('replicates grey images into RGB and puts a text label above the grid', async () => {
    const [n, c, h, w] = [4, 1, 7, 5];
    const images = randomImages(n, c, h, w, 2);
    const img = await decode(await imageGridPng(images, [n, c, h, w], { columns: 4, scale: 3, padding: 2, title: 'Noise outliers' }));
    expect(img.width).toBe(3 * (2 + 4 * (w + 2)));
    expect(img.height).toBe(LABEL_HEIGHT + 3 * (2 + h + 2));
    for (let i = 0; i < n; i++) expectTile(img, 3 * (2 + i * (w + 2)), LABEL_HEIGHT + 3 * 2, 3, images, i, c, h, w);
    expect(countDark(img, 0, LABEL_HEIGHT)).toBeGreaterThan(30); // glyphs drawn by librsvg
  });

  it('rejects a shape that does not match the bytes, and 2- or 4-channel images', async () => {
    await expect(imageGridPng(new Uint8Array(10), [1, 3, 2, 2], { columns: 1 })).rejects.toThrow(/needs 12 bytes, got 10/);
    await expect(imageGridPng(new Uint8Array(16), [1, 4, 2, 2], { columns: 1 })).rejects.toThrow(/1 or 3 channels/);
  });
});

describe('realVsOutliersPng (the paper\'s Fig. 1)', () => {
  it('puts labelled training images left and outliers right, each tile the input image', async () => {
    const shape = [6, 3, 8, 8] as const;
    const real = randomImages(...shape, 3);
    const fake = randomImages(...shape, 4);
    const [scale, pad, gap] = [2, 2, 10];
    const img = await decode(await realVsOutliersPng({ images: real, shape }, { images: fake, shape }, { columns: 3, scale, padding: pad, gap }));
    const panelW = scale * (pad + 3 * (8 + pad));
    expect(img.width).toBe(2 * panelW + gap);
    expect(img.height).toBe(LABEL_HEIGHT + scale * (pad + 2 * (8 + pad)));
    const tile = (i: number) => [scale * (pad + (i % 3) * (8 + pad)), LABEL_HEIGHT + scale * (pad + Math.floor(i / 3) * (8 + pad))] as const;
    for (let i = 0; i < 6; i++) {
      expectTile(img, tile(i)[0], tile(i)[1], scale, real, i, 3, 8, 8);
      expectTile(img, panelW + gap + tile(i)[0], tile(i)[1], scale, fake, i, 3, 8, 8);
    }
    expect(countDark(img, 0, LABEL_HEIGHT, 0, panelW)).toBeGreaterThan(30);
    expect(countDark(img, 0, LABEL_HEIGHT, panelW + gap)).toBeGreaterThan(30);
  });
});

describe('sampleImages', () => {
  it('reads uint8 HWC and float32 CHW sources back as uint8 NCHW', async () => {
    const hwc = randomImages(3, 2, 2, 3, 5); // 3 samples of 2x2 pixels, 3 channels interleaved
    const src: ArraySource = { kind: 'array', name: 'hwc', length: 3, sampleShape: [3, 2, 2], layout: 'HWC', dtype: 'uint8', data: hwc, labels: null };
    const got = await sampleImages(src, 2);
    expect(got.shape).toEqual([2, 3, 2, 2]);
    for (let i = 0; i < 2; i++) for (let ch = 0; ch < 3; ch++) for (let p = 0; p < 4; p++) expect(got.images[(i * 3 + ch) * 4 + p]).toBe(hwc[(i * 4 + p) * 3 + ch]);
    const f = Float32Array.from([-1, 0, 1, 0.5]);
    const fsrc: ArraySource = { kind: 'array', name: 'f', length: 1, sampleShape: [1, 2, 2], layout: 'CHW', dtype: 'float32', data: f, labels: null };
    expect([...(await sampleImages(fsrc, 5, { range: [-1, 1] })).images]).toEqual([0, 128, 255, 191]);
  });
});

describe('ROC curves', () => {
  const inScores = normalScores(3000, 0, 11);
  const ood = normalScores(2000, 1, 12);

  it('are the tie-grouped curve whose trapezoid area is the reported AUROC, under both conventions', () => {
    const tied = [0.5, 0.5, 0.1, 0.2, 0.2, 0.9];
    for (const convention of ['ood-positive', 'in-positive'] as const) {
      for (const [a, b] of [[inScores, ood], [tied.slice(0, 3), tied.slice(2)]] as const) {
        const roc = rocCurve(a, b, { convention });
        let area = 0;
        for (let k = 1; k < roc.fpr.length; k++) area += ((roc.fpr[k]! - roc.fpr[k - 1]!) * (roc.tpr[k]! + roc.tpr[k - 1]!)) / 2;
        expect(area).toBeCloseTo(computeOodMetrics(a, b, { convention }).auroc, 12);
        expect([roc.fpr[0], roc.tpr[0], roc.fpr.at(-1), roc.tpr.at(-1)]).toEqual([0, 0, 1, 1]);
      }
    }
  });

  it('thinning keeps the ends and every dropped point within the tolerance of the kept line', () => {
    const roc = rocCurve(inScores, ood);
    const tol = 1e-3;
    const keep = thinPolyline(roc.fpr, roc.tpr, tol);
    expect(keep[0]).toBe(0);
    expect(keep.at(-1)).toBe(roc.fpr.length - 1);
    expect(keep.length).toBeLessThan(roc.fpr.length / 5);
    for (let s = 1; s < keep.length; s++) {
      const [a, b] = [keep[s - 1]!, keep[s]!];
      const [dx, dy] = [roc.fpr[b]! - roc.fpr[a]!, roc.tpr[b]! - roc.tpr[a]!];
      const len = Math.hypot(dx, dy);
      for (let i = a + 1; i < b; i++) {
        const d = Math.abs((roc.fpr[i]! - roc.fpr[a]!) * dy - (roc.tpr[i]! - roc.tpr[a]!) * dx) / len;
        expect(d).toBeLessThanOrEqual(tol);
      }
    }
  });

  it('SVG: one line path per OOD set, each legend entry printing its AUROC to the tables\' precision, small for big curves', async () => {
    const sets = [
      { name: 'SVHN', scores: ood },
      { name: 'LSUN (resize)', scores: normalScores(2500, 0.4, 13) },
      { name: 'Textures', scores: normalScores(1500, 2, 14) },
    ];
    const svg = await rocCurveSvg({ detector: 'MSP', inName: 'CIFAR-10 test', inScores, ood: sets });
    const lines = [...svg.matchAll(/<g class="mark-line role-mark[^"]*"[^>]*>(.*?)<\/g>/g)];
    expect(lines).toHaveLength(sets.length);
    for (const l of lines) expect(l[1]!.match(/<path/g)).toHaveLength(1);
    const report = evaluateOodSets(inScores, new Map(sets.map((s) => [s.name, s.scores])));
    const labels = [...svg.matchAll(/<text[^>]*>([^<]*\(AUROC [^<]*)<\/text>/g)].map((m) => m[1]);
    expect(labels).toEqual(report.rows.map((r) => `${r.outlierSet} (AUROC ${(r.auroc * 100).toFixed(2)})`));
    expect(svg).toContain('MSP: ROC, CIFAR-10 test vs each OOD set');
    expect(svg.length).toBeLessThan(60_000); // 7,500 OOD + 3,000 in-distribution scores, thinned
    const png = await decode(await svgToPng(svg, 96));
    expect(png.width).toBeGreaterThan(320);
    expect(png.height).toBeGreaterThan(240);
  });
});

describe('score histograms', () => {
  it('normalise each population to fractions that sum to one, edge bins catching the tails', () => {
    const h = histogram([-5, 0.1, 0.2, 0.3, 0.95, 7], 0, 1, 4);
    expect([...h]).toEqual([3 / 6, 1 / 6, 0, 2 / 6]);
    expect(histogram(normalScores(1000, 0, 3), -1, 1, 10).reduce((a, b) => a + b, 0)).toBeCloseTo(1, 12);
  });

  it('PNG shows the in-distribution (blue) and OOD (orange) bars in one panel per OOD set', async () => {
    const svg = await scoreHistogramSvg({
      detector: 'Energy',
      inName: 'in-distribution test',
      inScores: normalScores(2000, 0, 21),
      ood: [{ name: 'SVHN', scores: normalScores(1000, 3, 22) }, { name: 'Places', scores: normalScores(1000, -3, 23) }],
    });
    expect(svg.match(/<g class="mark-rect role-mark[^"]*"/g)).toHaveLength(2);
    expect(svg).toContain('>SVHN</text>');
    expect(svg).toContain('>Places</text>');
    const img = await decode(await svgToPng(svg, 96));
    let blue = 0;
    let orange = 0;
    for (let p = 0; p < img.width * img.height; p++) {
      const [r, g, b] = [img.data[p * img.channels]!, img.data[p * img.channels + 1]!, img.data[p * img.channels + 2]!];
      if (b > r + 40 && b > g) blue++;
      if (r > b + 60 && g > b) orange++;
    }
    expect(blue).toBeGreaterThan(2000);
    expect(orange).toBeGreaterThan(2000);
  });
});

describe('writeRunFigures', () => {
  it('writes every picture and the scores, and returns markdown whose links resolve from results.md', async () => {
    const root = mkdtempSync(join(tmpdir(), 'goe-figures-'));
    const shape = [8, 3, 8, 8] as const;
    const run: RunScores = {
      detectors: ['MSP', 'Energy'],
      in: { name: 'in-distribution test', scores: { MSP: normalScores(400, 0, 31), Energy: normalScores(400, 0, 32) }, labels: Int32Array.from({ length: 400 }, (_, i) => i % 10), predictions: Int32Array.from({ length: 400 }, (_, i) => (i % 7 === 0 ? 0 : i % 10)) },
      ood: [
        { name: 'SVHN', scores: { MSP: normalScores(300, 1, 33), Energy: normalScores(300, 1, 34) } },
        { name: 'LSUN (resize)', scores: { MSP: normalScores(200, 0.5, 35), Energy: normalScores(200, 2, 36) } },
      ],
    };
    const out = await writeRunFigures({
      dir: join(root, 'generated'),
      relativeTo: root,
      title: 'generated',
      scores: run,
      outliers: { images: randomImages(...shape, 41), shape, label: 'Generated outliers' },
      training: { images: randomImages(...shape, 42), shape },
    });
    const expected = ['outliers.png', 'outliers-vs-training.png', 'scores.npz', 'scores.npz.json', ...['MSP', 'Energy'].flatMap((d) => [`roc-${d}.svg`, `roc-${d}.png`, `hist-${d}.svg`, `hist-${d}.png`])];
    expect([...out.files].sort()).toEqual(expected.map((f) => `generated/${f}`).sort());
    for (const f of out.files) expect(existsSync(join(root, f))).toBe(true);
    const links = [...out.markdown.matchAll(/\]\(([^)]+)\)/g)].map((m) => decodeURI(m[1]!));
    for (const l of links) expect(existsSync(join(root, l))).toBe(true);
    for (const f of out.files.filter((f) => !f.endsWith('.png') && !f.endsWith('.json'))) expect(links).toContain(f);
    expect(links).toContain('generated/outliers.png');
    expect(readFileSync(join(root, 'generated', 'roc-MSP.svg'), 'utf8')).toMatch(/^<svg/);

    const evaluation = evaluateScores(run);
    const md = reportMarkdown({ experiment: 'x', description: 'd', adapter: 'a', variants: [{ outliers: 'generated', description: 'g', evaluation, figures: out.markdown }] });
    expect(md).toContain('![Generated outliers](generated/outliers.png)');
    expect(md).toContain('generated/scores.npz');
  });
});
