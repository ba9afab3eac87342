/**
 * Precomputed outliers from a file: an .npz member (default key "x", e.g. the paper's
 * samples-50.0.npz, uint8 NCHW) or a .npy array; images (uint8/float32) or int32 token ids [N, L].
 * `sample(n, seed)` returns the whole set (read lazily by offset when stored uncompressed) when n
 * covers it, else a seeded random subset of n samples. `saveOutlierSet` writes any set in the
 * format this sampler reads back.
 */
import { writeFile } from 'node:fs/promises';
import { DataError, NpzFile, Rng, openNpyImages, permutation, readNpy, readNpyHeader, subset, type ArraySource, type NpyArray, type Source } from '../../data/index.ts';
import { saveNpz, type NpyArrayIn } from '../../engine/index.ts';
import type { OutlierSampler, OutlierSet } from './types.ts';

export interface FileSamplerOptions {
  /** Member of an .npz (default "x"). */
  key?: string;
  /** Image layout when the shape is ambiguous. */
  layout?: 'CHW' | 'HWC';
  /** Name in logs (default: the file name). */
  name?: string;
}

function tokenSource(a: NpyArray, name: string): ArraySource {
  if (a.shape.length !== 2) throw new DataError(`token arrays must be [N, L], got (${a.shape.join(', ')})`, name);
  const data = new Int32Array(new SharedArrayBuffer(a.data.length * 4));
  for (let i = 0; i < a.data.length; i++) data[i] = Number(a.data[i]);
  return { kind: 'array', name, length: a.shape[0]!, sampleShape: [a.shape[1]!], layout: 'CHW', dtype: 'int32', data, labels: null };
}

/** A ragged token set as saveOutlierSet writes it: "x" the ids end to end, "offsets" [N + 1], "pad" [1]. */
function raggedTokenSource(x: NpyArray, offsets: NpyArray, pad: NpyArray | null, name: string): ArraySource {
  const n = offsets.data.length - 1;
  const off = new Int32Array(new SharedArrayBuffer(offsets.data.length * 4));
  for (let i = 0; i <= n; i++) off[i] = Number(offsets.data[i]);
  if (x.shape.length !== 1 || off[n] !== x.data.length) throw new DataError(`ragged token set: "x" must hold the ${off[n]} ids "offsets" covers`, name);
  const data = new Int32Array(new SharedArrayBuffer(x.data.length * 4));
  for (let i = 0; i < x.data.length; i++) data[i] = Number(x.data[i]);
  let longest = 1;
  for (let i = 0; i < n; i++) longest = Math.max(longest, off[i + 1]! - off[i]!);
  return { kind: 'array', name, length: n, sampleShape: [longest], layout: 'CHW', dtype: 'int32', data, offsets: off, pad: pad === null ? 0 : Number(pad.data[0]), labels: null };
}

function isIntegerCode(code: string): boolean {
  return /^[iu][248]$/.test(code) && code !== 'u1';
}

export class FileSampler implements OutlierSampler {
  readonly name: string;
  readonly path: string;
  readonly key: string;
  readonly layout: 'CHW' | 'HWC' | undefined;

  constructor(path: string, opts: FileSamplerOptions = {}) {
    this.path = path;
    this.key = opts.key ?? 'x';
    this.layout = opts.layout;
    this.name = opts.name ?? path.split('/').pop()!;
  }

