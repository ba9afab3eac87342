/**
 * The block tables of the multi-tensor kernels (kernels/optimizers.wgsl): each tensor range to
 * update is cut into blocks of at most BLOCK elements, one workgroup per block, each row
 * (param offset, grad offset, state offset, length). Tables are uploaded once and cached by what
 * they describe, so a steady training loop uploads nothing.
 *
 * Tables are small, immutable and long-lived, so they get their own GPU buffers instead of pool
 * buffers (as the uniform arena and the index-error register do): taking buffers from the pool's
 * free lists during the first step would only make the next step allocate replacements.
 */
import { runtime } from '../runtime.ts';
import { dispatch, kernel } from '../ops/launch.ts';
import type { KernelSpec } from '../kernels.ts';

/** Elements per workgroup: 256 threads x 8 elements each. */
export const BLOCK = 2048;

export interface Segment {
  /** offsets (elements) into the parameter, gradient and state buffers, and the length */
  p: number;
  g: number;
  s: number;
  n: number;
}

/** The rows of a block table for these segments. */
export function blockRows(segs: readonly Segment[]): Uint32Array {
  let rows = 0;
  for (const s of segs) rows += Math.ceil(s.n / BLOCK);
  const out = new Uint32Array(Math.max(rows, 1) * 4);
  let r = 0;
  for (const s of segs) {
    for (let k = 0; k < s.n; k += BLOCK) {
      out[4 * r] = s.p + k;
      out[4 * r + 1] = s.g + k;
      out[4 * r + 2] = s.s + k;
      out[4 * r + 3] = Math.min(BLOCK, s.n - k);
      r++;
    }
  }
  return out;
}

export function rowCount(segs: readonly Segment[]): number {
  let rows = 0;
  for (const s of segs) rows += Math.ceil(s.n / BLOCK);
  return rows;
}

/** A block table on the GPU and its row count. */
export interface Table {
  readonly rows: number;
  readonly buffer: GPUBuffer;
}

function uploadTable(data: Uint32Array): GPUBuffer {
  const { device } = runtime();
  const buffer = device.gpu.createBuffer({ label: 'optim-block-table', size: Math.max(16, data.byteLength), usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST });
  device.upload(buffer, 0, data);
  return buffer;
}

function destroyTable(t: Table): void {
  // recorded work may still read the table: destroyBuffer submits it before the buffer goes
  runtime().device.destroyBuffer(t.buffer);
}

/** Uploaded tables by key; the oldest are dropped beyond `limit` entries. */
export class TableCache {
  private readonly tables = new Map<string, Table>();
  private readonly limit: number;

  constructor(limit = 256) {
    this.limit = limit;
  }

  get(segs: readonly Segment[]): Table {
    const key = segs.map((s) => `${s.p},${s.g},${s.s},${s.n}`).join(';');
    const hit = this.tables.get(key);
    if (hit) return hit;
    const table: Table = { rows: rowCount(segs), buffer: uploadTable(blockRows(segs)) };
    this.tables.set(key, table);
    if (this.tables.size > this.limit) {
      const [oldKey, old] = this.tables.entries().next().value as [string, Table];
      this.tables.delete(oldKey);
      destroyTable(old);
    }
    return table;
  }

  get size(): number {
    return this.tables.size;
  }

  dispose(): void {
    for (const t of this.tables.values()) destroyTable(t);
    this.tables.clear();
  }
}

/** Field layout of the kernels' uniform block (struct Params in optimizers.wgsl). */
export interface OptimParams {
  rows: number;
  first?: number;
  nPartials?: number;
  partBase?: number;
  lr?: number;
  wd?: number;
  a?: number;
  b?: number;
  eps?: number;
  stepSize?: number;
  bc2Sqrt?: number;
  maxNorm?: number;
}

export function packParams(p: OptimParams): Uint32Array {
  const u = new Uint32Array(12);
  const f = new Float32Array(u.buffer);
  u[0] = p.rows;
  u[1] = p.first ?? 0;
  u[2] = p.nPartials ?? 0;
  u[3] = p.partBase ?? 0;
  f[4] = p.lr ?? 0;
  f[5] = p.wd ?? 0;
  f[6] = p.a ?? 0;
  f[7] = p.b ?? 0;
  f[8] = p.eps ?? 0;
  f[9] = p.stepSize ?? 0;
  f[10] = p.bc2Sqrt ?? 0;
  f[11] = p.maxNorm ?? 0;
  return u;
}

/** Dispatches `entry` with one workgroup per table row. */
export function dispatchRows(entry: string, spec: KernelSpec, buffers: readonly GPUBuffer[], params: OptimParams): void {
  const rows = params.rows;
  if (rows === 0) return;
  const gx = Math.min(rows, 32768);
  dispatch(kernel('optimizers', entry, spec), buffers, packParams(params), [gx, Math.ceil(rows / gx)]);
}
