/**
 * Multi-layer GRU (PyTorch's nn.GRU equations: the reset gate multiplies W_hn h + b_hn), forward
 * over the whole sequence and backward through time, with variable-length sequences.
 *
 * Per layer: the input projections of all T steps are ONE matmul (gi = x W_ih^T + b_ih, through
 * ops/matmul.ts, which also gives their backward); the recurrence is one fused dispatch per step
 * (kernels/gru.wgsl: h W_hh^T and the gate arithmetic together), forward and backward. A
 * persistent kernel walking the steps would need a grid-wide barrier, which WebGPU lacks; one
 * dispatch per step keeps a 100-step layer at 100 dispatches (plus 4 per layer for the GEMMs,
 * the bias sum and the transposed weight copy), not several per step.
 */
import { Tensor, empty, fromData } from '../tensor.ts';
import { record } from '../autograd.ts';
import { OpError } from '../errors.ts';
import type { Caps } from '../caps.ts';
import { caps, dispatch, kernel, subgroupDefines } from './launch.ts';
import { contiguous, contiguousCopy, copyInto, permute, reshape } from './movement.ts';

/** Row-major with offset 0 (the kernels index from element 0): `t` itself or a copy. */
function dense(t: Tensor): Tensor {
  return t.isContiguous && t.offset === 0 ? t : contiguousCopy(t);
}
import { zeros } from './creation.ts';
import { linear, matmulRaw } from './matmul.ts';
import { WINDOW_FLOATS } from '../simd8/matmul.ts';

export const GRU_MAX_HIDDEN = 1024;
const WG = 64;

function shp(t: Tensor): string {
  return `[${t.shape.join(', ')}]`;
}


/** The GRU step's kernels: 'simd8' (the software adapter's forward step: W_hh's gate blocks and
 * h_{t-1} in uniform windows) or 'shared-h' (a workgroup of WG hidden units x `batchRows` batch
 * rows with h_{t-1} in workgroup memory; the backward always runs it). */
export interface GruStepPlan {
  readonly kind: 'simd8' | 'shared-h';
  /** Batch rows per workgroup of the shared-h kernels (BB). */
  readonly batchRows: number;
}

/**
 * The step's plan for batch B and hidden size H (pure). SIMD-8 where each gate block of W_hh and
 * the 16-row-padded h_{t-1} fit a 64 KiB uniform window and H is a multiple of the 8 lanes.
 * Batch rows: 4 up to H = 256, 2 up to 512, else 1 (h rows of 4 floats per unit in workgroup
 * memory: 16 KiB, WebGPU's minimum), fewer where the adapter has less workgroup memory.
 */
export function planGruStep(B: number, H: number, c: Caps = caps()): GruStepPlan {
  const simd = c.simd8 && H % 8 === 0 && H * H <= WINDOW_FLOATS && Math.ceil(B / 16) * 16 * H <= WINDOW_FLOATS;
  let bb = H <= 256 ? 4 : H <= 512 ? 2 : 1;
  while (bb > 1 && bb * H * 16 > c.maxWorkgroupStorage) bb /= 2;
  if (bb * H * 16 > c.maxWorkgroupStorage) throw new OpError('gruRecurrence', `hidden size ${H} needs ${H * 16} bytes of workgroup memory, over this adapter's ${c.maxWorkgroupStorage}`);
  return { kind: simd ? 'simd8' : 'shared-h', batchRows: bb };
}

function batchRows(H: number): number {
  return planGruStep(1, H).batchRows;
}

function gruParams(B: number, H: number, T: number, t = 0, first = 0, parity = 0, rows = 0, cols = 0): Uint32Array {
  return Uint32Array.from([B, H, T, t, first, parity, rows, cols]);
}

/** copyInto, then disposes the temporary view handles flagged (never a caller's tensor). */
function copyThrough(dst: Tensor, src: Tensor, dstIsView: boolean, srcIsView: boolean): void {
  copyInto(dst, src);
  if (dstIsView) dst.dispose();
  if (srcIsView) src.dispose();
}

/** Sum over rows of a contiguous [rows, cols] tensor (the bias gradient). */
function colSum(x: Tensor, rows: number, cols: number): Tensor {
  const out = empty([cols]);
  dispatch(kernel('gru', 'gru_colsum', { defines: subgroupDefines(), constants: { WG } }), [out.bufferFor('gru'), x.bufferFor('gru')], gruParams(0, 0, 0, 0, 0, 0, rows, cols), [Math.ceil(cols / WG)]);
  return out;
}

