/**
 * Image geometry as torchvision does it on PIL images, written out so results match bit for bit:
 *  - resample(): Pillow's convolution resampler (Resample.c) for BILINEAR and BICUBIC: separable,
 *    antialiased when shrinking (the filter support grows with the scale), horizontal pass then
 *    vertical pass, 8-bit fixed-point coefficients with 22 fractional bits, rounding and clamping
 *    to uint8 after each pass.
 *  - resizeOutputSize(): torchvision Resize(int | [h, w]) output size (shorter side to `size`).
 *  - centerCropBox(): torchvision CenterCrop offsets (Python's round-half-to-even), with zero padding
 *    when the crop is larger than the image.
 * Images are interleaved uint8 (HWC) with any channel count.
 */

export type Interpolation = 'bilinear' | 'bicubic';

const PRECISION_BITS = 32 - 8 - 2;

interface Filter {
  support: number;
  fn: (x: number) => number;
}

const FILTERS: Record<Interpolation, Filter> = {
  bilinear: {
    support: 1,
    fn: (x) => {
      if (x < 0) x = -x;
      return x < 1 ? 1 - x : 0;
    },
  },
  bicubic: {
    support: 2,
    fn: (x) => {
      const a = -0.5;
      if (x < 0) x = -x;
      if (x < 1) return ((a + 2) * x - (a + 3)) * x * x + 1;
      if (x < 2) return (((x - 5) * x + 8) * x - 4) * a;
      return 0;
    },
  },
};

interface Coeffs {
  ksize: number;
  /** [xmin, count] per output pixel */
  bounds: Int32Array;
  /** fixed-point weights, ksize per output pixel */
  kk: Int32Array;
}

function precomputeCoeffs(inSize: number, outSize: number, filter: Filter): Coeffs {
  const scale = inSize / outSize;
  const filterscale = scale < 1 ? 1 : scale;
  const support = filter.support * filterscale;
  const ksize = Math.ceil(support) * 2 + 1;
  const bounds = new Int32Array(outSize * 2);
  const kk = new Int32Array(outSize * ksize);
  const k = new Float64Array(ksize);
  const ss = 1 / filterscale;
  for (let xx = 0; xx < outSize; xx++) {
    const center = (xx + 0.5) * scale;
    let ww = 0;
    let xmin = Math.trunc(center - support + 0.5);
    if (xmin < 0) xmin = 0;
    let xmax = Math.trunc(center + support + 0.5);
    if (xmax > inSize) xmax = inSize;
    xmax -= xmin;
    for (let x = 0; x < xmax; x++) {
      const w = filter.fn((x + xmin - center + 0.5) * ss);
      k[x] = w;
      ww += w;
    }
    for (let x = 0; x < ksize; x++) {
      let w = x < xmax ? k[x]! : 0;
      if (x < xmax && ww !== 0) w /= ww;
      // normalize_coeffs_8bpc: round half away from zero to 22 fractional bits
      kk[xx * ksize + x] = w < 0 ? Math.trunc(-0.5 + w * (1 << PRECISION_BITS)) : Math.trunc(0.5 + w * (1 << PRECISION_BITS));
    }
    bounds[xx * 2] = xmin;
    bounds[xx * 2 + 1] = xmax;
  }
  return { ksize, bounds, kk };
}

function clip8(v: number): number {
  // Pillow: arithmetic shift, then clamp to 0..255 (v always fits in int32 for 8-bit input)
  const x = v >> PRECISION_BITS;
  return x < 0 ? 0 : x > 255 ? 255 : x;
}

/**
 * Resize an interleaved uint8 image (w x h, `channels` per pixel) to outW x outH exactly as
 * Pillow's Image.resize((outW, outH), BILINEAR | BICUBIC) does.
 */
export function resample(src: Uint8Array, w: number, h: number, channels: number, outW: number, outH: number, interpolation: Interpolation = 'bilinear'): Uint8Array {
  if (outW === w && outH === h) return src;
  const filter = FILTERS[interpolation];
  const horiz = outW !== w;
  const vert = outH !== h;
  const cv = precomputeCoeffs(h, outH, filter);
  let cur = src;
  let rowOffset = 0; // first source row held in `cur` (Pillow only resamples the rows the vertical pass uses)
  if (horiz) {
    const yFirst = vert ? cv.bounds[0]! : 0;
    const yLast = vert ? cv.bounds[(outH - 1) * 2]! + cv.bounds[(outH - 1) * 2 + 1]! : h;
    cur = horizontalPass(src, w, channels, yFirst, yLast - yFirst, outW, precomputeCoeffs(w, outW, filter));
    rowOffset = yFirst;
  }
  if (!vert) return cur;
  return verticalPass(cur, (horiz ? outW : w) * channels, rowOffset, outH, cv);
}

