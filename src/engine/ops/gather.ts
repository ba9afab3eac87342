/**
 * Index ops (kernels/gather.wgsl), backward beside forward.
 *
 * Out-of-range indices: no kernel here (nor the fused losses) ever reads out of bounds. A bad
 * index reads as 0 and is recorded in the device's index-error register; `checkIndexErrors()`
 * reads the register (one small readback, only when called) and throws an OpError naming the ops
 * and the bad values. `validateIndices` checks one tensor at once.
 */
import { Tensor } from '../tensor.ts';
import { runtime } from '../runtime.ts';
import type { Device } from '../device.ts';
import { OpError } from '../errors.ts';
import { dispatch, grid1d, kernel } from './launch.ts';

// ------------------------------------------------------------------------- the error register

/** The bit each op sets in the register when it meets an index out of range. */
export const INDEX_OP_BITS = { crossEntropy: 1, nllLoss: 2, gather: 4, indexSelect: 8, embedding: 16, oneHot: 32 } as const;
export type IndexOp = keyof typeof INDEX_OP_BITS;

const REGISTER_WORDS = 8;
const INT_MAX = 0x7fffffff;
const INT_MIN = -0x80000000;
const registers = new WeakMap<Device, GPUBuffer>();

function initialRegister(): Int32Array {
  return new Int32Array([0, 0, INT_MAX, INT_MIN, INT_MAX, 0, 0, 0]);
}

function newRegister(device: Device): GPUBuffer {
  const buf = device.gpu.createBuffer({
    label: 'index-error-register',
    size: REGISTER_WORDS * 4,
    usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST,
  });
  device.upload(buf, 0, initialRegister());
  return buf;
}

/** The device's index-error register (created on first use). Kernels record bad indices in it. */
export function indexErrorRegister(): GPUBuffer {
  const { device } = runtime();
  let buf = registers.get(device);
  if (!buf) {
    buf = newRegister(device);
    registers.set(device, buf);
  }
  return buf;
}

export interface IndexErrorReport {
  count: number;
  ops: IndexOp[];
  min: number;
  max: number;
  /** Position (flat element or row) of the first bad index seen by any op. */
  first: number;
}

function decode(words: Int32Array): IndexErrorReport | null {
  if (words[0] === 0) return null;
  const ops = (Object.keys(INDEX_OP_BITS) as IndexOp[]).filter((k) => (words[1] & INDEX_OP_BITS[k]) !== 0);
  return { count: words[0], ops, min: words[2], max: words[3], first: words[4] };
}

/**
 * Reads and clears the index-error register; throws an OpError if any op met an index out of
 * range since the last check (those ops treated it as ignored / zero). Waits on the GPU: call it
 * at a sync point (end of an epoch, or after the first step), never inside a step.
 */
export async function checkIndexErrors(): Promise<void> {
  const { device } = runtime();
  const buf = registers.get(device);
  if (!buf) return;
  const words = new Int32Array(await device.read(buf, 0, REGISTER_WORDS * 4));
  const report = decode(words);
  if (!report) return;
  device.upload(buf, 0, initialRegister());
  throw new OpError(
    report.ops.join(', ') || 'index',
    `${report.count} index value(s) out of range (bad values between ${report.min} and ${report.max}, first at position ${report.first}); ` +
      'they were treated as ignored (zero contribution)',
  );
}

/** Records a range check of i32 `ids` (valid: [0, hi), plus `ignore` when given) into `register`. */
export function recordRangeCheck(ids: Tensor, hi: number, op: IndexOp, register: GPUBuffer, ignore?: number): void {
  if (ids.size === 0) return;
  const p = new Int32Array([ids.size, ids.offset, hi, ignore ?? 0, ignore === undefined ? 0 : 1, INDEX_OP_BITS[op], 0, 0]);
  dispatch(kernel('gather', 'check_range'), [register, ids.bufferFor(op)], p, grid1d(ids.size));
}

/**
 * Checks at once that every value of the i32 tensor `ids` lies in [0, hi) (or equals `ignore`);
 * throws an OpError naming `op` otherwise. One small readback: for input validation outside a
 * training step. `ids` must be contiguous.
 */
export async function validateIndices(op: string, ids: Tensor, hi: number, ignore?: number): Promise<void> {
  ids.storageFor(op);
  if (ids.dtype !== 'i32') throw new OpError(op, `indices must be i32, got ${ids.dtype} of shape [${ids.shape.join(', ')}]`);
  if (!ids.isContiguous) throw new OpError(op, `indices of shape [${ids.shape.join(', ')}] must be contiguous`);
  const { device } = runtime();
  const reg = newRegister(device);
  try {
    recordRangeCheck(ids, hi, 'gather', reg, ignore);
    const report = decode(new Int32Array(await device.read(reg, 0, REGISTER_WORDS * 4)));
    if (report) {
      throw new OpError(
        op,
        `${report.count} of ${ids.size} indices of shape [${ids.shape.join(', ')}] are outside [0, ${hi})` +
          `${ignore !== undefined ? ` (and not the ignore index ${ignore})` : ''}: values between ${report.min} and ${report.max}, first at flat position ${report.first}`,
      );
    }
  } finally {
    device.flush();
    reg.destroy();
  }
}