/**
 * The recurrence of one layer: gi [T, B, 3H] (input projections incl. b_ih), h0 [B, H],
 * wHh [3H, H], bHh [3H], lengths (u32 [B], each <= T). Returns out [T+1, B, H]: the outputs of
 * the T steps (zeros past each sequence's length) and, last, the final state h_T (the state at
 * each sequence's own last step). Differentiable in gi, h0, wHh and bHh.
 */
export function gruRecurrence(gi: Tensor, h0: Tensor, wHh: Tensor, bHh: Tensor, lengths: Tensor): Tensor {
  const op = 'gruRecurrence';
  for (const t of [gi, h0, wHh, bHh, lengths]) t.storageFor(op);
  if (gi.rank !== 3 || gi.shape[2] % 3 !== 0) throw new OpError(op, `gi must be [T, B, 3H], got ${shp(gi)}`);
  const [T, B] = gi.shape;
  const H = gi.shape[2] / 3;
  if (h0.rank !== 2 || h0.shape[0] !== B || h0.shape[1] !== H) throw new OpError(op, `h0 must be [${B}, ${H}] for gi ${shp(gi)}, got ${shp(h0)}`);
  if (wHh.rank !== 2 || wHh.shape[0] !== 3 * H || wHh.shape[1] !== H) throw new OpError(op, `weight_hh must be [${3 * H}, ${H}], got ${shp(wHh)}`);
  if (bHh.rank !== 1 || bHh.shape[0] !== 3 * H) throw new OpError(op, `bias_hh must be [${3 * H}], got ${shp(bHh)}`);
  if (lengths.rank !== 1 || lengths.shape[0] !== B || lengths.dtype !== 'u32') throw new OpError(op, `lengths must be u32 [${B}], got ${lengths.dtype} ${shp(lengths)}`);
  if (T === 0) throw new OpError(op, `empty sequence (gi ${shp(gi)})`);
  if (H > GRU_MAX_HIDDEN) throw new OpError(op, `hidden size ${H} exceeds ${GRU_MAX_HIDDEN}`);
  if (B > 65535 * batchRows(H)) throw new OpError(op, `batch ${B} is too large`);
  const plan = planGruStep(B, H);
  const BB = plan.batchRows;
  const spec = { defines: subgroupDefines(), constants: { WG, HS: H, BB } };
  const gic = dense(gi);
  const bc = dense(bHh);
  const hs = empty([T + 1, B, H]);
  const gates = empty([T, B, 4 * H]);
  const out = empty([T + 1, B, H]);
  // h0 into hs[0]; W_hh^T so the step kernel reads weights coalesced
  copyThrough(hs.view([B, H], [H, 1], 0), h0, true, false);
  const grid: [number, number] = [Math.ceil(H / WG), Math.ceil(B / BB)];
  if (plan.kind === 'simd8') {
    // W_hh as is ([3H, H]: gate g's block at g*H*H, rows k, columns c), padded so each gate's
    // 64 KiB window stays inside the buffer; h_{t-1} ping-pongs between two 64 KiB buffers
    const w = empty([2 * H * H + WINDOW_FLOATS]);
    copyThrough(w.view([3 * H, H], [H, 1], 0), wHh, true, false);
    const pingpong = [empty([WINDOW_FLOATS]), empty([WINDOW_FLOATS])];
    copyThrough(pingpong[0].view([B, H], [H, 1], 0), h0, true, false);
    const win = (t: Tensor, floats: number) => ({ buffer: t.bufferFor(op), offset: (t.offset + floats) * 4, size: WINDOW_FLOATS * 4 });
    const step = kernel('simd8/gru', 'gru_fwd_step_simd8', { defines: subgroupDefines() });
    const fixed = [hs.bufferFor(op), gates.bufferFor(op), out.bufferFor(op), gic.bufferFor(op), win(w, 0), bc.bufferFor(op), lengths.bufferFor(op), win(w, H * H), win(w, 2 * H * H)];
    for (let t = 0; t < T; t++) {
      const [prev, next] = [pingpong[t % 2], pingpong[(t + 1) % 2]];
      dispatch(step, [...fixed, win(prev, 0), next.bufferFor(op)], gruParams(B, H, T, t, 0, 0, 16), [H / 8, Math.ceil(B / 16)]);
    }
    for (const t of [w, ...pingpong]) t.dispose();
  } else {
    const wT = empty([H, 3 * H]);
    copyThrough(wT, wHh.view([H, 3 * H], [wHh.strides[1], wHh.strides[0]], wHh.offset), false, true);
    const fwd = kernel('gru', 'gru_fwd_step', spec);
    const bufs = [hs.bufferFor(op), gates.bufferFor(op), out.bufferFor(op), gic.bufferFor(op), wT.bufferFor(op), bc.bufferFor(op), lengths.bufferFor(op)];
    for (let t = 0; t < T; t++) dispatch(fwd, bufs, gruParams(B, H, T, t), grid);
    wT.dispose();
  }
  const res = record(op, out, [gic, h0, wHh, bHh], [hs, gates, wHh, lengths], (g, [hsS, gatesS, wS, lenS]) => {
    const gc = dense(g);
    const wc = dense(wS);
    const carry = empty([2, B, H]);
    const dgi = empty([T, B, 3 * H]);
    const dgh = empty([T, B, 3 * H]);
    const bwd = kernel('gru', 'gru_bwd_step', spec);
    const bb = [carry.bufferFor(op), dgi.bufferFor(op), dgh.bufferFor(op), gc.bufferFor(op), hsS.bufferFor(op), gatesS.bufferFor(op), wc.bufferFor(op), lenS.bufferFor(op)];
    for (let s = 0; s < T; s++) {
      const t = T - 1 - s;
      dispatch(bwd, bb, gruParams(B, H, T, t, s === 0 ? 1 : 0, s % 2), grid);
    }
    const dh0 = empty([B, H]);
    copyThrough(dh0, carry.view([B, H], [H, 1], (T % 2) * B * H), false, true);
    carry.dispose();
    // dW_hh = sum_t dgh_t^T h_{t-1}: one GEMM over all steps; db_hh = column sums of dgh
    const dgh2 = dgh.view([T * B, 3 * H], [3 * H, 1], 0);
    const hprev = hsS.view([T * B, H], [H, 1], 0);
    const dW = matmulRaw(dgh2, hprev, { transA: true });
    const db = colSum(dgh, T * B, 3 * H);
    for (const t of [dgh2, hprev, dgh]) t.dispose();
    if (gc !== g) gc.dispose();
    if (wc !== wS) wc.dispose();
    return [dgi, dh0, dW, db];
  });
  hs.dispose();
  gates.dispose();
  if (gic !== gi) gic.dispose();
  if (bc !== bHh) bc.dispose();
  return res;
}

