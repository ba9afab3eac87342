/**
 * Matrix products (kernels/matmul.wgsl): `matmul` with PyTorch's semantics for ranks 1..n (batch
 * dimensions broadcast), `linear` as PyTorch's F.linear, and `matmulRaw` (no autograd, an explicit
 * variant) for the benchmark and the tests.
 *
 * Operands are strided views: a transposed view (last two strides swapped) maps to the kernel's
 * TRANS flag, a broadcast batch to a zero batch stride; only other layouts are copied first.
 * Bias and activation are fused into the kernel's epilogue. When a gradient is needed and an
 * activation is asked for, the kernel writes the pre-activation z (bias included), a second small
 * kernel applies the activation, and z is saved for the backward (act'(z)).
 */
import { Tensor, empty, numel } from '../tensor.ts';
import { record, isGradEnabled } from '../autograd.ts';
import { OpError } from '../errors.ts';
import { caps, dispatch, grid1d, kernel, subgroupDefines, f32Bits } from './launch.ts';
import { contiguous, reshape } from './movement.ts';
import { sumToShape, sum } from './reduce.ts';
import { matmulSimd8 } from '../simd8/matmul.ts';
import { subgroupRowsFit, type Caps } from '../caps.ts';
import { ACTIVATION_CODES } from './activation.ts';

export type Activation = 'none' | 'relu' | 'gelu' | 'gelu_tanh' | 'leaky_relu' | 'tanh' | 'sigmoid';
/** The product's kernels by what they are: 'naive' (one thread per output), 'tiled' (16x16
 * tiles), 'reg4x4' (64x64 tiles, 4x4 per thread), 'reg8x8' (128x128, 8x8 and vec4 loads; falls
 * back to reg4x4 when the operands are not 4-aligned), 'reg16x8' (reg8x8's tiles with 16x8 per
 * thread, its tile following the product), 'skinny' (a few rows: threads own output columns and
 * split K, 8 rows per block), 'simd8' (the software adapter's layout: packed operands,
 * simd8/matmul.ts; where its packed operands exceed the adapter's texture limits it runs
 * reg16x8, or reg4x4 when unaligned). Each kind is the entry point of that name in
 * kernels/matmul.wgsl (bench/NOTES.md's older sections call them v1..v7 in this order). naive and
 * tiled never win (bench/NOTES.md) and stay as references for the tests. */
export type MatmulKind = 'naive' | 'tiled' | 'reg4x4' | 'reg8x8' | 'reg16x8' | 'skinny' | 'simd8';
const KINDS: readonly MatmulKind[] = ['naive', 'tiled', 'reg4x4', 'reg8x8', 'reg16x8', 'skinny', 'simd8'];

const ACT_CODE: Record<Activation, number> = ACTIVATION_CODES;
const TILE: Record<MatmulKind, [number, number]> = { naive: [16, 16], tiled: [16, 16], reg4x4: [64, 64], reg8x8: [128, 128], reg16x8: [128, 128], skinny: [8, 64], simd8: [16, 32] };
const MAX_BATCH_DIMS = 4;

/** The template values and the SG_ROWS override for this device (see kernels/matmul.wgsl). */
function subgroupSpec(): { defines: Record<string, string>; sgRows: number } {
  // reg8x8 / reg16x8 rows are 16 threads wide
  return { defines: subgroupDefines(), sgRows: subgroupRowsFit(caps(), 16) ? 1 : 0 };
}

export interface MatmulOptions {
  /** Use a's last two dimensions swapped (a is stored [..., K, M]). */
  transA?: boolean;
  /** Use b's last two dimensions swapped (b is stored [..., N, K], as a Linear weight). */
  transB?: boolean;
  /** Added before the activation: length N (one per output column), or length M with biasPerRow. */
  bias?: Tensor;
  biasPerRow?: boolean;
  activation?: Activation;
  /** Slope for x < 0 of leaky_relu (PyTorch's default 0.01). */
  negativeSlope?: number;
}

