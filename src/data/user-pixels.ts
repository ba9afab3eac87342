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
