/**
 * Matmul's simd8 kernel: the product laid out for a software adapter that runs a workgroup of 8
 * invocations as one 8-lane CPU vector (lavapipe). kernels/simd8/matmul.wgsl says what
 * the layout is and why; this file plans it (`planSimd8`, a pure function) and records the
 * dispatches: pack U (the operand with fewer rows) into 64 KiB windows, pack T into a texture of
 * 32-column panels, then the product over (batch entry, window of U rows, chunk of K), up to 11
 * windows per dispatch (`windowGroups`).
 *
 * C = A @ B. Without swap U = A, T = B; with swap U = B^T, T = A^T and the kernel stores C^T's
 * elements at C's positions. The smaller operand dimension becomes U's rows, so there are fewer
 * windows (dispatches) and more panels (workgroups per dispatch).
 */
import type { Tensor } from '../tensor.ts';
import { empty } from '../tensor.ts';
import { runtime } from '../runtime.ts';
import type { Device } from '../device.ts';
import type { Caps } from '../caps.ts';
import { caps, dispatch, grid1d, kernel } from '../ops/launch.ts';
import { simd8Product } from '../tuning.ts';

/** Floats in one uniform window: WebGPU's 64 KiB uniform binding limit. */
export const WINDOW_FLOATS = 16384;
/** U rows per workgroup and T columns per panel (8 lanes x 4 columns). */
const ROWS = 16;
const PANEL = 32;
/** Longest K chunk: a window holds at least one 16-row block of it. */
const MAX_KC = WINDOW_FLOATS / ROWS;

export interface Simd8Plan {
  swap: boolean;
  K: number;
  /** U rows and T columns. */
  rows: number;
  cols: number;
  /** K per chunk (multiple of 4), chunks, 16-row blocks per window, rows per window, windows. */
  kc: number;
  chunks: number;
  blocks: number;
  winRows: number;
  windows: number;
  /** Texture rows per layer, layers per panel, panels, layers in all. */
  kh: number;
  nKt: number;
  panels: number;
  layers: number;
  /** Floats of the packed U buffer (the last window still binds a whole 64 KiB). */
  packedFloats: number;
}

export type Simd8Limits = Pick<Caps, 'maxTextureDimension2D' | 'maxTextureArrayLayers' | 'maxStorageBinding'>;

/** The simd8 layout of a [M, K] @ [K, N] product over `batch` entries, or null when it does not fit
 * the adapter's texture or binding limits (the caller then runs reg16x8/reg4x4). With `allowSwap` false
 * U is always A (a caller whose output layout needs rows = M). */
export function planSimd8(M: number, N: number, K: number, batch: number, limits: Simd8Limits, allowSwap = true): Simd8Plan | null {
  const swap = allowSwap && M > N;
  const rows = swap ? N : M;
  const cols = swap ? M : N;
  // equal chunks (a last chunk of a few k would cost a whole chunk of zero padding)
  const chunks = Math.ceil(K / MAX_KC);
  const kc = Math.ceil(K / chunks / 4) * 4;
  const blocks = Math.min(Math.max(1, Math.floor(WINDOW_FLOATS / (ROWS * kc))), Math.ceil(rows / ROWS));
  const winRows = ROWS * blocks;
  const windows = Math.ceil(rows / winRows);
  const kh = Math.min(chunks * kc, Math.floor(limits.maxTextureDimension2D / kc) * kc);
  const nKt = Math.ceil((chunks * kc) / kh);
  const panels = Math.ceil(cols / PANEL);
  const layers = batch * panels * nKt;
  const packedFloats = batch * windows * chunks * winRows * kc + (WINDOW_FLOATS - winRows * kc);
  if (kh === 0 || layers > limits.maxTextureArrayLayers) return null;
  if (packedFloats * 4 > limits.maxStorageBinding) return null;
  return { swap, K, rows, cols, kc, chunks, blocks, winRows, windows, kh, nKt, panels, layers, packedFloats };
}


/** One operand as matmul.ts lays it out: storage tensor, transposed flag, leading dimension. */
export interface Simd8Operand {
  t: Tensor;
  trans: boolean;
  ld: number;
}

export interface Simd8Call {
  M: number;
  N: number;
  K: number;
  batch: number;
  /** Batch dimensions right-aligned (innermost last), padded with 1, and per-operand strides. */
  bshape: readonly number[];
  bstA: readonly number[];
  bstB: readonly number[];
  bias: Tensor | null;
  biasCode: number;
  act: number;
  alpha: number;
  defines: Record<string, string>;
}

