/**
 * Layer normalisation over the last dimension (PyTorch's F.layer_norm with normalized_shape =
 * [C]), fused forward and backward (kernels/layernorm.wgsl). The forward saves per-row mean and
 * 1/std; the backward computes dx in one kernel per row and dw/db as chunked column sums.
 */
import { Tensor, empty } from '../tensor.ts';
import { record } from '../autograd.ts';
import { OpError } from '../errors.ts';
import { dispatch, kernel, f32Bits } from './launch.ts';
import { contiguousCopy } from './movement.ts';

/** Row-major with offset 0 (kernels here index from element 0): `t` itself or a copy. */
function dense(t: Tensor): Tensor {
  return t.isContiguous && t.offset === 0 ? t : contiguousCopy(t);
}

const WG = 128;
/** Rows folded by one thread in the dw/db partial sums. */
const CHUNK = 64;

function rowGrid(rows: number): [number, number] {
  const gx = Math.min(Math.max(rows, 1), 32768);
  return [gx, Math.ceil(rows / gx)];
}

function params(rows: number, cols: number, eps: number, affine: boolean, chunk = CHUNK): Uint32Array {
  const u = new Uint32Array(8);
  u[0] = rows;
  u[1] = cols;
  u[2] = f32Bits(eps);
  u[3] = affine ? 1 : 0;
  u[4] = chunk;
  return u;
}

function shapeStr(t: Tensor): string {
  return `[${t.shape.join(', ')}]`;
}

/**
 * y = (x - mean) / sqrt(var + eps) * weight + bias over the last dimension of `x` (biased
 * variance, as PyTorch). `weight` and `bias` are [C] (both or neither).
 */
export function layerNorm(x: Tensor, weight: Tensor | null = null, bias: Tensor | null = null, eps = 1e-5): Tensor {
  const op = 'layerNorm';
  x.storageFor(op);
  if (x.dtype !== 'f32') throw new OpError(op, `expects f32 input, got ${x.dtype} of shape ${shapeStr(x)}`);
  if (x.rank < 1) throw new OpError(op, `input must have at least one dimension, got shape ${shapeStr(x)}`);
  const C = x.shape[x.rank - 1];
  if (C === 0) throw new OpError(op, `cannot normalise over an empty last dimension (shape ${shapeStr(x)})`);
  if ((weight === null) !== (bias === null)) throw new OpError(op, 'weight and bias must be given together (or neither)');
  for (const [name, t] of [['weight', weight], ['bias', bias]] as const) {
    if (!t) continue;
    t.storageFor(op);
    if (t.rank !== 1 || t.shape[0] !== C || t.dtype !== 'f32') {
      throw new OpError(op, `${name} must be f32 [${C}] for input ${shapeStr(x)}, got ${t.dtype} ${shapeStr(t)}`);
    }
  }
  if (!(eps >= 0)) throw new OpError(op, `eps must be >= 0, got ${eps}`);
  const rows = x.size / C;
  const xc = dense(x);
  const wc = weight ? dense(weight) : null;
  const bc = bias ? dense(bias) : null;
  const y = empty(x.shape);
  const mean = empty([rows]);
  const rstd = empty([rows]);
  const affine = wc !== null;
  if (rows > 0) {
    const xb = xc.bufferFor(op);
    dispatch(
      kernel('layernorm', 'ln_fwd', { constants: { WG } }),
      [y.bufferFor(op), mean.bufferFor(op), rstd.bufferFor(op), xb, wc ? wc.bufferFor(op) : xb, bc ? bc.bufferFor(op) : xb],
      params(rows, C, eps, affine),
      rowGrid(rows),
    );
  }
  const inputs = affine ? [xc, wc as Tensor, bc as Tensor] : [xc];
  const saved = affine ? [xc, mean, rstd, wc as Tensor] : [xc, mean, rstd];
  const out = record('layerNorm', y, inputs, saved, (g, s) => {
    const [xs, ms, rs] = s;
    const ws = affine ? s[3] : null;
    const gc = dense(g);
    const dx = empty(xs.shape);
    const xb = xs.bufferFor(op);
    dispatch(
      kernel('layernorm', 'ln_bwd_dx', { constants: { WG } }),
      [dx.bufferFor(op), gc.bufferFor(op), xb, ms.bufferFor(op), rs.bufferFor(op), ws ? ws.bufferFor(op) : xb],
      params(rows, C, eps, affine),
      rowGrid(rows),
    );
    if (!affine) {
      if (gc !== g) gc.dispose();
      return [dx];
    }
    const chunk = Math.max(CHUNK, Math.ceil(rows / 32768));
    const chunks = Math.ceil(rows / chunk);
    const pw = empty([chunks, C]);
    const pb = empty([chunks, C]);
    dispatch(
      kernel('layernorm', 'ln_bwd_params', { constants: { WG } }),
      [pw.bufferFor(op), pb.bufferFor(op), gc.bufferFor(op), xb, ms.bufferFor(op), rs.bufferFor(op)],
      params(rows, C, eps, affine, chunk),
      [Math.ceil(C / WG), chunks],
    );
    if (gc !== g) gc.dispose();
    const dw = empty([C]);
    const db = empty([C]);
    dispatch(
      kernel('layernorm', 'ln_fold', { constants: { WG } }),
      [dw.bufferFor(op), db.bufferFor(op), pw.bufferFor(op), pb.bufferFor(op)],
      params(rows, C, eps, affine, chunks),
      [Math.ceil(C / WG)],
    );
    pw.dispose();
    pb.dispose();
    return [dx, dw, db];
  });
  // the statistics live on in the graph node only
  mean.dispose();
  rstd.dispose();
  if (xc !== x) xc.dispose();
  if (wc && wc !== weight) wc.dispose();
  if (bc && bc !== bias) bc.dispose();
  return out;
}
