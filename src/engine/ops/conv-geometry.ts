/**
 * A 2-D convolution's geometry (NCHW): the options, their validation, and the sizes every
 * convolution kernel is specialised on. Its own file so the generic passes (ops/conv.ts) and
 * the software-adapter ones (simd8/) import it without importing each other.
 */
import { OpError } from '../errors.ts';

export type Pair = number | readonly [number, number];
export type ConvActivation = 'relu' | 'leakyRelu' | 'tanh' | null;

export interface Conv2dOptions {
  stride?: Pair;
  padding?: Pair;
  dilation?: Pair;
  groups?: number;
  /** Activation fused into the epilogue (its gradient is taken from the output). */
  activation?: ConvActivation;
  /** Slope of 'leakyRelu' (default 0.01, PyTorch's). */
  negativeSlope?: number;
}

/** Everything a convolution's kernels are specialised on. */
export interface ConvGeometry {
  n: number;
  c: number;
  h: number;
  w: number;
  oc: number;
  kh: number;
  kw: number;
  sh: number;
  sw: number;
  ph: number;
  pw: number;
  dh: number;
  dw: number;
  groups: number;
  oh: number;
  ow: number;
}


function pair(op: string, name: string, v: Pair | undefined, dflt: number, min: number): [number, number] {
  const p: [number, number] = v === undefined ? [dflt, dflt] : typeof v === 'number' ? [v, v] : [v[0], v[1]];
  if (p.length !== 2 || !p.every((d) => Number.isInteger(d) && d >= min)) {
    throw new OpError(op, `${name} must be an integer >= ${min} or a pair of them, got ${JSON.stringify(v)}`);
  }
  return p;
}

export const fmt = (s: readonly number[]): string => `[${s.join(', ')}]`;

/** Validates shapes and options and returns the geometry (no kernel runs on bad input). */
export function convGeometry(op: string, xShape: readonly number[], wShape: readonly number[], opts: Conv2dOptions = {}): ConvGeometry {
  if (xShape.length !== 4) throw new OpError(op, `input must be 4-D (N, C, H, W), got shape ${fmt(xShape)}`);
  if (wShape.length !== 4) throw new OpError(op, `weight must be 4-D (C_out, C_in/groups, kH, kW), got shape ${fmt(wShape)}`);
  const [sh, sw] = pair(op, 'stride', opts.stride, 1, 1);
  const [ph, pw] = pair(op, 'padding', opts.padding, 0, 0);
  const [dh, dw] = pair(op, 'dilation', opts.dilation, 1, 1);
  const groups = opts.groups ?? 1;
  const [n, c, h, w] = xShape;
  const [oc, cig, kh, kw] = wShape;
  if (!Number.isInteger(groups) || groups < 1) throw new OpError(op, `groups must be a positive integer, got ${groups}`);
  if (c % groups !== 0 || oc % groups !== 0) {
    throw new OpError(op, `input channels (${c}) and output channels (${oc}) must both be divisible by groups (${groups}); input ${fmt(xShape)}, weight ${fmt(wShape)}`);
  }
  if (cig * groups !== c) {
    throw new OpError(op, `input ${fmt(xShape)} has ${c} channels but weight ${fmt(wShape)} expects ${cig * groups} (${cig} per group x ${groups} groups)`);
  }
  if (kh < 1 || kw < 1 || oc < 1) throw new OpError(op, `weight ${fmt(wShape)} has an empty dimension`);
  const ekh = dh * (kh - 1) + 1;
  const ekw = dw * (kw - 1) + 1;
  if (ekh > h + 2 * ph || ekw > w + 2 * pw) {
    throw new OpError(op, `kernel ${kh}x${kw} (dilation ${dh}x${dw}, effective ${ekh}x${ekw}) is larger than the padded input ${h + 2 * ph}x${w + 2 * pw} (input ${fmt(xShape)}, padding ${ph}x${pw})`);
  }
  const oh = Math.floor((h + 2 * ph - ekh) / sh) + 1;
  const ow = Math.floor((w + 2 * pw - ekw) / sw) + 1;
  return { n, c, h, w, oc, kh, kw, sh, sw, ph, pw, dh, dw, groups, oh, ow };
}