  /** The whole file as a source (lazy where possible). */
  async open(): Promise<Source> {
    const npz = this.path.endsWith('.npz');
    if (npz) {
      const f = await NpzFile.open(this.path);
      const m = f.members.find((x) => x.name === `${this.key}.npy` || x.name === this.key);
      if (m === undefined) throw new DataError(`no array '${this.key}' in the archive (has: ${f.keys.join(', ')})`, this.path);
      const code = m.method === 0 ? (await readNpyHeader(this.path, m.dataStart)).code : (await f.array(this.key)).header.code;
      if (isIntegerCode(code)) {
        if (f.keys.includes('offsets')) return raggedTokenSource(await f.array(this.key), await f.array('offsets'), f.keys.includes('pad') ? await f.array('pad') : null, this.name);
        return tokenSource(await f.array(this.key), this.name);
      }
      return f.images(this.key, { layout: this.layout, name: this.name });
    }
    if (isIntegerCode((await readNpyHeader(this.path)).code)) return tokenSource(await readNpy(this.path), this.name);
    return openNpyImages(this.path, { layout: this.layout, name: this.name });
  }

  /** The whole file in memory (for sub-sampling). */
  private async eager(): Promise<Source> {
    const src = await this.open();
    if (src.kind === 'array') return src;
    const a = this.path.endsWith('.npz') ? await (await NpzFile.open(this.path)).array(this.key) : await readNpy(this.path);
    return inMemory(a, src);
  }

  async sample(n: number, seed: number): Promise<OutlierSet> {
    let src = await this.open();
    const whole = !(n > 0) || n >= src.length;
    if (!whole) {
      if (src.kind !== 'array') src = await this.eager();
      const idx = permutation(src.length, new Rng(seed, 0xf11e)).subarray(0, n);
      src = subset(src as ArraySource, Array.from(idx).sort((a, b) => a - b));
    }
    return { name: this.name, source: src, info: { sampler: 'file', path: this.path, key: this.key, n: src.length, seed: whole ? null : seed } };
  }
}

/** A lazily read C-order source's data, read whole (same geometry). */
function inMemory(a: NpyArray, like: Source): ArraySource {
  if (like.kind !== 'npy') throw new DataError('internal: expected a lazily read source', like.name);
  const sab = new SharedArrayBuffer(a.data.byteLength);
  const data = like.dtype === 'uint8' ? new Uint8Array(sab) : new Float32Array(sab);
  data.set(a.data as Uint8Array & Float32Array);
  return { kind: 'array', name: like.name, length: like.length, sampleShape: like.sampleShape, layout: like.layout, dtype: like.dtype, data, labels: null };
}

/** The samples of an in-memory set as an array (uint8 images or int32 tokens), NCHW / [N, L]. */
function setArray(set: OutlierSet): NpyArrayIn {
  const s = set.source;
  if (s.kind !== 'array') throw new DataError(`only in-memory outlier sets can be saved (this one is read from ${s.kind === 'npy' ? s.path : 'image files'})`, s.name);
  if (s.dtype === 'int32') return { data: s.data as Int32Array, shape: s.offsets !== undefined ? [s.data.length] : [s.length, ...s.sampleShape] };
  if (s.dtype !== 'uint8' || s.layout !== 'CHW') throw new DataError('saved image sets are uint8 NCHW', s.name);
  return { data: s.data as Uint8Array, shape: [s.length, ...s.sampleShape] };
}

/**
 * Saves a set as .npz: "x" (uint8 NCHW images or int32 token ids), "y" (generator classes, when
 * known), and `<path>.json` with the set's description (and `<path>.txt` with generated text).
 */
export async function saveOutlierSet(path: string, set: OutlierSet): Promise<void> {
  const arrays: Record<string, NpyArrayIn> = { x: setArray(set) };
  const s = set.source;
  if (s.kind === 'array' && s.offsets !== undefined) {
    arrays.offsets = { data: s.offsets, shape: [s.offsets.length] };
    arrays.pad = { data: Int32Array.of(s.pad ?? 0), shape: [1] };
  }
  if (set.classes) arrays.y = { data: set.classes, shape: [set.classes.length] };
  await saveNpz(path, arrays);
  await writeFile(`${path}.json`, JSON.stringify({ name: set.name, ...set.info }, null, 2) + '\n');
  if (set.texts) await writeFile(`${path}.txt`, set.texts.join('\n') + '\n');
}