/** Records simd8 for `out` = act(A @ B + bias); false (nothing recorded) when the plan does not fit. */
export function matmulSimd8(out: Tensor, A: Simd8Operand, B: Simd8Operand, c: Simd8Call): boolean {
  const op = 'matmul';
  const dev = runtime().device;
  const cp = caps();
  if (!cp.simd8) return false;
  const plan = planSimd8(c.M, c.N, c.K, c.batch, cp);
  if (!plan) return false;
  // (row stride, k stride) of A's rows (M) and of B's columns (N) in storage
  const aSt = A.trans ? [1, A.ld] : [A.ld, 1];
  const bSt = B.trans ? [B.ld, 1] : [1, B.ld];
  const [U, uSt, uBst] = plan.swap ? [B, bSt, c.bstB] : [A, aSt, c.bstA];
  const [T, tSt, tBst] = plan.swap ? [A, aSt, c.bstA] : [B, bSt, c.bstB];

  const packed = empty([plan.packedFloats]);
  const tex = acquireTexture(dev, plan.kh, plan.layers);
  try {
    const pu = simd8Params(plan, U.t.offset, uSt, c.bshape, uBst, c.alpha);
    const packU = kernel('simd8/matmul', 'pack_u', { defines: c.defines });
    dispatch(packU, [packed.bufferFor(op), U.t.bufferFor(op)], pu, grid1d(packedThreads(plan), 64));

    const pt = simd8Params(plan, T.t.offset, tSt, c.bshape, tBst, c.alpha);
    pt[0] = plan.cols; // src_at bounds the packed operand's "rows": T's columns here
    const packT = kernel('simd8/matmul', 'pack_t', { defines: c.defines });
    dispatch(packT, [panelView(tex), T.t.bufferFor(op)], pt, [1, Math.ceil(plan.kh / (8 * PACK_T_ROWS)), plan.layers]);

    runSimd8(plan, packed, tex, out, { bias: c.bias, biasCode: c.biasCode, act: c.act, alpha: c.alpha, colSplit: 0, spare: T.t, defines: c.defines });
  } finally {
    releaseTexture(dev, tex);
    packed.dispose();
  }
  return true;
}

/** Threads of a U packing pass: one per packed row (the last window's tail excluded). */
export function packedThreads(plan: Simd8Plan): number {
  return (plan.packedFloats - (WINDOW_FLOATS - plan.winRows * plan.kc)) / plan.kc;
}

/** Texels each pack_t thread writes down its texture column (PACK_ROWS in the kernel). */
export const PACK_T_ROWS = 16;

/** The epilogue and output layout of `runSimd8`. */
export interface Simd8Epilogue {
  bias: Tensor | null;
  /** 0 none, 1 per column of C, 2 per row of C (kernels/simd8/matmul.wgsl's BIAS codes). */
  biasCode: number;
  /** ACT: an activation code (ops/activation.ts), and leaky ReLU's slope. */
  act: number;
  alpha: number;
  /** 0: C is [rows, cols] per batch entry (or [cols, rows] when swapped). P > 0: the columns
   * are (image, position) pairs of P positions each and C is NCHW-like, [cols / P, rows, P]
   * (a convolution's output with rows = channels). */
  colSplit: number;
  /** Any read-only tensor of the call: bound in place of an absent bias (a binding must not
   * alias the output). */
  spare: Tensor;
  defines: Record<string, string>;
}

/** Window bindings of kernels/simd8/matmul.wgsl's product_windows: WebGPU's minimum of 12
 * uniform buffers per shader stage, less the parameter block. */
const WINDOW_SLOTS = 11;

/** How the product's dispatches split `units` (batch entry x window of U rows) by `chunks` of K
 * when a dispatch binds at most `slots` windows: `chunks` per unit (added up in registers) for
 * `units` units, the fewest dispatches, then the fewest passes over C (later chunk groups add to
 * it). Pure. */
export function windowGroups(units: number, chunks: number, slots: number): { units: number; chunks: number; dispatches: number } {
  let best = { units: 1, chunks: 1, dispatches: units * chunks };
  for (let nc = 1; nc <= Math.min(slots, chunks); nc++) {
    const nu = Math.min(units, Math.floor(slots / nc));
    const d = Math.ceil(units / nu) * Math.ceil(chunks / nc);
    if (d <= best.dispatches) best = { units: nu, chunks: nc, dispatches: d };
  }
  return best;
}