export interface MatmulRawOptions extends MatmulOptions {
  /** Force a kernel (tests and benchmarks); default: the cached plan `planMatmul`. */
  variant?: MatmulKind;
  /** Force a split-K factor (>= 1). */
  splits?: number;
  /** reg8x8 / reg16x8: use the subgroup-uniform row fragment (default: where subgroups hold <= 16 threads);
   * false runs the portable path (what an adapter without subgroups gets). */
  subgroupRows?: boolean;
  /** skinny: threads per output column splitting K (1, 2, 4, ..., 64); default: `skinnyLanes`. */
  skinnyLanes?: number;
}

/** The choice for one problem: which kernel, and how many K slices; benchmarks report `kind`. */
export interface MatmulPlan {
  readonly kind: MatmulKind;
  readonly splits: number;
}

/** One line: the kind and the split. */
export function describeMatmulPlan(p: MatmulPlan): string {
  return `${p.kind}${p.splits > 1 ? ` split-K ${p.splits}` : ''}`;
}

// ------------------------------------------------------------------------------ heuristic

const planCache = new WeakMap<Caps, Map<string, MatmulPlan>>();
/** Rows up to which skinny is picked (bench/NOTES.md, "v6"): on lavapipe it beat the old pick
 * 1.6-42x at M = 1..8 (LM decoder, GRU step at batch 1, [K, N] matrix-vector) and lost to reg16x8
 * at M = 32 (GRU steps at batch 32: 0.4-0.6x), where reg16x8's 32-row tile has no padding left. */
const SKINNY_MAX_M = 8;

/**
 * Which kernel for a problem, cached per (M, N, K, batch, vec4-able, adapter kind): the choice is
 * a handful of comparisons, and the cache makes it a Map lookup per call.
 *
 * Justified by bench/NOTES.md (lavapipe, 2 busy cores; H100 numbers pending a GPU session; its
 * older sections name the kernels v1..v7, in the order of MatmulKind):
 *  - software adapter with subgroups of 8 (lavapipe): simd8 (packed operands, simd8/matmul.ts),
 *    2-3x reg16x8 and 2.2-13x TF.js on every training shape ("Session 2 final side by side"); it
 *    falls back to reg16x8/reg4x4 itself when its texture limits are exceeded. Other software
 *    adapters: reg16x8 (16x8 per thread, its tile following the product), which tied reg8x8 on
 *    squares and beat it 2x where B is read transposed; reg4x4 covers unaligned operands; naive
 *    and tiled never win.
 *  - hardware: reg8x8 (128x128, 8x8, vec4 loads), the layout of the 26 TFLOP/s kernel measured
 *    on the H100, until bench/gpu-run.sh has measured reg16x8 there.
 *  - M <= 8 (any adapter): skinny, threads own output columns and split K, no tile padding (a
 *    32-row tile was 31/32 padding for the M = 1 decoder: 1073 ms against 49-66 ms).
 *  - split K when the output tiles cannot fill the machine and K is long: the weight gradients
 *    of convolutions (M, N of a few hundred, K = batch * H * W up to 131072). Each slice keeps at
 *    least 256 of K so the extra pass over splits * M * N partial sums stays small next to the
 *    M * N * K product.
 */
export function planMatmul(M: number, N: number, K: number, batch: number, vec4: boolean, c: Caps = caps()): MatmulPlan {
  let cache = planCache.get(c);
  if (!cache) planCache.set(c, (cache = new Map()));
  const key = `${M},${N},${K},${batch},${vec4 ? 1 : 0}`;
  const hit = cache.get(key);
  if (hit) return hit;
  // Workgroups needed to keep the adapter busy: lavapipe runs one per core thread; a big GPU
  // wants a couple per SM (132 on an H100).
  const busy = c.software ? 8 : 264;
  const tiles128 = Math.ceil(M / 128) * Math.ceil(N / 128) * batch;
  let kind: MatmulKind = 'reg4x4';
  if (vec4 && c.software) kind = 'reg16x8';
  else if (vec4 && tiles128 >= 64) kind = 'reg8x8';
  // simd8 packs its operands, so alignment does not matter; it falls back to reg16x8/reg4x4 by
  // itself when the packed operands exceed the adapter's texture limits
  if (c.simd8) kind = 'simd8';
  if (M <= SKINNY_MAX_M) kind = 'skinny';
  const [tm, tn] = kind === 'reg16x8' ? [M <= 32 ? 32 : M <= 64 ? 64 : 128, N <= 64 ? 64 : 128] : TILE[kind];
  const tiles = Math.ceil(M / tm) * Math.ceil(N / tn) * batch;
  let splits = 1;
  if (tiles < busy && K >= 2048) {
    splits = Math.min(Math.ceil(busy / tiles), Math.floor(K / 256), 64);
    if (splits < 2) splits = 1;
  }
  const plan: MatmulPlan = { kind, splits };
  cache.set(key, plan);
  return plan;
}