/** Rows [start, start + len) of dim 0 (a contiguous view when `t` is contiguous). */
export function narrow0(t: Tensor, start: number, len: number): Tensor {
  const op = 'narrow';
  t.storageFor(op);
  if (t.rank < 1 || start < 0 || len < 0 || start + len > t.shape[0]) throw new OpError(op, `rows [${start}, ${start + len}) outside ${shp(t)}`);
  const shape = [len, ...t.shape.slice(1)];
  const out = t.view(shape, t.strides, t.offset + start * t.strides[0]);
  const inShape = t.shape;
  return record(op, out, [t], [], (g) => {
    const full = zeros(inShape);
    copyThrough(full.view(shape, full.strides, start * full.strides[0]), g, true, false);
    return [full];
  });
}

/** Concatenation along dim 0 (a new contiguous tensor). */
export function cat0(parts: readonly Tensor[]): Tensor {
  const op = 'cat';
  if (parts.length === 0) throw new OpError(op, 'nothing to concatenate');
  const rest = parts[0].shape.slice(1);
  for (const p of parts) {
    p.storageFor(op);
    if (p.rank !== rest.length + 1 || p.shape.slice(1).some((d, i) => d !== rest[i])) {
      throw new OpError(op, `shapes ${parts.map(shp).join(', ')} differ beyond dim 0`);
    }
  }
  const rows = parts.map((p) => p.shape[0]);
  const out = empty([rows.reduce((a, r) => a + r, 0), ...rest]);
  const stride = rest.reduce((a, d) => a * d, 1);
  let off = 0;
  for (const p of parts) {
    copyThrough(out.view(p.shape, out.strides, off * stride), p, true, false);
    off += p.shape[0];
  }
  return record(op, out, parts, [], (g) => {
    let o = 0;
    return rows.map((r) => {
      const part = empty([r, ...rest]);
      copyThrough(part, g.view([r, ...rest], g.strides, g.offset + o * g.strides[0]), false, true);
      o += r;
      return part;
    });
  });
}

export interface GruLayerWeights {
  /** [3H, I] (PyTorch's weight_ih_l{k}: rows r, z, n). */
  wIh: Tensor;
  /** [3H, H] (weight_hh_l{k}). */
  wHh: Tensor;
  bIh?: Tensor | null;
  bHh?: Tensor | null;
}