/** Windows a product dispatch may bind on `dev`: the adapter's uniform buffers per stage less the
 * parameter block, the kernel's slots and the tuning cap. */
export function windowSlots(dev: Device): number {
  return Math.max(1, Math.min(WINDOW_SLOTS, dev.limits.maxUniformBuffersPerShaderStage - 1, simd8Product.windowsPerDispatch));
}

/**
 * The product pass of simd8 over operands already packed for `plan`: `packed` holds U's windows
 * (pack_u's layout) and `tex` T's panels (pack_t's). Dispatches as `windowGroups` splits the
 * (batch entry, window, K chunk) triples; a dispatch that does not start at chunk 0 adds to `out`,
 * the one that ends at the last chunk applies the epilogue. Other op families (convolutions) pack
 * with their own gathers and share this pass.
 */
export function runSimd8(plan: Simd8Plan, packed: Tensor, tex: GPUTexture, out: Tensor, e: Simd8Epilogue): void {
  const op = 'matmul';
  const dev = runtime().device;
  const slots = windowSlots(dev);
  // BIAS and ACT are overrides: as run-time values every output paid for all seven activations
  // (the epilogue was 43% of a K = 128 product); the layout (swap, col_split) stays run time
  const entry = slots > 1 ? 'product_windows' : 'product';
  const main = kernel('simd8/matmul', entry, { defines: e.defines, constants: { BIAS: e.biasCode, ACT: e.act } });
  const view = panelView(tex);
  const outBuf = out.bufferFor(op);
  const packedBuf = packed.bufferFor(op);
  const biasBuf = (e.bias ?? e.spare).bufferFor(op);
  const pm = simd8Params(plan, out.offset, [0, 0], [1, 1, 1, 1], [0, 0, 0, 0], e.alpha);
  pm[15] = e.bias ? e.bias.offset : 0;
  pm[25] = plan.swap ? 1 : 0;
  pm[28] = e.colSplit;
  pm[30] = ROWS * PANEL;
  const winBytes = plan.winRows * plan.kc * 4;
  const units = (plan.layers / (plan.panels * plan.nKt)) * plan.windows;
  const g = windowGroups(units, plan.chunks, slots);
  const window = (unit: number, chunk: number) => ({ buffer: packedBuf, offset: packed.offset * 4 + (unit * plan.chunks + chunk) * winBytes, size: WINDOW_FLOATS * 4 });
  for (let c0 = 0; c0 < plan.chunks; c0 += g.chunks) {
    const nc = Math.min(g.chunks, plan.chunks - c0);
    for (let u0 = 0; u0 < units; u0 += g.units) {
      const nu = Math.min(g.units, units - u0);
      pm[12] = u0;
      pm[14] = c0;
      pm[26] = nc;
      // bindings: C, window 0, panels, bias, then windows 1.. (slot = unit * nc + chunk; the
      // slots past this dispatch's windows repeat window 0)
      const first = window(u0, c0);
      const buffers: (GPUBuffer | GPUBindingResource)[] = [outBuf, first, view, biasBuf];
      for (let s = 1; s < (slots > 1 ? WINDOW_SLOTS : 1); s++) buffers.push(s < nu * nc ? window(u0 + Math.floor(s / nc), c0 + (s % nc)) : first);
      dispatch(main, buffers, pm, [plan.panels, plan.blocks, nu]);
    }
  }
}

/** SimdParams (kernels/simd8/matmul.wgsl) for a packing pass (`offset`, `st` = the source's offset
 * and (row, k) strides, batch shape and strides) or the product (`offset` = C's). */
export function simd8Params(plan: Simd8Plan, offset: number, st: readonly number[], bshape: readonly number[], bst: readonly number[], alpha: number): Uint32Array {
  const p = new Uint32Array(32);
  p[0] = plan.rows;
  p[1] = plan.cols;
  p[2] = plan.K;
  p[3] = plan.kc;
  p[4] = plan.winRows;
  p[5] = plan.chunks;
  p[6] = plan.kh;
  p[7] = plan.nKt;
  p[8] = plan.panels;
  p[9] = offset;
  p[10] = st[0];
  p[11] = st[1];
  for (let i = 0; i < 4; i++) {
    p[16 + i] = bshape[i];
    p[20 + i] = bst[i];
  }
  new Float32Array(p.buffer)[24] = alpha;
  return p;
}

