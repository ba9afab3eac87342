/**
 * Fused multi-head scaled dot-product attention (kernels/attention.wgsl): softmax(scale q k^T +
 * masks) v with an online softmax, never materialising the [Tq, Tk] score matrix, and a fused
 * backward that recomputes the probabilities from the saved log-sum-exp.
 *
 * Shapes: q [B, H, Tq, D], k and v [B, H, Tk, D] (any strides: head-split views are read in
 * place), output [B, H, Tq, D] row-major. D (the head dimension) from 1 to 128.
 */
import { Tensor, empty } from '../tensor.ts';
import { record } from '../autograd.ts';
import { OpError } from '../errors.ts';
import type { Caps } from '../caps.ts';
import { caps, dispatch, kernel, subgroupDefines } from './launch.ts';
import { contiguous, contiguousCopy } from './movement.ts';
import { getRngState, setRngState } from './random.ts';
import { copyInto } from './movement.ts';
import { WINDOW_FLOATS } from '../simd8/matmul.ts';

export interface AttentionOptions {
  /** Key j is visible to query i only if j <= i (PyTorch's is_causal, top-left aligned). */
  causal?: boolean;
  /** [B, Tk], any dtype: a nonzero entry hides that key (PyTorch's key_padding_mask = True). */
  keyPaddingMask?: Tensor | null;
  /** Dropout probability on the attention weights (0 = none). */
  dropout?: number;
  /** Seed of the dropout mask (a u32); the same seed gives the same mask. Drawn from the global
   * generator (manualSeed) when omitted. */
  seed?: number;
  /** Score scale; default 1/sqrt(D). */
  scale?: number;
  /** Forward kernel: 'tiled' (default: 16 query rows x 32-key tiles, register blocking) or
   * 'rows' (one thread per query row). Both give the same results; benches compare them. */
  forwardKernel?: 'tiled' | 'rows';
  /** Backward kernels: 'auto' (default: tiled for D <= 64 or sequences of 64+, rows for short
   * sequences with D > 64, where one 64-thread row workgroup per head measured as fast), 'tiled'
   * (any D <= 128) or 'rows' (one thread per row). */
  backwardKernel?: 'auto' | 'tiled' | 'rows';
}

export const ATTENTION_MAX_HEAD_DIM = 128;
const WG = 64;
/** Query rows per workgroup of the tiled forward (QB in the kernel). */
const TILE_Q = 16;
/** Rows owned by a tiled-backward workgroup (RB in the kernel). */
const BWD_RB = 16;

/**
 * Streamed-tile rows (TB) of the tiled backward for head dimension D: the largest of 32, 16, 8
 * whose workgroup memory (two owned and two streamed tiles padded to D + 1 floats, the dS and
 * P~ tiles, 32 stats/keys/flags) fits `storage` bytes (0 when none does). With 32 KiB: 32 up to
 * D = 72, 16 up to D = 117, 8 up to 128.
 */
export function attentionBackwardTile(D: number): number {
  return backwardTileFor(D, 32768);
}

function backwardTileFor(D: number, storage: number): number {
  for (const tb of [32, 16, 8]) {
    const floats = 2 * BWD_RB * (D + 1) + 2 * tb * (D + 1) + 2 * BWD_RB * tb + 64 + 32 + 32;
    if (floats * 4 <= storage) return tb;
  }
  return 0;
}

/** Workgroup bytes of the row kernels (kernels/attention.wgsl: two 16-row tiles of D floats and
 * 16 flags, stats and keys) and of the tiled forward (16 query rows and 32 keys padded to D + 1,
 * the 16 x 32 score tile, row stats and key flags). */
const rowsBytes = (D: number): number => (2 * 16 * D + 16 * 4) * 4;
const tiledForwardBytes = (D: number): number => (TILE_Q * (D + 1) + 32 * (D + 1) + TILE_Q * 32 + 3 * TILE_Q + 32) * 4;

