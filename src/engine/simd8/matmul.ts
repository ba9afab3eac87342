/**
 * Matmul's simd8 kernel: the product laid out for a software adapter that runs a workgroup of 8
 * invocations as one 8-lane CPU vector (lavapipe). kernels/simd8/matmul.wgsl says what
 * the layout is and why; this file plans it (`planSimd8`, a pure function) and records the
 * dispatches: pack U (the operand with fewer rows) into a texture of 16-row panes, T into one of
 * 32-column panels, then one product dispatch over (panel, block of 16 U rows, batch entry).
 *
 * C = A @ B. Without swap U = A, T = B; with swap U = B^T, T = A^T and the kernel stores C^T's
 * elements at C's positions. The smaller operand dimension becomes U's rows, so there are fewer
 * panes and more panels (workgroups).
 */
import type { Tensor } from '../tensor.ts';
import { runtime } from '../runtime.ts';
import type { Device } from '../device.ts';
import type { Caps } from '../caps.ts';
import { caps, dispatch, f32Bits, kernel, ringBlock } from '../ops/launch.ts';

/** Floats in one uniform window: WebGPU's 64 KiB uniform binding limit (the simd8 kernels that
 * read weights from a uniform buffer: attention, GRU, the direct convolutions). */
export const WINDOW_FLOATS = 16384;
/** U rows per workgroup (a pane pair of 8 rows each) and T columns per panel (8 lanes x 4 columns). */
const ROWS = 16;
const PANEL = 32;
/** Longest K chunk: the product's loop over K runs chunk by chunk, and the texture height is a
 * multiple of the chunk. */
const MAX_KC = 1024;

export interface Simd8Plan {
  swap: boolean;
  K: number;
  /** U rows and T columns. */
  rows: number;
  cols: number;
  /** K per chunk (multiple of 4) and chunks. */
  kc: number;
  chunks: number;
  /** T's texture: rows per layer, layers per panel (K over layers), panels, layers in all. */
  kh: number;
  nKt: number;
  panels: number;
  layers: number;
  /** U's panes (one per batch entry, 16-row block and K layer): texel rows each (kh / 4), panes
   * stacked down a texture layer, the texture's rows and its layers (2 per layer of panes). */
  uh: number;
  uPer: number;
  uRows: number;
  uLayers: number;
}

export type Simd8Limits = Pick<Caps, 'maxTextureDimension2D' | 'maxTextureArrayLayers'>;

/** The simd8 layout of a [M, K] @ [K, N] product over `batch` entries, or null when it does not fit
 * the adapter's texture limits (the caller then runs reg16x8/reg4x4). With `allowSwap` false
 * U is always A (a caller whose output layout needs rows = M). */
export function planSimd8(M: number, N: number, K: number, batch: number, limits: Simd8Limits, allowSwap = true): Simd8Plan | null {
  const swap = allowSwap && M > N;
  const rows = swap ? N : M;
  const cols = swap ? M : N;
  // equal chunks (a last chunk of a few k would cost a whole chunk of zero padding)
  const chunks = Math.ceil(K / MAX_KC);
  const kc = Math.ceil(K / chunks / 4) * 4;
  const kh = Math.min(chunks * kc, Math.floor(limits.maxTextureDimension2D / kc) * kc);
  const nKt = Math.ceil((chunks * kc) / kh);
  const panels = Math.ceil(cols / PANEL);
  const layers = batch * panels * nKt;
  if (kh === 0 || layers > limits.maxTextureArrayLayers) return null;
  const uh = kh / 4;
  const panes = batch * Math.ceil(rows / ROWS) * nKt;
  const uPer = Math.min(panes, Math.floor(limits.maxTextureDimension2D / uh));
  const uLayers = 2 * Math.ceil(panes / uPer);
  if (uLayers > limits.maxTextureArrayLayers) return null;
  return { swap, K, rows, cols, kc, chunks, kh, nKt, panels, layers, uh, uPer, uRows: uh * uPer, uLayers };
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
  const cp = caps();
  if (!cp.simd8) return false;
  const plan = planSimd8(c.M, c.N, c.K, c.batch, cp);
  if (!plan) return false;
  packSimd8(plan, A, B, c, (uTex, tex) => {
    const spare = plan.swap ? A.t : B.t;
    runSimd8(plan, uTex, tex, out, { bias: c.bias, biasCode: c.biasCode, act: c.act, alpha: c.alpha, accumulate: false, colSplit: 0, spare, defines: c.defines });
  });
  return true;
}

