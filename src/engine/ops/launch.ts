/**
 * Small helpers every op family uses to launch kernels: grid sizes beyond 65535 workgroups, and
 * the packed parameter block of the strided kernels (see kernels/elementwise.wgsl).
 */
import { runtime } from '../runtime.ts';
import type { Kernel } from '../device.ts';
import type { KernelSpec } from '../kernels.ts';
import type { DType, Tensor } from '../tensor.ts';
import { OpError } from '../errors.ts';
import type { Caps } from '../caps.ts';

export const MAX_RANK = 8;
export const WG = 256;

/** Workgroup grid covering `workgroups` groups: x up to 32768, the rest in y. Kernels recover
 * the flat index as gid.x + gid.y * num_workgroups.x * WG. */
export function grid1d(threads: number, wg = WG): [number, number] {
  const groups = Math.ceil(threads / wg);
  if (groups <= 32768) return [Math.max(groups, 1), 1];
  return [32768, Math.ceil(groups / 32768)];
}

/**
 * Values of the subgroup placeholders the kernel files share: `{{SUBGROUPS}}` (the enable
 * directive), `{{SG_FIRST}}` (subgroupBroadcastFirst, or nothing: the identity), `{{SG_BCAST}}`
 * and `{{SG_SHUFFLE}}` (subgroupBroadcast / subgroupShuffle). Without the feature the last two
 * name the file's `sg_unavailable` stand-in, which only keeps the module compiling: the kernels
 * that broadcast run only where `caps().simd8` holds.
 */
export function subgroupDefines(): Record<string, string> {
  return caps().subgroups ? SG_ON : SG_OFF;
}

// frozen: the kernel cache memoises their keys (kernels.ts)
const SG_ON = Object.freeze({ SUBGROUPS: 'enable subgroups;', SG_FIRST: 'subgroupBroadcastFirst', SG_BCAST: 'subgroupBroadcast', SG_SHUFFLE: 'subgroupShuffle' });
const SG_OFF = Object.freeze({ SUBGROUPS: '', SG_FIRST: '', SG_BCAST: 'sg_unavailable', SG_SHUFFLE: 'sg_unavailable' });

/** What the kernels may assume on this device (caps.ts); every plan reads this. */
export function caps(): Caps {
  return runtime().device.caps;
}

export function kernel(file: string, entry: string, spec?: KernelSpec): Kernel {
  return runtime().kernels.get(file, entry, spec);
}

export function dispatch(k: Kernel, buffers: readonly (GPUBuffer | GPUBindingResource)[], params: ArrayBufferView | null, groups: readonly [number, number?, number?]): void {
  runtime().device.dispatch(k, buffers, params, groups);
}

/**
 * The strided kernels' parameter blocks are views into one reused buffer, not arrays of their
 * own: a typed array over 64 bytes gets a backing store outside V8's heap, ~1.1 us to make (and
 * 0.5 us more for a Float32 view of it) against 0.04 us for a view, once per elementwise dispatch
 * (bench/NOTES.md, "Parameter blocks without an allocation"). Device.dispatch copies a block into
 * its uniform arena at once, so a block is dead after its dispatch; the ring holds 2^18 words,
 * thousands of blocks, before it comes round. Rule: pass a block to `dispatch` before making
 * another op's; never keep one.
 */
const RING_WORDS = 1 << 18;
const ring = new ArrayBuffer(RING_WORDS * 4);
let ringAt = 0;

/** `words` zeroed u32 of the parameter ring (see above), 16-byte aligned: a parameter block for
 * one dispatch, to be passed to `dispatch` before the next block is made. */
export function ringBlock(words: number): Uint32Array {
  const n = (words + 3) & ~3;
  if (ringAt + n > RING_WORDS) ringAt = 0;
  const block = new Uint32Array(ring, ringAt * 4, words);
  ringAt += n;
  block.fill(0);
  return block;
}

const F32_SCRATCH = new Float32Array(1);
const F32_BITS = new Uint32Array(F32_SCRATCH.buffer);

