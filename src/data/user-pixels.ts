/**
 * The conversion rule for the user's images: every image, whatever its format, becomes the target's
 * channels and size as PIL + torchvision would make it:
 *  1. channels: alpha is dropped; grey -> RGB replicates the channel (PIL convert('RGB'));
 *     RGB -> grey is ITU-R 601-2 luma in Pillow's fixed point (convert('L')):
 *     L = (R*19595 + G*38470 + B*7471 + 0x8000) >> 16, i.e. R*299/1000 + G*587/1000 + B*114/1000 rounded.
 *  2. size: Resize([H, W]), a bilinear squash to exactly H x W (aspect ratio not kept), with Pillow's
 *     antialiasing resampler (resize.ts, bit-exact).
 * Output is uint8 CHW. Replicating grey after the resize gives the same pixels as before it (the
 * resampler treats channels independently), so grey images are resized once, not three times.
 */
import { resample } from './resize.ts';
import type { ArraySource } from './source.ts';

/** The channels and size every image of a set is converted to. */
export interface ImageTarget {
  channels: 1 | 3;
  height: number;
  width: number;
}

/** Pillow's convert('L') of interleaved pixels with `stride` channels (3: RGB, 4: RGBA; alpha ignored). */
export function rgbToLuma(src: Uint8Array, pixels: number, stride: 3 | 4): Uint8Array {
  const out = new Uint8Array(pixels);
  for (let i = 0, p = 0; i < pixels; i++, p += stride) {
    out[i] = (src[p]! * 19595 + src[p + 1]! * 38470 + src[p + 2]! * 7471 + 0x8000) >>> 16;
  }
  return out;
}

/** Interleaved RGBA -> RGB (alpha dropped, not composited, as PIL's convert('RGB')). */
function dropAlpha(src: Uint8Array, pixels: number): Uint8Array {
  const out = new Uint8Array(pixels * 3);
  for (let i = 0, p = 0, q = 0; i < pixels; i++, p += 4, q += 3) {
    out[q] = src[p]!;
    out[q + 1] = src[p + 1]!;
    out[q + 2] = src[p + 2]!;
  }
  return out;
}

/**
 * Convert one interleaved uint8 image (w x h, `channels` 1, 3 or 4 per pixel) to `target` and write
 * it as CHW into `out` at `offset` (target.channels * target.height * target.width values).
 */
export function convertPixels(src: Uint8Array, w: number, h: number, channels: 1 | 3 | 4, target: ImageTarget, out: Uint8Array, offset: number): void {
  const pixels = w * h;
  let img = src;
  let c: 1 | 3 = channels === 1 ? 1 : 3;
  if (target.channels === 1 && channels !== 1) {
    img = rgbToLuma(src, pixels, channels);
    c = 1;
  } else if (channels === 4) img = dropAlpha(src, pixels);
  const { height: H, width: W } = target;
  const sized = resample(img, w, h, c, W, H, 'bilinear');
  const plane = H * W;
  if (c === 1) {
    for (let k = 0; k < target.channels; k++) out.set(sized.subarray(0, plane), offset + k * plane);
    return;
  }
  for (let i = 0, p = 0; i < plane; i++, p += 3) {
    out[offset + i] = sized[p]!;
    out[offset + plane + i] = sized[p + 1]!;
    out[offset + 2 * plane + i] = sized[p + 2]!;
  }
}

/**
 * An in-memory uint8 image source converted to `target` by the rule above (the source itself when
 * it already has the target's shape): OOD sets made for one in-distribution (1x28x28 glyphs,
 * 3x32x32 CIFAR) tested against another.
 */
export function convertSource(src: ArraySource, target: ImageTarget): ArraySource {
  const [c, h, w] = src.sampleShape as [number, number, number];
  if (c === target.channels && h === target.height && w === target.width) return src;
  if (src.dtype !== 'uint8' || (c !== 1 && c !== 3 && c !== 4)) throw new RangeError(`${src.name}: only uint8 images with 1, 3 or 4 channels convert, got ${src.dtype} [${src.sampleShape.join(', ')}]`);
  const size = target.channels * target.height * target.width;
  const data = new Uint8Array(new SharedArrayBuffer(src.length * size));
  const hwc = new Uint8Array(c * h * w);
  const plane = h * w;
  const input = src.data as Uint8Array;
  for (let i = 0; i < src.length; i++) {
    const at = i * c * plane;
    if (src.layout === 'HWC') hwc.set(input.subarray(at, at + c * plane));
    else for (let p = 0; p < plane; p++) for (let k = 0; k < c; k++) hwc[p * c + k] = input[at + k * plane + p]!;
    convertPixels(hwc, w, h, c as 1 | 3 | 4, target, data, i * size);
  }
  return { ...src, sampleShape: [target.channels, target.height, target.width], layout: 'CHW', data };
}