/** Which kernels run: 'simd8' (the software adapter's, one (batch, head) per uniform window),
 * 'tiled' (register-blocked tiles), 'rows' (one thread per row). */
export type AttentionKind = 'simd8' | 'tiled' | 'rows';

export interface AttentionPlan {
  readonly forward: AttentionKind;
  readonly backward: AttentionKind;
  /** The tiled backward's streamed-tile rows (0 unless backward is 'tiled'). */
  readonly backwardTile: number;
  /** 'fwd <kind> / bwd <kind>' (what benchmarks report). */
  readonly kind: string;
}

/**
 * The kernels for sequence lengths Tq, Tk and head dimension D (pure). Auto: SIMD-8 on the
 * software adapter where each (batch, head)'s sequence fits a 64 KiB uniform window, rows of
 * whole vec4s and D <= 64 (their loops over D are unrolled; at D = 100-128 LLVM took tens of
 * seconds per pipeline: the word LM's D = 100 keeps the tiled kernels, as fast as the composed
 * path there). Else the tiled forward; the tiled backward for D <= 64 or sequences of 64+ (for
 * D > 64 on short sequences, word LM T 35 D 100, the row kernels measured as fast or faster,
 * 0.83-0.98x; from T 64 the tiled ones win 1.15-1.5x fwd+bwd, bench/NOTES.md). Every choice
 * must fit the adapter's workgroup memory (SwiftShader: 16 KiB): what does not falls back to
 * 'rows', and a forced kernel that does not fit is an error.
 */
export function planAttention(Tq: number, Tk: number, D: number, c: Caps = caps(), opts: Pick<AttentionOptions, 'forwardKernel' | 'backwardKernel'> = {}): AttentionPlan {
  const op = 'scaledDotProductAttention';
  const storage = c.maxWorkgroupStorage;
  if (rowsBytes(D) > storage) throw new OpError(op, `head dimension ${D} needs ${rowsBytes(D)} bytes of workgroup memory, over this adapter's ${storage}; use heads of at most ${Math.floor((storage / 4 - 64) / 32)} dimensions`);
  const simd = c.simd8 && D % 4 === 0 && D <= 64 && Tk * D <= WINDOW_FLOATS && Tq * D <= WINDOW_FLOATS;
  const tiledFwdFits = tiledForwardBytes(D) <= storage;
  if (opts.forwardKernel === 'tiled' && !tiledFwdFits) throw new OpError(op, `forwardKernel 'tiled' at head dimension ${D} needs ${tiledForwardBytes(D)} bytes of workgroup memory, over this adapter's ${storage}`);
  const forward: AttentionKind = opts.forwardKernel ?? (simd ? 'simd8' : tiledFwdFits ? 'tiled' : 'rows');
  const bk = opts.backwardKernel ?? 'auto';
  const tile = backwardTileFor(D, storage);
  if (bk === 'tiled' && tile === 0) throw new OpError(op, `backwardKernel 'tiled' at head dimension ${D} does not fit this adapter's ${storage} bytes of workgroup memory`);
  let backward: AttentionKind;
  if (bk === 'auto' && simd) backward = 'simd8';
  else if (tile > 0 && (bk === 'tiled' || (bk === 'auto' && (D <= 64 || Math.max(Tq, Tk) >= 64)))) backward = 'tiled';
  else backward = 'rows';
  const backwardTile = backward === 'tiled' ? tile : 0;
  return { forward, backward, backwardTile, kind: `fwd ${forward} / bwd ${backward}${backwardTile ? ` TB ${backwardTile}` : ''}` };
}

/**
 * `t` ([B, H, T, D], any strides) copied densely, one (batch, head) every `stride` floats (T * D
 * rounded up to 64 floats: 256-byte aligned windows), with a window's worth of padding at the
 * end so every (batch, head) can bind a whole 64 KiB window.
 */
interface Windows {
  packed: Tensor;
  stride: number;
}