/** Packs A and B for `plan` (U's panes with pack_u, T's panels with pack_t; U = A unless
 * plan.swap) into textures from acquireTexture, calls `run` with them to record the product, then
 * releases them. */
export function packSimd8(plan: Simd8Plan, A: Simd8Operand, B: Simd8Operand, c: Simd8Call, run: (uTex: GPUTexture, tex: GPUTexture) => void): void {
  const op = 'matmul';
  const dev = runtime().device;
  // (row stride, k stride) of A's rows (M) and of B's columns (N) in storage
  const aSt = A.trans ? [1, A.ld] : [A.ld, 1];
  const bSt = B.trans ? [B.ld, 1] : [1, B.ld];
  const [U, uSt, uBst] = plan.swap ? [B, bSt, c.bstB] : [A, aSt, c.bstA];
  const [T, tSt, tBst] = plan.swap ? [A, aSt, c.bstA] : [B, bSt, c.bstB];

  const uTex = acquireTexture(dev, plan.uRows, plan.uLayers);
  const tex = acquireTexture(dev, plan.kh, plan.layers);
  try {
    const pu = simd8Params(plan, U.t.offset, uSt, c.bshape, uBst, c.alpha);
    dispatch(kernel('simd8/matmul', 'pack_u', { defines: c.defines }), [panelView(uTex), U.t.bufferFor(op)], pu, [1, Math.ceil(plan.uRows / PACK_U_GROUP_ROWS), plan.uLayers]);

    const pt = simd8Params(plan, T.t.offset, tSt, c.bshape, tBst, c.alpha);
    pt[0] = plan.cols; // src_at bounds the packed operand's "rows": T's columns here
    dispatch(kernel('simd8/matmul', 'pack_t', { defines: c.defines }), [panelView(tex), T.t.bufferFor(op)], pt, [1, Math.ceil(plan.kh / (8 * PACK_ROWS)), plan.layers]);

    run(uTex, tex);
  } finally {
    releaseTexture(dev, tex);
    releaseTexture(dev, uTex);
  }
}

/** Texels each pack_t thread writes down its texture column (PACK_ROWS in the kernel). */
export const PACK_ROWS = 16;

/** Texture rows of U's panes one packing workgroup writes (pack_u and conv2d.wgsl's simd_pack_u:
 * 8 x 8 threads, a row each). */
export const PACK_U_GROUP_ROWS = 64;

/** The epilogue and output layout of `runSimd8`. */
export interface Simd8Epilogue {
  bias: Tensor | null;
  /** 0 none, 1 per column of C, 2 per row of C (kernels/simd8/matmul.wgsl's BIAS codes). */
  biasCode: number;
  /** ACT: an activation code (ops/activation.ts), and leaky ReLU's slope. */
  act: number;
  alpha: number;
  /** Store C + act(U @ T + bias) instead of act(U @ T + bias) (kernels/simd8/matmul.wgsl's
   * ACCUMULATE): a product adding to what an earlier dispatch wrote, reading only C's elements. */
  accumulate: boolean;
  /** 0: C is [rows, cols] per batch entry (or [cols, rows] when swapped). P > 0: the columns
   * are (image, position) pairs of P positions each and C is NCHW-like, [cols / P, rows, P]
   * (a convolution's output with rows = channels). */
  colSplit: number;
  /** Any read-only tensor of the call: bound in place of an absent bias (a binding must not
   * alias the output). */
  spare: Tensor;
  defines: Record<string, string>;
}

/**
 * The product pass of simd8 over operands already packed for `plan`: `uTex` holds U's panes
 * (pack_u's layout) and `tex` T's panels (pack_t's). One dispatch, workgroups (panel, 16-row
 * block, batch entry), each over the whole of K, storing with the epilogue. Other op families
 * (convolutions) pack with their own gathers and share this pass.
 */