function horizontalPass(src: Uint8Array, w: number, channels: number, yFirst: number, rows: number, outW: number, coeffs: Coeffs): Uint8Array {
  const half = 1 << (PRECISION_BITS - 1);
  const { ksize, bounds, kk } = coeffs;
  const out = new Uint8Array(outW * rows * channels);
  for (let y = 0; y < rows; y++) {
    const srow = (y + yFirst) * w * channels;
    let d = y * outW * channels;
    for (let xx = 0; xx < outW; xx++) {
      const xmin = bounds[xx * 2]!;
      const xcount = bounds[xx * 2 + 1]!;
      const kb = xx * ksize;
      let p = srow + xmin * channels;
      if (channels === 3) {
        let s0 = half;
        let s1 = half;
        let s2 = half;
        for (let x = 0; x < xcount; x++, p += 3) {
          const k = kk[kb + x]!;
          s0 += src[p]! * k;
          s1 += src[p + 1]! * k;
          s2 += src[p + 2]! * k;
        }
        out[d++] = clip8(s0);
        out[d++] = clip8(s1);
        out[d++] = clip8(s2);
      } else {
        for (let c = 0; c < channels; c++) {
          let s = half;
          for (let x = 0, q = p + c; x < xcount; x++, q += channels) s += src[q]! * kk[kb + x]!;
          out[d++] = clip8(s);
        }
      }
    }
  }
  return out;
}

function verticalPass(src: Uint8Array, stride: number, rowOffset: number, outH: number, coeffs: Coeffs): Uint8Array {
  const half = 1 << (PRECISION_BITS - 1);
  const { ksize, bounds, kk } = coeffs;
  const out = new Uint8Array(stride * outH);
  // Accumulate whole rows (sequential memory access); sums stay exact integers in doubles.
  const acc = new Float64Array(stride);
  for (let yy = 0; yy < outH; yy++) {
    const ymin = bounds[yy * 2]! - rowOffset;
    const ycount = bounds[yy * 2 + 1]!;
    const kb = yy * ksize;
    acc.fill(half);
    for (let y = 0; y < ycount; y++) {
      const k = kk[kb + y]!;
      if (k === 0) continue;
      const row = (ymin + y) * stride;
      for (let i = 0; i < stride; i++) acc[i]! += src[row + i]! * k;
    }
    const drow = yy * stride;
    for (let i = 0; i < stride; i++) out[drow + i] = clip8(acc[i]!);
  }
  return out;
}

/** torchvision Resize output size for an image of w x h: int = shorter side, [h, w] = exact. Returns [outW, outH]. */
export function resizeOutputSize(w: number, h: number, size: number | readonly [number, number]): [number, number] {
  if (typeof size !== 'number') return [size[1], size[0]];
  const [short, long] = w <= h ? [w, h] : [h, w];
  const newShort = size;
  const newLong = Math.trunc((size * long) / short);
  return w <= h ? [newShort, newLong] : [newLong, newShort];
}

/** Python 3 round(): half to even. */
export function roundHalfEven(x: number): number {
  const r = Math.round(x);
  return Math.abs(x % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

/**
 * torchvision CenterCrop: copy the centred cropW x cropH window of an interleaved image; where the crop
 * is larger than the image it is zero-padded first (left/top get the smaller half), as torchvision does.
 */
export function centerCrop(src: Uint8Array, w: number, h: number, channels: number, cropW: number, cropH: number): Uint8Array {
  if (cropW === w && cropH === h) return src;
  let img = src;
  let iw = w;
  let ih = h;
  if (cropW > w || cropH > h) {
    const padL = cropW > w ? Math.floor((cropW - w) / 2) : 0;
    const padT = cropH > h ? Math.floor((cropH - h) / 2) : 0;
    const padR = cropW > w ? Math.floor((cropW - w + 1) / 2) : 0;
    const padB = cropH > h ? Math.floor((cropH - h + 1) / 2) : 0;
    iw = w + padL + padR;
    ih = h + padT + padB;
    img = new Uint8Array(iw * ih * channels);
    for (let y = 0; y < h; y++) img.set(src.subarray(y * w * channels, (y + 1) * w * channels), ((y + padT) * iw + padL) * channels);
  }
  const top = roundHalfEven((ih - cropH) / 2);
  const left = roundHalfEven((iw - cropW) / 2);
  const out = new Uint8Array(cropW * cropH * channels);
  for (let y = 0; y < cropH; y++) {
    const s = ((y + top) * iw + left) * channels;
    out.set(img.subarray(s, s + cropW * channels), y * cropW * channels);
  }
  return out;
}