export interface GruOptions {
  /** x is [B, T, I] and the output [B, T, H] (default: [T, B, I] and [T, B, H]). */
  batchFirst?: boolean;
  /** Valid length of each sequence (1..T); steps past it are padding. Default: all T. */
  lengths?: readonly number[] | null;
}

/**
 * nn.GRU's forward: x [T, B, I] (or [B, T, I] with batchFirst), h0 [L, B, H] or null (zeros).
 * Returns output [T, B, H] (or [B, T, H]; zeros at padded steps) and hN [L, B, H] (each
 * sequence's state at its own last step).
 */
export function gru(x: Tensor, h0: Tensor | null, layers: readonly GruLayerWeights[], opts: GruOptions = {}): { output: Tensor; hN: Tensor } {
  const op = 'gru';
  x.storageFor(op);
  if (x.rank !== 3 || x.dtype !== 'f32') throw new OpError(op, `input must be f32 ${opts.batchFirst ? '[B, T, I]' : '[T, B, I]'}, got ${x.dtype} ${shp(x)}`);
  if (layers.length === 0) throw new OpError(op, 'no layers');
  const [T, B] = opts.batchFirst ? [x.shape[1], x.shape[0]] : [x.shape[0], x.shape[1]];
  const H = layers[0].wHh.shape[1];
  let inSize = x.shape[2];
  layers.forEach((l, i) => {
    if (l.wIh.rank !== 2 || l.wIh.shape[0] !== 3 * H || l.wIh.shape[1] !== inSize) {
      throw new OpError(op, `weight_ih_l${i} must be [${3 * H}, ${inSize}], got ${shp(l.wIh)}`);
    }
    if (l.wHh.rank !== 2 || l.wHh.shape[0] !== 3 * H || l.wHh.shape[1] !== H) throw new OpError(op, `weight_hh_l${i} must be [${3 * H}, ${H}], got ${shp(l.wHh)}`);
    for (const [n, b] of [['bias_ih', l.bIh], ['bias_hh', l.bHh]] as const) {
      if (b && (b.rank !== 1 || b.shape[0] !== 3 * H)) throw new OpError(op, `${n}_l${i} must be [${3 * H}], got ${shp(b)}`);
    }
    inSize = H;
  });
  const L = layers.length;
  if (h0 && (h0.rank !== 3 || h0.shape[0] !== L || h0.shape[1] !== B || h0.shape[2] !== H)) {
    throw new OpError(op, `h0 must be [${L}, ${B}, ${H}], got ${shp(h0)}`);
  }
  const lens = opts.lengths ?? null;
  if (lens) {
    if (lens.length !== B) throw new OpError(op, `${lens.length} lengths for a batch of ${B}`);
    for (const n of lens) if (!Number.isInteger(n) || n < 0 || n > T) throw new OpError(op, `length ${n} outside 0..${T}`);
  }
  if (T === 0) throw new OpError(op, `empty sequence (input ${shp(x)})`);
  const lenT = fromData(Uint32Array.from(lens ?? new Array<number>(B).fill(T)), [B], 'u32');
  const tmp: Tensor[] = [lenT];
  let inp = opts.batchFirst ? permute(x, [1, 0, 2]) : x;
  if (inp !== x) tmp.push(inp);
  const finals: Tensor[] = [];
  let output: Tensor | null = null;
  for (let l = 0; l < L; l++) {
    const w = layers[l];
    const gi = linear(inp, w.wIh, w.bIh ?? undefined);
    let hl: Tensor;
    if (h0) {
      const row = narrow0(h0, l, 1);
      hl = reshape(row, [B, H]);
      tmp.push(row);
    } else {
      hl = zeros([B, H]);
    }
    const bhh = w.bHh ?? zeros([3 * H]);
    const out = gruRecurrence(gi, hl, w.wHh, bhh, lenT);
    tmp.push(gi, hl, out);
    if (!w.bHh) tmp.push(bhh);
    output = narrow0(out, 0, T);
    finals.push(narrow0(out, T, 1));
    if (l < L - 1) tmp.push(output);
    inp = output;
  }
  const hN = cat0(finals);
  for (const f of finals) f.dispose();
  let y = output as Tensor;
  if (opts.batchFirst) {
    const p = permute(y, [1, 0, 2]);
    y.dispose();
    y = p;
  }
  const yc = contiguous(y);
  if (yc !== y) y.dispose();
  for (const t of tmp) t.dispose();
  return { output: yc, hN };
}