// ------------------------------------------------------------------------------ operand layout

/** How the kernel reads one operand: the tensor (possibly a copy), its flag and strides. */
interface Operand {
  t: Tensor;
  trans: boolean;
  ld: number;
  /** true when `t` is a copy this call owns. */
  owned: boolean;
}

function describe(t: { readonly shape: readonly number[] }): string {
  return `[${t.shape.join(', ')}]`;
}

/**
 * Maps the last two dimensions of `t` (logically [rows, cols] after `trans`) onto the kernel's
 * layouts: cols contiguous (trans = false, ld = row stride) or rows contiguous (trans = true,
 * ld = column stride). Anything else is copied to row-major first.
 */
function layout(t: Tensor, transposed: boolean): Operand {
  const r = t.rank;
  let rows = t.shape[r - 2];
  let cols = t.shape[r - 1];
  let sr = t.strides[r - 2];
  let sc = t.strides[r - 1];
  if (transposed) {
    [rows, cols] = [cols, rows];
    [sr, sc] = [sc, sr];
  }
  if (sc === 1 || cols === 1) return { t, trans: false, ld: rows === 1 ? 0 : sr, owned: false };
  if (sr === 1 || rows === 1) return { t, trans: true, ld: cols === 1 ? 0 : sc, owned: false };
  // A row-major copy of the stored layout: its last dimension is contiguous, ld = that extent.
  const c = contiguous(t);
  return { t: c, trans: transposed, ld: c.shape[r - 1], owned: true };
}

/** Batch dimensions of both operands broadcast and merged where strides allow (at most 4). */
interface BatchLayout {
  shape: number[];
  stA: number[];
  stB: number[];
}

function batchStrides(op: string, t: Tensor, bshape: readonly number[]): number[] {
  const tb = t.rank - 2;
  const off = bshape.length - tb;
  const s = new Array<number>(bshape.length).fill(0);
  for (let d = 0; d < tb; d++) {
    const size = t.shape[d];
    if (size === bshape[d + off]) s[d + off] = size === 1 ? 0 : t.strides[d];
    else if (size !== 1) throw new OpError(op, `batch dimensions of ${describe(t)} cannot be broadcast to [${bshape.join(', ')}]`);
  }
  return s;
}

function mergeBatch(shape: readonly number[], stA: readonly number[], stB: readonly number[]): BatchLayout {
  const out: BatchLayout = { shape: [], stA: [], stB: [] };
  for (let d = 0; d < shape.length; d++) {
    if (shape[d] === 1) continue;
    const n = out.shape.length;
    if (n > 0 && out.stA[n - 1] === stA[d] * shape[d] && out.stB[n - 1] === stB[d] * shape[d]) {
      out.shape[n - 1] *= shape[d];
      out.stA[n - 1] = stA[d];
      out.stB[n - 1] = stB[d];
    } else {
      out.shape.push(shape[d]);
      out.stA.push(stA[d]);
      out.stB.push(stB[d]);
    }
  }
  return out;
}

// ------------------------------------------------------------------------------ the raw product

function checkOperands(op: string, a: Tensor, b: Tensor, opts: MatmulOptions): void {
  a.storageFor(op);
  b.storageFor(op);
  if (a.dtype !== 'f32' || b.dtype !== 'f32') throw new OpError(op, `expects f32 tensors, got ${a.dtype} ${describe(a)} and ${b.dtype} ${describe(b)}`);
  if (opts.activation !== undefined && !(opts.activation in ACT_CODE)) {
    throw new OpError(op, `unknown activation "${String(opts.activation)}" (expected one of ${Object.keys(ACT_CODE).join(', ')})`);
  }
}