// ------------------------------------------------------------------------------ panel textures

/** Free panel textures per device: by size for reuse, and in release order (oldest first) for
 * eviction. Recorded work stays ordered: a later pack into a reused texture runs after the
 * dispatches that read it. */
interface FreeTextures {
  bySize: Map<string, GPUTexture[]>;
  order: GPUTexture[];
  bytes: number;
}
const freeTextures = new WeakMap<Device, FreeTextures>();
/** Bytes of free textures kept; above it the oldest free ones are destroyed. 1 GiB holds a
 * WRN-40-2 step's panel textures at batch 128 (256 MiB did not: 25 textures were made and
 * destroyed per step at batch 64, and destroying one in use blocked the recording thread until
 * the adapter drained: host 359 ms of CPU and a 24.6 s synchronous record at batch 128, against
 * 126 ms and 0.36 s with 1 GiB; bench/NOTES.md, "Training steps beside PyTorch"). Software
 * adapters only (the SIMD-8 path), where this is host memory. */
const TEXTURE_CACHE_BYTES = 1024 * 2 ** 20;

function textureKey(kh: number, layers: number): string {
  return `${kh}x${layers}`;
}

function textureBytes(t: GPUTexture): number {
  return 128 * t.height * t.depthOrArrayLayers;
}

function freeOf(dev: Device): FreeTextures {
  let f = freeTextures.get(dev);
  if (!f) freeTextures.set(dev, (f = { bySize: new Map(), order: [], bytes: 0 }));
  return f;
}

/** A panel texture of `kh` rows by `layers` layers (8 rgba32float texels wide), from the free
 * list when one of that size was released. Shared with the convolutions' packing passes. */
export function acquireTexture(dev: Device, kh: number, layers: number): GPUTexture {
  const f = freeOf(dev);
  const hit = f.bySize.get(textureKey(kh, layers))?.pop();
  if (hit) {
    f.order.splice(f.order.indexOf(hit), 1);
    f.bytes -= textureBytes(hit);
    return hit;
  }
  return dev.gpu.createTexture({
    label: 'matmul-simd8-panels',
    size: [8, kh, layers],
    format: 'rgba32float',
    usage: GPUTextureUsage.TEXTURE_BINDING | GPUTextureUsage.STORAGE_BINDING,
  });
}

/** Each panel texture's one view: the device caches bind groups by view identity
 * (bind-groups.ts), so a fresh view per call would add a bind group per dispatch. */
const views = new WeakMap<GPUTexture, GPUTextureView>();

export function panelView(tex: GPUTexture): GPUTextureView {
  let v = views.get(tex);
  if (!v) views.set(tex, (v = tex.createView({ dimension: '2d-array' })));
  return v;
}

/**
 * Returns a texture from `acquireTexture` for reuse. Over the cache cap the oldest free textures
 * are destroyed, not the one just released: a phase whose shapes differ from the last one's (a
 * WRN after a BigGAN) would otherwise find the cache full of the old shapes and make and destroy
 * its textures every step (measured: a WRN-10-1 step 1.15 s instead of 0.7 s, bench/NOTES.md).
 */
export function releaseTexture(dev: Device, tex: GPUTexture): void {
  const f = freeOf(dev);
  const key = textureKey(tex.height, tex.depthOrArrayLayers);
  const list = f.bySize.get(key) ?? [];
  list.push(tex);
  f.bySize.set(key, list);
  f.order.push(tex);
  f.bytes += textureBytes(tex);
  if (f.bytes <= TEXTURE_CACHE_BYTES) return;
  // destroyed once the work recorded on them is submitted (Dawn frees them after that work), not
  // left to the garbage collector, which does not see GPU memory
  dev.flush();
  while (f.bytes > TEXTURE_CACHE_BYTES && f.order.length > 1) {
    const old = f.order.shift()!;
    const same = f.bySize.get(textureKey(old.height, old.depthOrArrayLayers))!;
    same.splice(same.indexOf(old), 1);
    f.bytes -= textureBytes(old);
    const v = views.get(old);
    if (v) dev.forgetView(v);
    old.destroy();
  }
}