/** The bits of `x` as an f32, for a float slot of a u32 parameter block: a Float32Array over the
 * block's `.buffer` moves the block's bytes off V8's heap (~0.7 us a block, bench/NOTES.md,
 * "Parameter blocks without an allocation"). */
export function f32Bits(x: number): number {
  F32_SCRATCH[0] = x;
  return F32_BITS[0];
}

/** Packs (n, rank, offsets, 2 scalars) + shape + per-operand strides, as the strided kernels read
 * them. The block is a view of the parameter ring: dispatch it before building the next. */
export function stridedParams(
  shape: readonly number[],
  operands: readonly { strides: readonly number[]; offset: number }[],
  scalars: readonly number[] = [],
  scalarsAreInt = false,
): Uint32Array {
  const rank = shape.length;
  if (rank > MAX_RANK) throw new OpError('kernel', `rank ${rank} exceeds the supported maximum of ${MAX_RANK}`);
  // header: 8 u32, then shape and each operand's strides as 8 u32 each (array<vec4<u32>,2>)
  const nOps = Math.max(operands.length, 3);
  const buf = ringBlock(8 + 8 * (1 + nOps));
  let n = 1;
  for (const d of shape) n *= d;
  buf[0] = n;
  buf[1] = rank;
  for (let i = 0; i < operands.length && i < 3; i++) buf[2 + i] = operands[i].offset;
  if (scalars.length > 0) {
    const f = scalarsAreInt ? null : new Float32Array(buf.buffer, buf.byteOffset, 8);
    for (let i = 0; i < scalars.length && i < 2; i++) {
      if (f) f[5 + i] = scalars[i];
      else buf[5 + i] = scalars[i] | 0;
    }
  }
  for (let d = 0; d < rank; d++) buf[8 + d] = shape[d];
  for (let k = 0; k < operands.length; k++) {
    const strides = operands[k].strides;
    for (let d = 0; d < rank; d++) buf[16 + 8 * k + d] = strides[d];
  }
  return buf;
}

const DTYPE_DEFINES = new Map<DType, Readonly<{ T: string }>>();

/** The element-type define (one frozen object per dtype: the kernel cache memoises its key). */
export function defines(dtype: DType): { T: string } {
  let d = DTYPE_DEFINES.get(dtype);
  if (!d) DTYPE_DEFINES.set(dtype, (d = Object.freeze({ T: dtype })));
  return d;
}

/** Strides of `t` viewed with shape `shape` under broadcasting (0 along expanded dimensions). */
export function broadcastStrides(op: string, t: Tensor, shape: readonly number[]): number[] {
  const r = shape.length;
  const off = r - t.rank;
  if (off < 0) throw new OpError(op, `cannot broadcast shape [${t.shape.join(', ')}] to [${shape.join(', ')}]`);
  const s = new Array<number>(r).fill(0);
  for (let d = 0; d < t.rank; d++) {
    const size = t.shape[d];
    if (size === shape[d + off]) s[d + off] = size === 1 ? 0 : t.strides[d];
    else if (size === 1) s[d + off] = 0;
    else throw new OpError(op, `cannot broadcast shape [${t.shape.join(', ')}] to [${shape.join(', ')}]`);
  }
  return s;
}

/** The NumPy broadcast of two shapes, or a clear error naming the op. */
export function broadcastShapes(op: string, a: readonly number[], b: readonly number[]): number[] {
  const r = Math.max(a.length, b.length);
  const out = new Array<number>(r);
  for (let i = 0; i < r; i++) {
    const da = a[a.length - r + i] ?? 1;
    const db = b[b.length - r + i] ?? 1;
    if (da !== db && da !== 1 && db !== 1) {
      throw new OpError(op, `shapes [${a.join(', ')}] and [${b.join(', ')}] cannot be broadcast together (dimension ${i}: ${da} vs ${db})`);
    }
    out[i] = da === 1 ? db : da;
  }
  return out;
}