export function runSimd8(plan: Simd8Plan, uTex: GPUTexture, tex: GPUTexture, out: Tensor, e: Simd8Epilogue): void {
  const op = 'matmul';
  // BIAS and ACT are overrides: as run-time values every output paid for all seven activations
  // (the epilogue was 43% of a K = 128 product); the layout (swap, col_split) stays run time.
  // ACCUMULATE is an override for the same reason: only accumulating products pay for its load.
  const main = kernel('simd8/matmul', 'product', { defines: e.defines, constants: { BIAS: e.biasCode, ACT: e.act, ACCUMULATE: e.accumulate ? 1 : 0 } });
  const pm = simd8Params(plan, out.offset, [0, 0], [1, 1, 1, 1], [0, 0, 0, 0], e.alpha);
  pm[15] = e.bias ? e.bias.offset : 0;
  pm[25] = plan.swap ? 1 : 0;
  pm[28] = e.colSplit;
  pm[30] = ROWS * PANEL;
  const batch = plan.layers / (plan.panels * plan.nKt);
  dispatch(main, [out.bufferFor(op), panelView(uTex), panelView(tex), (e.bias ?? e.spare).bufferFor(op)], pm, [plan.panels, Math.ceil(plan.rows / ROWS), batch]);
}

/** SimdParams (kernels/simd8/matmul.wgsl), a block of the parameter ring (launch.ts: dispatch it
 * before making another), for a packing pass (`offset`, `st` = the source's offset
 * and (row, k) strides, batch shape and strides) or the product (`offset` = C's). */
export function simd8Params(plan: Simd8Plan, offset: number, st: readonly number[], bshape: readonly number[], bst: readonly number[], alpha: number): Uint32Array {
  const p = ringBlock(32);
  p[0] = plan.rows;
  p[1] = plan.cols;
  p[2] = plan.K;
  p[3] = plan.kc;
  p[5] = plan.chunks;
  p[6] = plan.kh;
  p[7] = plan.nKt;
  p[8] = plan.panels;
  p[9] = offset;
  p[10] = st[0];
  p[11] = st[1];
  p[13] = plan.uPer;
  for (let i = 0; i < 4; i++) {
    p[16 + i] = bshape[i];
    p[20 + i] = bst[i];
  }
  p[24] = f32Bits(alpha);
  return p;
}

// ------------------------------------------------------------------------------ panel textures

/** Free panel textures per device: by size for reuse, and in release order (oldest first) for
 * eviction. Recorded work stays ordered: a later pack into a reused texture runs after the
 * dispatches that read it. */
interface FreeTextures {
  bySize: Map<string, GPUTexture[]>;
  /** Insertion order is release order; a Set drops a reused texture without a scan. */
  order: Set<GPUTexture>;
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

/** Each texture's cache key and bytes, kept on the JavaScript side: reading `height` and
 * `depthOrArrayLayers` is a call into Dawn (~1 us each, 0.2 ms of a WRN-40-2 step's recording). */
const shapes = new WeakMap<GPUTexture, { key: string; bytes: number }>();

function freeOf(dev: Device): FreeTextures {
  let f = freeTextures.get(dev);
  if (!f) freeTextures.set(dev, (f = { bySize: new Map(), order: new Set(), bytes: 0 }));
  return f;
}

/** A panel texture of `kh` rows by `layers` layers (8 rgba32float texels wide), from the free
 * list when one of that size was released. Shared with the convolutions' packing passes. */
export function acquireTexture(dev: Device, kh: number, layers: number): GPUTexture {
  const f = freeOf(dev);
  const key = textureKey(kh, layers);
  const hit = f.bySize.get(key)?.pop();
  if (hit) {
    f.order.delete(hit);
    f.bytes -= shapes.get(hit)!.bytes;
    return hit;
  }
  const tex = dev.gpu.createTexture({
    label: 'matmul-simd8-panels',
    size: [8, kh, layers],
    format: 'rgba32float',
    usage: GPUTextureUsage.TEXTURE_BINDING | GPUTextureUsage.STORAGE_BINDING,
  });
  shapes.set(tex, { key, bytes: 128 * kh * layers });
  return tex;
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
  const shape = shapes.get(tex)!;
  const list = f.bySize.get(shape.key) ?? [];
  list.push(tex);
  f.bySize.set(shape.key, list);
  f.order.add(tex);
  f.bytes += shape.bytes;
  if (f.bytes <= TEXTURE_CACHE_BYTES) return;
  // destroyed once the work recorded on them is submitted (Dawn frees them after that work), not
  // left to the garbage collector, which does not see GPU memory
  dev.flush();
  while (f.bytes > TEXTURE_CACHE_BYTES && f.order.size > 1) {
    const old: GPUTexture = f.order.values().next().value!;
    f.order.delete(old);
    const oldShape = shapes.get(old)!;
    const same = f.bySize.get(oldShape.key)!;
    same.splice(same.indexOf(old), 1);
    f.bytes -= oldShape.bytes;
    const v = views.get(old);
    if (v) dev.forgetView(v);
    old.destroy();
  }
}