function packWindows(t: Tensor): Windows {
  const [B, H, T, D] = t.shape;
  const stride = Math.ceil((T * D) / 64) * 64;
  const packed = empty([B * H * stride + WINDOW_FLOATS]);
  const view = packed.view([B, H, T, D], [H * stride, stride, D, 1], 0);
  copyInto(view, t);
  view.dispose();
  return { packed, stride };
}

function windowAt(w: Windows, bh: number): GPUBufferBinding {
  return { buffer: w.packed.bufferFor('attention'), offset: (w.packed.offset + bh * w.stride) * 4, size: WINDOW_FLOATS * 4 };
}

/** One SIMD-8 kernel per (batch, head): `p.bh` picks it, the windows bind its rows. */
function dispatchPerHead(entry: string, D: number, params: Uint32Array, rows: number, B: number, H: number, bindings: (bh: number) => (GPUBuffer | GPUBindingResource)[]): void {
  const k = kernel('simd8/attention', entry, { defines: subgroupDefines(), constants: { DH: D } });
  for (let bh = 0; bh < B * H; bh++) {
    const pm = new Uint32Array(params);
    pm[11] = bh;
    dispatch(k, bindings(bh), pm, [Math.ceil(rows / 16)]);
  }
}

function mix32(v: number): number {
  let x = v >>> 0;
  x ^= x >>> 16;
  x = Math.imul(x, 0x7feb352d) >>> 0;
  x ^= x >>> 15;
  x = Math.imul(x, 0x846ca68b) >>> 0;
  x ^= x >>> 16;
  return x >>> 0;
}

/**
 * A dropout seed drawn from the global generator (ops/random.ts): one counter block of its
 * stream is consumed, so manualSeed(...) makes attention dropout reproducible as well.
 */
export function nextAttentionSeed(): number {
  const st = getRngState();
  setRngState({ seed: st.seed, offset: st.offset + 1 });
  const lo = Number(st.seed & 0xffffffffn);
  const hi = Number((st.seed >> 32n) & 0xffffffffn);
  return mix32(mix32(lo ^ mix32(hi)) ^ mix32(st.offset % 2 ** 32) ^ Math.floor(st.offset / 2 ** 32));
}

function shp(t: Tensor): string {
  return `[${t.shape.join(', ')}]`;
}

interface Plan {
  B: number;
  H: number;
  Tq: number;
  Tk: number;
  D: number;
  scale: number;
  causal: boolean;
  dropout: number;
  seed: number;
}

function packParams(pl: Plan, q: Tensor, k: Tensor, v: Tensor, mask: Tensor | null): Uint32Array {
  const u = new Uint32Array(28);
  const f = new Float32Array(u.buffer);
  u[0] = pl.B;
  u[1] = pl.H;
  u[2] = pl.Tq;
  u[3] = pl.Tk;
  f[4] = pl.scale;
  u[5] = pl.causal ? 1 : 0;
  u[6] = mask ? 1 : 0;
  u[7] = pl.dropout > 0 ? 1 : 0;
  u[8] = Math.min(Math.round(pl.dropout * 2 ** 32), 2 ** 32 - 1) >>> 0;
  f[9] = pl.dropout > 0 ? 1 / (1 - pl.dropout) : 1;
  u[10] = pl.seed >>> 0;
  [q, k, v].forEach((t, n) => {
    for (let d = 0; d < 4; d++) u[12 + 4 * n + d] = t.strides[d];
  });
  u[24] = q.offset;
  u[25] = k.offset;
  u[26] = v.offset;
  u[27] = mask ? mask.offset : 0;
  return u;
}

/**
 * softmax(scale * q k^T, masked) (dropout) v, fused. Differentiable in q, k and v.
 */