/**
 * C = act(op(a) @ op(b) + bias) for a, b of rank >= 2 (batch dimensions broadcast), without
 * autograd. Returns a new contiguous tensor [...batch, M, N].
 */
export function matmulRaw(a: Tensor, b: Tensor, opts: MatmulRawOptions = {}): Tensor {
  const op = 'matmul';
  checkOperands(op, a, b, opts);
  if (a.rank < 2 || b.rank < 2) throw new OpError(op, `matmulRaw needs operands of rank >= 2, got ${describe(a)} and ${describe(b)}`);
  const tA = opts.transA ?? false;
  const tB = opts.transB ?? false;
  let M = a.shape[a.rank - (tA ? 1 : 2)];
  const K = a.shape[a.rank - (tA ? 2 : 1)];
  const Kb = b.shape[b.rank - (tB ? 1 : 2)];
  const N = b.shape[b.rank - (tB ? 2 : 1)];
  if (K !== Kb) {
    throw new OpError(op, `inner dimensions differ: ${describe(a)}${tA ? 'ᵀ' : ''} @ ${describe(b)}${tB ? 'ᵀ' : ''} is [${M}, ${K}] @ [${Kb}, ${N}]`);
  }
  const bshapeFull = broadcastBatch(op, a, b);
  const biasT = opts.bias;
  const perRow = opts.biasPerRow ?? false;
  if (biasT) {
    biasT.storageFor(op);
    const want = perRow ? M : N;
    if (biasT.rank !== 1 || biasT.shape[0] !== want) {
      throw new OpError(op, `bias of shape ${describe(biasT)} does not match the product's ${perRow ? 'rows' : 'columns'} (expected [${want}]) for ${describe(a)} @ ${describe(b)}`);
    }
  }
  const limit = caps().maxStorageBinding;
  const outBytes = 4 * numel(bshapeFull) * M * N;
  for (const [what, bytes] of [['a', a.storageFor(op).bytes], ['b', b.storageFor(op).bytes], ['the result', outBytes]] as const) {
    if (bytes > limit) {
      throw new OpError(op, `${what} of ${describe(what === 'a' ? a : what === 'b' ? b : { shape: [...bshapeFull, M, N] })} needs ${(bytes / 2 ** 20).toFixed(0)} MiB in one binding, over the adapter's maxStorageBufferBindingSize of ${(limit / 2 ** 20).toFixed(0)} MiB (split the batch)`);
    }
  }
  const out = empty([...bshapeFull, M, N]);
  if (out.size === 0) return out;
  const act = ACT_CODE[opts.activation ?? 'none'];

  let A = layout(a, tA);
  let B = layout(b, tB);
  let stA = batchStrides(op, A.t, bshapeFull);
  let stB = batchStrides(op, B.t, bshapeFull);
  let batch = mergeBatch(bshapeFull, stA, stB);
  if (batch.shape.length > MAX_BATCH_DIMS) {
    // Interleaved broadcasting over many dimensions: materialise both at the full batch shape.
    const expand = (o: Operand, st: number[]): Operand => {
      const inner = o.t.shape.slice(-2);
      const v = o.t.view([...bshapeFull, ...inner], [...st, ...o.t.strides.slice(-2)], o.t.offset);
      const c = contiguous(v);
      if (c !== v) v.dispose();
      if (o.owned) o.t.dispose();
      return { ...layout(c, o === A ? tA : tB), owned: true };
    };
    A = expand(A, stA);
    B = expand(B, stB);
    stA = batchStrides(op, A.t, bshapeFull);
    stB = batchStrides(op, B.t, bshapeFull);
    batch = mergeBatch(bshapeFull, stA, stB);
  }
  // One product of (entries x M) rows where every batch entry multiplies the same B and A's
  // entries follow one another row after row (a linear layer on a [S, B, E] input, its input
  // gradient): what PyTorch does for a shared weight, and what the plans handle best. The word
  // LM's decoder input gradient, 35 x [20, 33278] @ [33278, 200], ran on reg4x4 one entry at a
  // time: 8.9 s of a 10.2 s step (bench/NOTES.md, "Batched products with a shared operand").
  const rowStride = M === 1 ? batch.stA[0] : A.ld;
  const fold = batch.shape.length === 1 && batch.stB[0] === 0 && !A.trans && batch.stA[0] === M * rowStride && !(biasT && perRow);
  if (fold) {
    M *= batch.shape[0];
    A = { ...A, ld: rowStride };
    batch = { shape: [], stA: [], stB: [] };
    stA = [];
    stB = [];
  }
  const nbatch = fold ? 1 : numel(bshapeFull);
  const aligned = vec4Ok(A, tA ? M : K, stA) && vec4Ok(B, tB ? K : N, stB);
  const plan = planMatmul(M, N, K, nbatch, aligned);
  if (opts.variant !== undefined && !KINDS.includes(opts.variant)) throw new OpError(op, `unknown variant '${String(opts.variant)}': expected one of ${KINDS.join(', ')}`);
  let variant: MatmulKind = opts.variant ?? plan.kind;
  if ((variant === 'reg8x8' || variant === 'reg16x8') && !aligned) variant = 'reg4x4';
  let splits = Math.max(1, Math.floor(opts.splits ?? (opts.variant ? 1 : plan.splits)));
  // k_chunk a multiple of 16 (the tiles' K step, and vec4-aligned), every slice non-empty
  const kChunk = Math.max(16, Math.ceil(K / splits / 16) * 16);
  splits = Math.max(1, Math.ceil(K / kChunk));
  const maxWg = caps().maxWorkgroupsPerDimension;
  if (nbatch * splits > maxWg) {
    if (nbatch > maxWg) throw new OpError(op, `batch of ${nbatch} products exceeds the adapter's ${maxWg} workgroups per dimension`);
    splits = Math.floor(maxWg / nbatch);
  }

  const bias = biasT ? contiguous(biasT) : null;
  const biasCode = bias ? (perRow ? 2 : 1) : 0;
  const sg = subgroupSpec();
  const release = () => {
    if (bias && bias !== biasT) bias.dispose();
    if (A.owned) A.t.dispose();
    if (B.owned) B.t.dispose();
  };
  if (variant === 'simd8') {
    const p = packParams(M, N, K, nbatch, A, B, batch, K, 1, 0);
    const simd = { M, N, K, batch: nbatch, bshape: [...p.subarray(16, 20)], bstA: [...p.subarray(20, 24)], bstB: [...p.subarray(24, 28)], bias, biasCode, act, alpha: opts.negativeSlope ?? 0.01, defines: sg.defines };
    let done = false;
    try {
      done = matmulSimd8(out, A, B, simd);
    } finally {
      if (done) release();
    }
    if (done) return out;
    variant = aligned ? 'reg16x8' : 'reg4x4';
  }
  const params = packParams(M, N, K, nbatch, A, B, batch, kChunk, splits, opts.negativeSlope ?? 0.01);
  // reg16x8's tile follows the product: 32, 64 or 128 rows, 64 or 128 columns
  const r16q = M <= 32 ? 1 : M <= 64 ? 2 : 4;
  const r16h = N <= 64 ? 1 : 2;
  const lanes = variant === 'skinny' ? (opts.skinnyLanes ?? skinnyLanes(B.trans)) : 1;
  if (!Number.isInteger(lanes) || lanes < 1 || lanes > 64 || (lanes & (lanes - 1)) !== 0) throw new OpError(op, `skinnyLanes must be a power of two in 1..64, got ${lanes}`);
  const [tm, tn] = variant === 'reg16x8' ? [32 * r16q, 64 * r16h] : variant === 'skinny' ? [8, (64 / lanes) * (B.trans ? 1 : 4)] : TILE[variant];
  const grid: [number, number, number] = [Math.ceil(N / tn), Math.ceil(M / tm), nbatch * splits];
  if (grid[1] > maxWg || grid[0] > maxWg) throw new OpError(op, `product [${M}, ${K}] @ [${K}, ${N}] needs more than ${maxWg} tiles per dimension`);
  const spec = (constants: Record<string, number>) => ({ defines: sg.defines, constants: { ...constants, ...(variant === 'reg8x8' || variant === 'reg16x8' ? { SG_ROWS: opts.subgroupRows === false ? 0 : sg.sgRows } : {}), ...(variant === 'reg16x8' ? { REG16X8_Q: r16q, REG16X8_H: r16h } : {}), ...(variant === 'skinny' ? { SKINNY_LANES: lanes, SKINNY_ROWS: Math.min(8, M), SKINNY_VEC4: vec4Ok(B, B.trans ? K : N, stB) ? 1 : 0, SKINNY_AVEC4: !A.trans && vec4Ok(A, K, stA) ? 1 : 0 } : {}) } });
  try {
    if (splits === 1) {
      params[6] = out.offset;
      params[7] = bias ? bias.offset : 0;
      const k = kernel('matmul', variant, spec({ TRANS_A: A.trans ? 1 : 0, TRANS_B: B.trans ? 1 : 0, BIAS: biasCode, ACT: act }));
      dispatch(k, [out.bufferFor(op), A.t.bufferFor(op), B.t.bufferFor(op), (bias ?? A.t).bufferFor(op)], params, grid);
    } else {
      const ws = empty([splits * nbatch * M * N]);
      params[6] = 0;
      const k = kernel('matmul', variant, spec({ TRANS_A: A.trans ? 1 : 0, TRANS_B: B.trans ? 1 : 0, BIAS: 0, ACT: 0 }));
      dispatch(k, [ws.bufferFor(op), A.t.bufferFor(op), B.t.bufferFor(op), A.t.bufferFor(op)], params, grid);
      const rp = new Uint32Array(params);
      rp[6] = out.offset;
      rp[7] = bias ? bias.offset : 0;
      const r = kernel('matmul', 'splitk_reduce', { defines: sg.defines, constants: { BIAS: biasCode, ACT: act } });
      dispatch(r, [out.bufferFor(op), ws.bufferFor(op), (bias ?? ws).bufferFor(op)], rp, grid1d(nbatch * M * N));
      ws.dispose();
    }
  } finally {
    release();
  }
  return out;
}

