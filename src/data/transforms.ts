/**
 * Per-sample image transforms, fused into one pass that writes a float32 CHW sample straight into
 * the batch buffer: layout change (HWC -> CHW), scaling (uint8 / 255), per-channel normalisation,
 * torchvision-style RandomCrop(size, padding) with zero padding (padding is 0 *before*
 * normalisation, as torchvision pads the PIL image), and RandomHorizontalFlip(p = 0.5).
 */
import type { Rng } from './rng.ts';
import type { Layout } from './source.ts';

export interface ImageTransform {
  /** Per-channel mean, in the scaled units (e.g. CIFAR: [0.4914, 0.4824, 0.4467]). Default 0. */
  mean?: readonly number[];
  /** Per-channel standard deviation, in the scaled units. Default 1. */
  std?: readonly number[];
  /** Multiplier applied to raw values before normalising. Default 1/255 for uint8 samples, 1 for float32. */
  scale?: number;
  /** Random crop to `size` after zero-padding each side by `padding` (torchvision RandomCrop(size, padding)). */
  randomCrop?: { size: number | [number, number]; padding?: number };
  /** Random horizontal flip with probability 0.5. */
  hflip?: boolean;
}

/** CIFAR statistics used by the GOE paper (and most CIFAR OOD code). */
export const CIFAR_MEAN = [0.4914, 0.4824, 0.4467] as const;
export const CIFAR_STD = [0.2471, 0.2435, 0.2616] as const;
/** ImageNet statistics (torchvision). */
export const IMAGENET_MEAN = [0.485, 0.456, 0.406] as const;
export const IMAGENET_STD = [0.229, 0.224, 0.225] as const;

/** A transform compiled for one source geometry. */
export interface CompiledTransform {
  channels: number;
  inH: number;
  inW: number;
  outH: number;
  outW: number;
  padding: number;
  random: boolean;
  hflip: boolean;
  mul: Float32Array;
  add: Float32Array;
}

export function compileTransform(t: ImageTransform | null | undefined, sampleShape: readonly number[], dtype: 'uint8' | 'float32'): CompiledTransform {
  const [c, h, w] = sampleShape as [number, number, number];
  const scale = t?.scale ?? (dtype === 'uint8' ? 1 / 255 : 1);
  const mean = t?.mean ?? [];
  const std = t?.std ?? [];
  if ((mean.length !== 0 && mean.length !== c) || (std.length !== 0 && std.length !== c)) {
    throw new RangeError(`transform: mean/std have ${mean.length}/${std.length} entries for ${c} channels`);
  }
  const mul = new Float32Array(c);
  const add = new Float32Array(c);
  for (let k = 0; k < c; k++) {
    const m = mean[k] ?? 0;
    const s = std[k] ?? 1;
    if (!(s > 0)) throw new RangeError(`transform: std[${k}] = ${s} must be positive`);
    mul[k] = scale / s;
    add[k] = -m / s;
  }
  let outH = h;
  let outW = w;
  let padding = 0;
  if (t?.randomCrop !== undefined) {
    const size = t.randomCrop.size;
    [outH, outW] = typeof size === 'number' ? [size, size] : size;
    padding = t.randomCrop.padding ?? 0;
    if (outH > h + 2 * padding || outW > w + 2 * padding) {
      throw new RangeError(`transform: crop ${outH}x${outW} is larger than the padded ${h + 2 * padding}x${w + 2 * padding} sample`);
    }
  }
  return { channels: c, inH: h, inW: w, outH, outW, padding, random: t?.randomCrop !== undefined, hflip: t?.hflip === true, mul, add };
}

/** Draw this sample's crop offset and flip (in this order, always the same number of draws). */
export function drawAugment(t: CompiledTransform, rng: Rng): { top: number; left: number; flip: boolean } {
  let top = 0;
  let left = 0;
  if (t.random) {
    top = rng.int(t.inH + 2 * t.padding - t.outH + 1) - t.padding;
    left = rng.int(t.inW + 2 * t.padding - t.outW + 1) - t.padding;
  }
  const flip = t.hflip ? rng.next() < 0.5 : false;
  return { top, left, flip };
}

/**
 * Write one sample as float32 CHW: out[c, y, x] = src[c, y + top, x' + left] * mul[c] + add[c], where
 * x' = x or (outW - 1 - x) when flipped, and positions outside the source read as 0 (zero padding).
 */
export function writeSample(
  t: CompiledTransform,
  src: Uint8Array | Float32Array,
  srcOffset: number,
  layout: Layout,
  dst: Float32Array,
  dstOffset: number,
  top: number,
  left: number,
  flip: boolean,
): void {
  const { channels: C, inH: H, inW: W, outH, outW, mul, add } = t;
  // Output columns whose source column is inside the image.
  const xLo = Math.max(0, -left);
  const xHi = Math.min(outW, W - left);
  for (let c = 0; c < C; c++) {
    const m = mul[c]!;
    const a = add[c]!;
    for (let oy = 0; oy < outH; oy++) {
      const sy = oy + top;
      const drow = dstOffset + (c * outH + oy) * outW;
      if (sy < 0 || sy >= H || xLo >= xHi) {
        for (let ox = 0; ox < outW; ox++) dst[drow + ox] = a;
        continue;
      }
      // Columns [xLo, xHi) of the unflipped window are inside; flipping mirrors them.
      // (Short padding runs are written in loops: TypedArray.fill costs more per call than it saves.)
      const lo = flip ? outW - xHi : xLo;
      const hi = flip ? outW - xLo : xHi;
      for (let ox = 0; ox < lo; ox++) dst[drow + ox] = a;
      for (let ox = hi; ox < outW; ox++) dst[drow + ox] = a;
      if (layout === 'CHW') {
        const srow = srcOffset + (c * H + sy) * W + left;
        if (!flip) {
          for (let ox = lo; ox < hi; ox++) dst[drow + ox] = src[srow + ox]! * m + a;
        } else {
          const base = srow + outW - 1;
          for (let ox = lo; ox < hi; ox++) dst[drow + ox] = src[base - ox]! * m + a;
        }
      } else {
        const srow = srcOffset + (sy * W + left) * C + c;
        if (!flip) {
          for (let ox = lo; ox < hi; ox++) dst[drow + ox] = src[srow + ox * C]! * m + a;
        } else {
          const base = srow + (outW - 1) * C;
          for (let ox = lo; ox < hi; ox++) dst[drow + ox] = src[base - ox * C]! * m + a;
        }
      }
    }
  }
}
