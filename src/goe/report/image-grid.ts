/**
 * PNG grids of images (the paper's Fig. 1: real training images beside generated outliers), laid
 * out and encoded by sharp (libvips): tiles are composited from raw pixels, enlarged with the
 * nearest-neighbour kernel so every sample pixel stays a flat square, and labels are SVG text
 * rendered by librsvg.
 *
 * Geometry, in output pixels (s = scale, p = padding, L = label height or 0):
 *   panel width  = s * (p + columns * (W + p)),  height = L + s * (p + rows * (H + p))
 *   tile (r, c)  top-left = (s * (p + c * (W + p)),  L + s * (p + r * (H + p)))
 * Panels of a multi-panel figure sit side by side, `gap` pixels apart, top-aligned.
 */
import sharp, { type OverlayOptions } from 'sharp';
import { DataLoader, Rng, permutation, subset, type Source } from '../../data/index.ts';

/** uint8 images in NCHW order, C = 1 (grey) or 3 (RGB). */
export interface ImageBatch {
  images: Uint8Array;
  shape: readonly [number, number, number, number];
}

export interface GridOptions {
  columns: number;
  /** Output pixels per image pixel (integer, default 2). */
  scale?: number;
  /** Background pixels between and around tiles, before scaling (default 2). */
  padding?: number;
  /** Label drawn above the grid. */
  title?: string;
  /** Background RGB (default white). */
  background?: readonly [number, number, number];
}

export interface Panel extends ImageBatch {
  label: string;
}

/** Height of a label strip, in output pixels. */
export const LABEL_HEIGHT = 24;
const FONT_SIZE = 14;
const WHITE = [255, 255, 255] as const;

function checkBatch(b: ImageBatch, what: string): void {
  const [n, c, h, w] = b.shape;
  if (!(c === 1 || c === 3)) throw new RangeError(`${what}: images need 1 or 3 channels, got ${c}`);
  if (n < 1 || h < 1 || w < 1) throw new RangeError(`${what}: empty image batch (${b.shape.join('x')})`);
  if (b.images.length !== n * c * h * w) throw new RangeError(`${what}: shape ${b.shape.join('x')} needs ${n * c * h * w} bytes, got ${b.images.length}`);
}

/** Sample i as interleaved RGB (grey replicated), the layout sharp's raw input takes. */
function tileRgb(b: ImageBatch, i: number): Buffer {
  const [, c, h, w] = b.shape;
  const plane = h * w;
  const base = i * c * plane;
  const out = Buffer.alloc(plane * 3);
  for (let k = 0; k < plane; k++) {
    for (let ch = 0; ch < 3; ch++) out[k * 3 + ch] = b.images[base + (c === 1 ? 0 : ch) * plane + k]!;
  }
  return out;
}