/** skinny's threads per column: 1 on a software adapter (no barrier, A reads uniform across the
 * workgroup); on hardware 16 along a transposed B's contiguous K (16 lanes read 64 consecutive
 * floats) and 4 for B [K, N], whose columns are already coalesced across threads (not measured
 * on hardware yet). */
function skinnyLanes(transB: boolean): number {
  if (caps().software) return 1;
  return transB ? 16 : 4;
}

/** Whether reg8x8's vec4 loads see whole, aligned vectors along the operand's contiguous dimension. */
function vec4Ok(o: Operand, contiguousExtent: number, st: readonly number[]): boolean {
  return contiguousExtent % 4 === 0 && o.ld % 4 === 0 && o.t.offset % 4 === 0 && st.every((s) => s % 4 === 0);
}

function broadcastBatch(op: string, a: Tensor, b: Tensor): number[] {
  const ba = a.shape.slice(0, -2);
  const bb = b.shape.slice(0, -2);
  const r = Math.max(ba.length, bb.length);
  const out = new Array<number>(r);
  for (let i = 0; i < r; i++) {
    const da = ba[ba.length - r + i] ?? 1;
    const db = bb[bb.length - r + i] ?? 1;
    if (da !== db && da !== 1 && db !== 1) {
      throw new OpError(op, `batch dimensions of ${describe(a)} and ${describe(b)} cannot be broadcast together (${da} vs ${db})`);
    }
    out[i] = da === 1 ? db : da;
  }
  return out;
}