export function attention(q: Tensor, k: Tensor, v: Tensor, opts: AttentionOptions = {}): Tensor {
  const op = 'attention';
  for (const [name, t] of [['q', q], ['k', k], ['v', v]] as const) {
    t.storageFor(op);
    if (t.dtype !== 'f32') throw new OpError(op, `${name} must be f32, got ${t.dtype} ${shp(t)}`);
    if (t.rank !== 4) throw new OpError(op, `${name} must be [batch, heads, seq, headDim], got ${shp(t)}`);
  }
  const [B, H, Tq, D] = q.shape;
  const Tk = k.shape[2];
  if (k.shape[0] !== B || k.shape[1] !== H || k.shape[3] !== D) {
    throw new OpError(op, `k ${shp(k)} does not match q ${shp(q)} (expected [${B}, ${H}, Tk, ${D}])`);
  }
  if (v.shape[0] !== B || v.shape[1] !== H || v.shape[2] !== Tk || v.shape[3] !== D) {
    throw new OpError(op, `v ${shp(v)} does not match k ${shp(k)} (expected [${B}, ${H}, ${Tk}, ${D}])`);
  }
  if (D < 1 || D > ATTENTION_MAX_HEAD_DIM) throw new OpError(op, `head dimension ${D} (q ${shp(q)}) is outside 1..${ATTENTION_MAX_HEAD_DIM}`);
  if (B * H > 65535) throw new OpError(op, `batch x heads = ${B * H} exceeds 65535 (q ${shp(q)})`);
  const dropout = opts.dropout ?? 0;
  if (!(dropout >= 0 && dropout < 1)) throw new OpError(op, `dropout must be in [0, 1), got ${dropout}`);
  if (Tk === 0 && B * H * Tq * D > 0) throw new OpError(op, `no keys (k ${shp(k)}): attention over an empty sequence is undefined`);
  const scale = opts.scale ?? 1 / Math.sqrt(D);
  if (!Number.isFinite(scale)) throw new OpError(op, `scale must be finite, got ${scale}`);
  let mask = opts.keyPaddingMask ?? null;
  if (mask) {
    mask.storageFor(op);
    if (mask.rank !== 2 || mask.shape[0] !== B || mask.shape[1] !== Tk) {
      throw new OpError(op, `keyPaddingMask must be [${B}, ${Tk}] for k ${shp(k)}, got ${shp(mask)}`);
    }
    mask = contiguous(mask);
  }
  const plan: Plan = { B, H, Tq, Tk, D, scale, causal: !!opts.causal, dropout, seed: opts.seed ?? (dropout > 0 ? nextAttentionSeed() : 0) };
  const out = empty([B, H, Tq, D]);
  const lse = empty([B, H, Tq]);
  const defines = subgroupDefines();
  const spec = { defines, constants: { DH: D, WG } };
  const ap = planAttention(Tq, Tk, D, caps(), opts);
  const simd = ap.forward === 'simd8';
  // the SIMD-8 forward's packed k and v windows, saved for the backward's dq (not packed twice)
  let windows: { kw: Windows; vw: Windows } | null = null;
  if (out.size > 0 && Tk > 0 && simd) {
    const kw = packWindows(k);
    const vw = packWindows(v);
    const qb = q.bufferFor(op);
    const mb = mask ? mask.bufferFor(op) : qb;
    dispatchPerHead('attn_fwd_simd8', D, packParams(plan, q, k, v, mask), Tq, B, H, (bh) => [out.bufferFor(op), lse.bufferFor(op), qb, windowAt(kw, bh), windowAt(vw, bh), mb]);
    windows = { kw, vw };
  } else if (out.size > 0 && Tk > 0) {
    const qb = q.bufferFor(op);
    const tiled = ap.forward === 'tiled';
    dispatch(
      tiled ? kernel('attention', 'attn_fwd_tiled', { defines, constants: { DH: D } }) : kernel('attention', 'attn_fwd', spec),
      [out.bufferFor(op), lse.bufferFor(op), qb, k.bufferFor(op), v.bufferFor(op), mask ? mask.bufferFor(op) : qb],
      packParams(plan, q, k, v, mask),
      [Math.ceil(Tq / (tiled ? TILE_Q : WG)), B * H],
    );
  }
  const saved = mask ? [q, k, v, out, lse, mask] : [q, k, v, out, lse];
  const nBase = saved.length;
  if (windows) saved.push(windows.kw.packed, windows.vw.packed);
  const wStride = windows?.kw.stride ?? 0;
  const res = record(op, out, [q, k, v], saved, (g, s) => {
    const [qs, ks, vs, os, ls] = s;
    const ms = mask ? s[5] : null;
    const savedWindows = s.length > nBase ? { kw: { packed: s[nBase], stride: wStride }, vw: { packed: s[nBase + 1], stride: wStride } } : null;
    const gc = g.isContiguous && g.offset === 0 ? g : contiguousCopy(g);
    const stats = empty([B, H, Tq, 2]);
    const params = packParams(plan, qs, ks, vs, ms);
    const rows = B * H * Tq;
    const groups = Math.ceil(rows / WG);
    const gx = Math.min(groups, 32768);
    dispatch(
      kernel('attention', 'attn_bwd_pre', spec),
      [stats.bufferFor(op), gc.bufferFor(op), os.bufferFor(op), ls.bufferFor(op)],
      params,
      [gx, Math.ceil(groups / gx)],
    );
    const dq = empty(qs.shape);
    const dk = empty(ks.shape);
    const dv = empty(vs.shape);
    const qb = qs.bufferFor(op);
    const mb = ms ? ms.bufferFor(op) : qb;
    // planAttention chose the backward kernels
    if (ap.backward === 'simd8') {
      // SIMD-8 backward: dq streams k and v, dk/dv stream q and dO, one (batch, head) each
      const kw = savedWindows?.kw ?? packWindows(ks);
      const vw = savedWindows?.vw ?? packWindows(vs);
      const scratch = empty([1]);
      dispatchPerHead('attn_bwd_dq_simd8', D, params, Tq, B, H, (bh) => [dq.bufferFor(op), scratch.bufferFor(op), qb, windowAt(kw, bh), windowAt(vw, bh), mb, gc.bufferFor(op), stats.bufferFor(op)]);
      if (!savedWindows) for (const t of [kw.packed, vw.packed]) t.dispose();
      scratch.dispose();
      const qw = packWindows(qs);
      const gw = packWindows(gc);
      const kb = ks.bufferFor(op);
      dispatchPerHead('attn_bwd_dkv_simd8', D, params, Tk, B, H, (bh) => [dk.bufferFor(op), dv.bufferFor(op), kb, windowAt(qw, bh), windowAt(gw, bh), mb, vs.bufferFor(op), stats.bufferFor(op)]);
      qw.packed.dispose();
      gw.packed.dispose();
      stats.dispose();
      if (gc !== g) gc.dispose();
      return [dq, dk, dv];
    }
    const tiledB = ap.backward === 'tiled';
    const rowsPer = tiledB ? BWD_RB : WG;
    const dspec = tiledB ? { defines, constants: { DH: D, TB: ap.backwardTile } } : spec;
    dispatch(
      kernel('attention', tiledB ? 'attn_bwd_dq_tiled' : 'attn_bwd_dq', dspec),
      [dq.bufferFor(op), qb, ks.bufferFor(op), vs.bufferFor(op), mb, gc.bufferFor(op), stats.bufferFor(op)],
      params,
      [Math.ceil(Tq / rowsPer), B * H],
    );
    dispatch(
      kernel('attention', tiledB ? 'attn_bwd_dkv_tiled' : 'attn_bwd_dkv', dspec),
      [dk.bufferFor(op), dv.bufferFor(op), qb, ks.bufferFor(op), vs.bufferFor(op), mb, gc.bufferFor(op), stats.bufferFor(op)],
      params,
      [Math.ceil(Tk / rowsPer), B * H],
    );
    stats.dispose();
    if (gc !== g) gc.dispose();
    return [dq, dk, dv];
  });
  lse.dispose();
  if (windows) for (const t of [windows.kw.packed, windows.vw.packed]) t.dispose();
  if (mask && mask !== opts.keyPaddingMask) mask.dispose();
  return res;
}