function escapeXml(text: string): string {
  return text.replace(/[<>&"']/g, (ch) => `&#${ch.charCodeAt(0)};`);
}

/** A label strip as SVG, for librsvg. */
function labelSvg(text: string, width: number): Buffer {
  return Buffer.from(
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${LABEL_HEIGHT}">` +
      `<text x="${width / 2}" y="${LABEL_HEIGHT - 7}" text-anchor="middle" font-family="DejaVu Sans, sans-serif" font-size="${FONT_SIZE}" fill="#000">${escapeXml(text)}</text></svg>`,
  );
}

interface RawImage {
  data: Buffer;
  width: number;
  height: number;
}

/** One grid (and its label) as raw RGB. */
async function gridRaw(b: ImageBatch, opts: GridOptions, what: string): Promise<RawImage> {
  checkBatch(b, what);
  const [n, , h, w] = b.shape;
  const columns = Math.min(opts.columns, n);
  const scale = opts.scale ?? 2;
  const pad = opts.padding ?? 2;
  if (!Number.isInteger(columns) || columns < 1) throw new RangeError(`${what}: columns must be a positive integer, got ${opts.columns}`);
  if (!Number.isInteger(scale) || scale < 1) throw new RangeError(`${what}: scale must be a positive integer, got ${scale}`);
  if (!Number.isInteger(pad) || pad < 0) throw new RangeError(`${what}: padding must be a non-negative integer, got ${pad}`);
  const rows = Math.ceil(n / columns);
  const width = pad + columns * (w + pad);
  const height = pad + rows * (h + pad);
  const [r, g, bl] = opts.background ?? WHITE;
  const tiles: OverlayOptions[] = Array.from({ length: n }, (_, i) => ({
    input: tileRgb(b, i),
    raw: { width: w, height: h, channels: 3 },
    left: pad + (i % columns) * (w + pad),
    top: pad + Math.floor(i / columns) * (h + pad),
  }));
  const grid = await sharp({ create: { width, height, channels: 3, background: { r, g, b: bl } } })
    .composite(tiles)
    .removeAlpha()
    .raw()
    .toBuffer();
  let image: RawImage = { data: grid, width, height };
  if (scale > 1) {
    const data = await sharp(grid, { raw: { width, height, channels: 3 } }).resize(width * scale, height * scale, { kernel: 'nearest' }).raw().toBuffer();
    image = { data, width: width * scale, height: height * scale };
  }
  if (opts.title === undefined) return image;
  const data = await sharp(image.data, { raw: { width: image.width, height: image.height, channels: 3 } })
    .extend({ top: LABEL_HEIGHT, background: { r, g, b: bl } })
    .composite([{ input: labelSvg(opts.title, image.width), left: 0, top: 0 }])
    .removeAlpha()
    .raw()
    .toBuffer();
  return { data, width: image.width, height: image.height + LABEL_HEIGHT };
}

function encodePng(image: RawImage): Promise<Buffer> {
  return sharp(image.data, { raw: { width: image.width, height: image.height, channels: 3 } }).png().toBuffer();
}

/** A grid of images as PNG (RGB, 8 bits); see the module comment for its geometry. */
export async function imageGridPng(images: Uint8Array, shape: readonly [number, number, number, number], opts: GridOptions): Promise<Buffer> {
  return encodePng(await gridRaw({ images, shape }, opts, 'imageGridPng'));
}

/**
 * Several labelled grids side by side as one PNG, e.g. real training images beside generated
 * outliers. Every panel takes `opts` (its own label replaces `opts.title`).
 */
export async function imagePanelsPng(panels: readonly Panel[], opts: GridOptions & { gap?: number }): Promise<Buffer> {
  if (panels.length === 0) throw new RangeError('imagePanelsPng: no panels');
  const raws = await Promise.all(panels.map((p) => gridRaw(p, { ...opts, title: p.label }, `imagePanelsPng panel "${p.label}"`)));
  const gap = opts.gap ?? 16;
  const width = raws.reduce((s, r) => s + r.width, 0) + gap * (raws.length - 1);
  const height = Math.max(...raws.map((r) => r.height));
  const [r, g, b] = opts.background ?? WHITE;
  let left = 0;
  const layers = raws.map((raw) => {
    const layer: OverlayOptions = { input: raw.data, raw: { width: raw.width, height: raw.height, channels: 3 }, left, top: 0 };
    left += raw.width + gap;
    return layer;
  });
  return sharp({ create: { width, height, channels: 3, background: { r, g, b } } }).composite(layers).removeAlpha().png().toBuffer();
}

/** Real training images (left) beside outliers (right): the paper's Fig. 1. */
export function realVsOutliersPng(real: ImageBatch, outliers: ImageBatch, opts: GridOptions & { gap?: number; realLabel?: string; outlierLabel?: string }): Promise<Buffer> {
  return imagePanelsPng(
    [
      { ...real, label: opts.realLabel ?? 'Training images' },
      { ...outliers, label: opts.outlierLabel ?? 'Generated outliers' },
    ],
    opts,
  );
}

export interface SampleImagesOptions {
  /** Pick a seeded random subset instead of the first `count` samples. */
  seed?: number;
  /** Value range of float32 sources, mapped to 0..255 (default [0, 1]). */
  range?: readonly [number, number];
}

/**
 * `count` images of a source (array, .npy or image files; CHW or HWC) as a uint8 NCHW batch,
 * read through the data loader on the calling thread.
 */
export async function sampleImages(source: Source, count: number, opts: SampleImagesOptions = {}): Promise<ImageBatch> {
  if (source.kind === 'array' && source.dtype === 'int32') throw new RangeError(`sampleImages: ${source.name} holds token ids, not images`);
  const n = Math.min(count, source.length);
  const indices = opts.seed === undefined ? Array.from({ length: n }, (_, i) => i) : [...permutation(source.length, new Rng(opts.seed))].slice(0, n);
  const [c, h, w] = source.sampleShape as [number, number, number];
  // the loader computes (x * scale - mean) / std; this maps the source's range onto 0..255
  const [lo, hi] = source.dtype === 'uint8' ? [0, 255] : (opts.range ?? [0, 1]);
  const std = (hi - lo) / 255;
  const loader = new DataLoader({
    source: { ...subset(source, indices), labels: null },
    batchSize: n,
    shuffle: false,
    workers: 0,
    transform: { scale: 1, mean: Array(c).fill(lo), std: Array(c).fill(std) },
  });
  const images = new Uint8Array(n * c * h * w);
  try {
    let at = 0;
    for await (const batch of loader.epoch(0)) {
      const x = batch.x as Float32Array;
      for (let i = 0; i < batch.nIn * c * h * w; i++) images[at + i] = Math.min(255, Math.max(0, Math.round(x[i]!)));
      at += batch.nIn * c * h * w;
    }
  } finally {
    await loader.close();
  }
  return { images, shape: [n, c, h, w] };
}