function packParams(M: number, N: number, K: number, batch: number, A: Operand, B: Operand, bl: BatchLayout, kChunk: number, splits: number, alpha: number): Uint32Array {
  const p = new Uint32Array(28);
  p[0] = M;
  p[1] = N;
  p[2] = K;
  p[3] = batch;
  p[4] = A.t.offset;
  p[5] = B.t.offset;
  p[8] = A.ld;
  p[9] = B.ld;
  p[10] = kChunk;
  p[11] = splits;
  p[12] = f32Bits(alpha);
  // batch dims right-aligned in the vec4s (innermost last), padded with size 1
  const nb = bl.shape.length;
  for (let i = 0; i < 4; i++) {
    const d = i - (4 - nb);
    p[16 + i] = d >= 0 ? bl.shape[d] : 1;
    p[20 + i] = d >= 0 ? bl.stA[d] : 0;
    p[24 + i] = d >= 0 ? bl.stB[d] : 0;
  }
  return p;
}

// ------------------------------------------------------------------------------ activation pass

/** y = act(z) elementwise (contiguous z), for the non-fused path that autograd needs. */
function activationRaw(z: Tensor, act: number, alpha: number): Tensor {
  const y = empty(z.shape);
  const p = actParams(z.size, alpha);
  dispatch(kernel('matmul', 'act_forward', { defines: subgroupSpec().defines, constants: { ACT: act } }), [y.bufferFor('matmul'), z.bufferFor('matmul')], p, grid1d(z.size));
  return y;
}

