/**
 * Spectral normalisation of a weight (kernels/spectral.wgsl), as torch.nn.utils.spectral_norm:
 * the weight is viewed as a matrix [shape[0], rest]; each training forward runs one power
 * iteration that updates the state vectors u and v in place, then returns W / sigma with
 * sigma = u . (W v). The gradient treats u and v as constants (PyTorch's behaviour).
 */
import { Tensor, empty } from '../tensor.ts';
import { record } from '../autograd.ts';
import { OpError } from '../errors.ts';
import { dispatch, grid1d, kernel, f32Bits } from './launch.ts';
import { contiguousCopy } from './movement.ts';

export interface SpectralNormOptions {
  /** Run the power iteration (training); evaluation uses u and v as they are. Default true. */
  training?: boolean;
  /** Guard of the normalisations (PyTorch's default 1e-12). */
  eps?: number;
  /** Power iterations per forward (PyTorch's default 1). */
  powerIterations?: number;
}

const fmt = (s: readonly number[]): string => `[${s.join(', ')}]`;

function params(h: number, k: number, n: number, eps = 0): Uint32Array {
  const b = new Uint32Array(4);
  b[0] = h;
  b[1] = k;
  b[2] = n;
  b[3] = f32Bits(eps);
  return b;
}

function flat(t: Tensor): Tensor {
  return t.isContiguous && t.offset === 0 ? t : contiguousCopy(t);
}

/** W / sigma(W), updating u [shape[0]] and v [numel / shape[0]] in place when training. */
export function spectralNormWeight(w: Tensor, u: Tensor, v: Tensor, opts: SpectralNormOptions = {}): Tensor {
  const op = 'spectralNormWeight';
  w.storageFor(op);
  u.storageFor(op);
  v.storageFor(op);
  if (w.rank < 1 || w.size === 0 || w.dtype !== 'f32') throw new OpError(op, `weight must be a non-empty f32 tensor, got ${w.dtype} ${fmt(w.shape)}`);
  const h = w.shape[0];
  const k = w.size / h;
  for (const [t, len, name] of [[u, h, 'u'], [v, k, 'v']] as const) {
    if (t.dtype !== 'f32' || t.rank !== 1 || t.shape[0] !== len || !t.isContiguous || t.offset !== 0) {
      throw new OpError(op, `${name} must be a contiguous f32 vector of length ${len} with its own storage for weight ${fmt(w.shape)}, got ${t.dtype} ${fmt(t.shape)}`);
    }
  }
  const iters = opts.training === false ? 0 : (opts.powerIterations ?? 1);
  if (!Number.isInteger(iters) || iters < 0) throw new OpError(op, `powerIterations must be a non-negative integer, got ${iters}`);
  const eps = opts.eps ?? 1e-12;
  const wf = flat(w);
  const sigma = empty([1]);
  const pb = params(h, k, w.size, eps);
  for (let it = 0; it < Math.max(iters, 1); it++) {
    dispatch(kernel('spectral', 'power_iter', { constants: { DO_POWER: iters > 0 ? 1 : 0 } }), [u.bufferFor(op), v.bufferFor(op), sigma.bufferFor(op), wf.bufferFor(op)], pb, [1, 1, 1]);
  }
  const out = empty(w.shape);
  dispatch(kernel('spectral', 'sn_scale'), [out.bufferFor(op), wf.bufferFor(op), sigma.bufferFor(op)], pb, grid1d(w.size));
  if (wf !== w) wf.dispose();
  // The backward needs this step's u and v: save copies (the state moves on at the next forward).
  const uu = contiguousCopy(u);
  const vv = contiguousCopy(v);
  const result = record(op, out, [w], [out, sigma, uu, vv], (g, [wsn, sg, us, vs]) => {
    const gf = flat(g);
    const c = empty([1]);
    dispatch(kernel('spectral', 'sn_dot'), [c.bufferFor(op), gf.bufferFor(op), wsn.bufferFor(op)], pb, [1, 1, 1]);
    const dw = empty(wsn.shape);
    dispatch(kernel('spectral', 'sn_bwd'), [dw.bufferFor(op), gf.bufferFor(op), c.bufferFor(op), sg.bufferFor(op), us.bufferFor(op), vs.bufferFor(op)], pb, grid1d(w.size));
    c.dispose();
    if (gf !== g) gf.dispose();
    return [dw];
  });
  sigma.dispose();
  uu.dispose();
  vv.dispose();
  return result;
}