/** g * act'(z) elementwise. */
function activationGradRaw(g: Tensor, z: Tensor, act: number, alpha: number): Tensor {
  const gc = contiguous(g);
  const out = empty(z.shape);
  const p = actParams(z.size, alpha);
  dispatch(kernel('matmul', 'act_backward', { defines: subgroupSpec().defines, constants: { ACT: act } }), [out.bufferFor('matmul'), gc.bufferFor('matmul'), z.bufferFor('matmul')], p, grid1d(z.size));
  if (gc !== g) gc.dispose();
  return out;
}

function actParams(n: number, alpha: number): Uint32Array {
  const p = new Uint32Array(28);
  p[0] = n;
  p[1] = 1;
  p[3] = 1;
  p[12] = f32Bits(alpha);
  return p;
}

// ------------------------------------------------------------------------------ public ops

/**
 * Matrix product with PyTorch's `torch.matmul` semantics: 1-D operands are promoted (and the
 * promoted dimension removed from the result), batch dimensions broadcast. `transA`/`transB` swap
 * the last two dimensions of a / b (rank >= 2) without a copy. `bias` and `activation` are fused.
 * Differentiable in a, b and bias.
 */
export function matmul(a: Tensor, b: Tensor, opts: MatmulOptions = {}): Tensor {
  const op = 'matmul';
  checkOperands(op, a, b, opts);
  if (a.rank === 0 || b.rank === 0) throw new OpError(op, `operands must have rank >= 1, got ${describe(a)} and ${describe(b)}`);
  if ((opts.transA && a.rank < 2) || (opts.transB && b.rank < 2)) {
    throw new OpError(op, `transA/transB need an operand of rank >= 2, got ${describe(a)} and ${describe(b)}`);
  }
  const aVec = a.rank === 1;
  const bVec = b.rank === 1;
  if (aVec || bVec) {
    const K1 = a.shape[a.rank - (opts.transA ? 2 : 1)];
    const K2 = b.shape[bVec ? 0 : b.rank - (opts.transB ? 1 : 2)];
    if (K1 !== K2) throw new OpError(op, `inner dimensions differ: ${describe(a)} @ ${describe(b)} (${K1} vs ${K2})`);
  }
  const a2 = aVec ? reshape(a, [1, a.shape[0]]) : a;
  const b2 = bVec ? reshape(b, [b.shape[0], 1]) : b;
  try {
    let out = matmulND(a2, b2, opts);
    if (aVec || bVec) {
      const s = out.shape.slice();
      if (bVec) s.splice(s.length - 1, 1);
      if (aVec) s.splice(s.length - (bVec ? 1 : 2), 1);
      const r = reshape(out, s);
      out.dispose();
      out = r;
    }
    return out;
  } finally {
    if (a2 !== a) a2.dispose();
    if (b2 !== b) b2.dispose();
  }
}

/** PyTorch's F.linear: x @ weightᵀ + bias, weight [out, in] read transposed in place. */
export function linear(x: Tensor, weight: Tensor, bias?: Tensor, activation: Activation = 'none'): Tensor {
  if (weight.rank !== 2) throw new OpError('linear', `weight must be [out_features, in_features], got ${describe(weight)}`);
  if (x.rank < 1 || x.shape[x.rank - 1] !== weight.shape[1]) {
    throw new OpError('linear', `input ${describe(x)} does not end in in_features = ${weight.shape[1]} of weight ${describe(weight)}`);
  }
  return matmul(x, weight, { transB: true, bias, activation });
}

/** Rank >= 2 operands; a rank > 2 and a 2-D b fold a's batch into M (one larger product). */
function matmulND(a: Tensor, b: Tensor, opts: MatmulOptions): Tensor {
  const tA = opts.transA ?? false;
  const tB = opts.transB ?? false;
  const actName = opts.activation ?? 'none';
  const act = ACT_CODE[actName];
  const alpha = opts.negativeSlope ?? 0.01;
  const bias = opts.bias;
  const inputs = bias ? [a, b, bias] : [a, b];
  const needGrad = isGradEnabled() && inputs.some((t) => t.requiresGrad);
  const fuseAct = !needGrad || act === 0;
  const rawOpts: MatmulRawOptions = { transA: tA, transB: tB, bias, biasPerRow: opts.biasPerRow, activation: fuseAct ? actName : 'none', negativeSlope: alpha };

  // x[..., M, K] @ W[K, N]: one product with M' = batch * M when x's rows are row-major.
  const folded = !tA && b.rank === 2 && a.rank > 2 && a.isContiguous && !opts.biasPerRow;
  let z: Tensor;
  if (folded) {
    const a2 = reshape(a, [-1, a.shape[a.rank - 1]]);
    const z2 = matmulRaw(a2, b, rawOpts);
    a2.dispose();
    z = reshape(z2, [...a.shape.slice(0, -1), z2.shape[1]]);
    z2.dispose();
  } else {
    z = matmulRaw(a, b, rawOpts);
  }
  if (!needGrad) return z;
  const out = fuseAct ? z : activationRaw(z, act, alpha);
  const aShape = a.shape;
  const bShape = b.shape;
  const biasShape = bias?.shape;
  const perRow = opts.biasPerRow ?? false;
  const saved = fuseAct ? [a, b] : [a, b, z];
  const result = record('matmul', out, inputs, saved, (g, s, need) => {
    const [as, bs] = s;
    const gz = fuseAct ? g : activationGradRaw(g, s[2], act, alpha);
    // only the gradients an input needs (a frozen weight or the data costs no product)
    const grads: (Tensor | null)[] = [need[0] ? gradA(gz, as, bs, tA, tB, aShape) : null, need[1] ? gradB(gz, as, bs, tA, tB, bShape) : null];
    if (biasShape) {
      // bias grad: sum of gz over every dimension but the columns (or the rows)
      const r = gz.rank;
      const axes = [...Array(r).keys()].filter((d) => d !== (perRow ? r - 2 : r - 1));
      grads.push(need[2] ? sum(gz, axes) : null);
    }
    if (gz !== g) gz.dispose();
    return grads;
  });
  if (!fuseAct) z.dispose();
  return result;
}

// dA = dC @ op(b)ᵀ, stored back in a's own layout (its transpose when transA); summed over the
// batch dimensions that a was broadcast along.
function gradA(g: Tensor, a: Tensor, b: Tensor, tA: boolean, tB: boolean, aShape: readonly number[]): Tensor {
  const ga = tA ? matmulRaw(b, g, { transA: tB, transB: true }) : matmulRaw(g, b, { transB: !tB });
  const r = sumToShape(ga, aShape);
  if (r !== ga) ga.dispose();
  return r;
}

// dB = op(a)ᵀ @ dC (or its transpose when transB). A 2-D b under a batched a: fold the batch into
// the product's K (one GEMM over batch * M rows) instead of per-batch products then a sum.
function gradB(g: Tensor, a: Tensor, b: Tensor, tA: boolean, tB: boolean, bShape: readonly number[]): Tensor {
  if (bShape.length === 2 && a.rank > 2 && !tA && a.isContiguous) {
    const a2 = reshape(a, [-1, a.shape[a.rank - 1]]);
    const gc = contiguous(g);
    const g2 = reshape(gc, [-1, g.shape[g.rank - 1]]);
    const gb = tB ? matmulRaw(g2, a2, { transA: true }) : matmulRaw(a2, g2, { transA: true });
    for (const t of [a2, g2]) t.dispose();
    if (gc !== g) gc.dispose();
    return gb;
  }
  const gb = tB ? matmulRaw(g, a, { transA: true, transB: tA }) : matmulRaw(a, g, { transA: !tA });
  const r = sumToShape(gb, bShape);
  if (r !== gb) gb.dispose();
  return r;
}
