/**
 * CIFAR-10 and CIFAR-100 readers, for both the binary version ("suitable for C programs") and
 * the python version that torchvision downloads (pickled dicts, read by the safe unpickler).
 * Both yield the same thing: uint8 images in CHW order (the files' own order) plus int labels.
 */
import { existsSync } from 'node:fs';
import { open, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { DataError } from './errors.ts';
import { dataDir } from './paths.ts';
import { NDArray, PyStr8, type PyValue, unpickle } from './pickle.ts';
import { sharedInt32, sharedUint8 } from './shared.ts';
import type { ArraySource } from './source.ts';

export type CifarVariant = 'cifar10' | 'cifar100';
export type CifarSplit = 'train' | 'test';

const IMAGE_BYTES = 3072;

export const CIFAR10_CLASSES = ['airplane', 'automobile', 'bird', 'cat', 'deer', 'dog', 'frog', 'horse', 'ship', 'truck'];

/** File layout of each format inside its extracted archive. */
export const CIFAR_LAYOUT = {
  cifar10: {
    binary: { dir: 'cifar-10-batches-bin', train: [1, 2, 3, 4, 5].map((i) => `data_batch_${i}.bin`), test: ['test_batch.bin'] },
    python: { dir: 'cifar-10-batches-py', train: [1, 2, 3, 4, 5].map((i) => `data_batch_${i}`), test: ['test_batch'] },
  },
  cifar100: {
    binary: { dir: 'cifar-100-binary', train: ['train.bin'], test: ['test.bin'] },
    python: { dir: 'cifar-100-python', train: ['train'], test: ['test'] },
  },
} as const;

export interface CifarOptions {
  variant: CifarVariant;
  split: CifarSplit;
  /** Folder holding the extracted `cifar-10-batches-bin` / `cifar-10-batches-py` (etc.) folder. Default: `dataDir()/<variant>`. */
  root?: string;
  /** Which format to read; 'auto' takes the binary version if present, else the python version. */
  format?: 'auto' | 'binary' | 'python';
  /** CIFAR-100 only: fine (100 classes, default) or coarse (20 superclasses) labels. */
  labels?: 'fine' | 'coarse';
}

/** Read a CIFAR split from an extracted archive (binary or python format). */
export async function readCifar(opts: CifarOptions): Promise<ArraySource> {
  const root = opts.root ?? join(dataDir(), opts.variant);
  const layout = CIFAR_LAYOUT[opts.variant];
  const format = opts.format ?? 'auto';
  const pick = (f: 'binary' | 'python'): string[] => layout[f][opts.split].map((n) => join(root, layout[f].dir, n));
  const have = (f: 'binary' | 'python'): boolean => pick(f).every((p) => existsSync(p));
  let chosen: 'binary' | 'python';
  if (format === 'auto') {
    if (have('binary')) chosen = 'binary';
    else if (have('python')) chosen = 'python';
    else {
      throw new DataError(
        `no ${opts.variant} ${opts.split} files found: expected ${layout.binary.dir}/ (binary version) or ${layout.python.dir}/ (python version); ` +
          `download with download('${opts.variant}') or extract the archive there`,
        root,
      );
    }
  } else chosen = format;
  const files = pick(chosen);
  const labelKind = opts.labels ?? 'fine';
  return chosen === 'binary' ? readCifarBinary(files, opts.variant, labelKind) : readCifarPython(files, opts.variant, labelKind);
}

/**
 * Binary format: records of 1 label byte (CIFAR-10) or 2 (coarse, fine: CIFAR-100) followed by
 * 3072 pixel bytes (1024 red, 1024 green, 1024 blue, rows top to bottom).
 */
export async function readCifarBinary(files: string[], variant: CifarVariant, labelKind: 'fine' | 'coarse' = 'fine'): Promise<ArraySource> {
  const labelBytes = variant === 'cifar10' ? 1 : 2;
  const record = labelBytes + IMAGE_BYTES;
  let total = 0;
  const sizes: number[] = [];
  for (const f of files) {
    const st = await stat(f).catch((e: unknown) => {
      throw new DataError(`cannot read CIFAR binary batch: ${(e as Error).message}`, f);
    });
    if (st.size === 0 || st.size % record !== 0) {
      throw new DataError(
        `not a ${variant} binary batch: size ${st.size} bytes is not a positive multiple of the ${record}-byte record (truncated or wrong variant?)`,
        f,
      );
    }
    sizes.push(st.size / record);
    total += st.size / record;
  }
  const images = allocate(total, files);
  const labels = sharedInt32(total);
  const numClasses = variant === 'cifar10' ? 10 : labelKind === 'fine' ? 100 : 20;
  const labelAt = variant === 'cifar10' ? 0 : labelKind === 'coarse' ? 0 : 1;
  // Read in chunks of records: a file is never held whole (readFile refuses files over 2 GiB).
  const chunkRecords = 1024;
  const buf = new Uint8Array(chunkRecords * record);
  let n = 0;
  for (let fi = 0; fi < files.length; fi++) {
    const f = files[fi]!;
    const fh = await open(f, 'r').catch((e: unknown) => {
      throw new DataError(`cannot read CIFAR binary batch: ${(e as Error).message}`, f);
    });
    try {
      for (let first = 0; first < sizes[fi]!; first += chunkRecords) {
        const count = Math.min(chunkRecords, sizes[fi]! - first);
        const want = count * record;
        for (let got = 0; got < want; ) {
          const { bytesRead } = await fh.read(buf, got, want - got, first * record + got).catch((e: unknown) => {
            throw new DataError(`cannot read CIFAR binary batch: ${(e as Error).message}`, f);
          });
          if (bytesRead === 0) throw new DataError(`file ended at byte ${first * record + got}, before its ${sizes[fi]! * record} bytes (changed while reading?)`, f);
          got += bytesRead;
        }
        for (let i = 0; i < count; i++, n++) {
          const r = first + i;
          const o = i * record;
          const label = buf[o + labelAt]!;
          if (label >= numClasses) {
            throw new DataError(`record ${r}: label ${label} out of range 0..${numClasses - 1} for ${variant} (${labelKind}) — wrong variant or corrupt file?`, f);
          }
          if (variant === 'cifar100' && buf[o]! >= 20) throw new DataError(`record ${r}: coarse label ${buf[o]} out of range 0..19`, f);
          labels[n] = label;
          images.set(buf.subarray(o + labelBytes, o + record), n * IMAGE_BYTES);
        }
      }
    } finally {
      await fh.close();
    }
  }
  return cifarSource(files, variant, images, labels);
}

/**
 * Python format: each file is a pickled dict {'data': uint8 array (N, 3072), 'labels': [int]} for
 * CIFAR-10, {'data', 'fine_labels', 'coarse_labels'} for CIFAR-100, plus 'filenames' and
 * 'batch_label'. Read with the safe unpickler (no code is executed).
 */
export async function readCifarPython(files: string[], variant: CifarVariant, labelKind: 'fine' | 'coarse' = 'fine'): Promise<ArraySource> {
  const parts: { data: Uint8Array; labels: number[] }[] = [];
  const numClasses = variant === 'cifar10' ? 10 : labelKind === 'fine' ? 100 : 20;
  const labelKey = variant === 'cifar10' ? 'labels' : `${labelKind}_labels`;
  for (const f of files) {
    const buf = await readFile(f).catch((e: unknown) => {
      throw new DataError(`cannot read CIFAR python batch: ${(e as Error).message}`, f);
    });
    const d = unpickle(buf, f);
    if (!(d instanceof Map)) throw new DataError('CIFAR python batch is not a pickled dict', f);
    const data = d.get('data');
    if (!(data instanceof NDArray)) throw new DataError("CIFAR python batch has no numpy array under 'data'", f);
    if (data.dtype !== 'u1') throw new DataError(`'data' has dtype ${data.dtype}, expected uint8 ('u1')`, f);
    if (data.shape.length !== 2 || data.shape[1] !== IMAGE_BYTES || data.fortranOrder) {
      throw new DataError(`'data' has shape (${data.shape.join(', ')})${data.fortranOrder ? ' in Fortran order' : ''}, expected (N, 3072) in C order`, f);
    }
    const raw = d.get(labelKey);
    if (!Array.isArray(raw)) {
      const keys = [...d.keys()].join(', ');
      throw new DataError(`no label list under '${labelKey}' (keys: ${keys}) — is this a ${variant} file?`, f);
    }
    const labels = raw.map((v: PyValue, i: number) => {
      if (typeof v !== 'number' || !Number.isInteger(v) || v < 0 || v >= numClasses) {
        throw new DataError(`label ${i} is ${String(v)}, outside 0..${numClasses - 1} for ${variant} (${labelKind})`, f);
      }
      return v;
    });
    if (labels.length !== data.shape[0]) throw new DataError(`${labels.length} labels for ${data.shape[0]} images`, f);
    parts.push({ data: data.data, labels });
  }
  const total = parts.reduce((a, p) => a + p.labels.length, 0);
  const images = allocate(total, files);
  const labels = sharedInt32(total);
  let n = 0;
  for (const p of parts) {
    images.set(p.data, n * IMAGE_BYTES);
    labels.set(p.labels, n);
    n += p.labels.length;
  }
  return cifarSource(files, variant, images, labels);
}

/** Room for `total` images, or a DataError naming the files when the engine cannot allocate it. */
function allocate(total: number, files: string[]): Uint8Array {
  try {
    return sharedUint8(total * IMAGE_BYTES);
  } catch (e) {
    throw new DataError(`cannot hold ${total} images (${total * IMAGE_BYTES} bytes) in memory: ${(e as Error).message}`, files.join(', '));
  }
}

/** Class names from a python-format meta file (`batches.meta` or `meta`), read safely. */
/** The in-memory source both CIFAR formats produce (uint8 CHW images, 32x32). */
function cifarSource(files: string[], variant: CifarVariant, images: Uint8Array, labels: Int32Array): ArraySource {
  return {
    kind: 'array',
    name: files.length === 1 ? files[0]! : `${files[0]} (+${files.length - 1} more)`,
    length: labels.length,
    sampleShape: [3, 32, 32],
    layout: 'CHW',
    dtype: 'uint8',
    data: images,
    labels,
    classes: variant === 'cifar10' ? CIFAR10_CLASSES : undefined,
  };
}

export async function readCifarPythonMeta(file: string): Promise<{ labelNames?: string[]; fineLabelNames?: string[]; coarseLabelNames?: string[] }> {
  const buf = await readFile(file).catch((e: unknown) => {
    throw new DataError(`cannot read CIFAR meta file: ${(e as Error).message}`, file);
  });
  const d = unpickle(buf, file);
  if (!(d instanceof Map)) throw new DataError('CIFAR meta file is not a pickled dict', file);
  const names = (k: string): string[] | undefined => {
    const v = d.get(k);
    if (!Array.isArray(v)) return undefined;
    return v.map((x, i) => {
      if (typeof x === 'string') return x;
      if (x instanceof PyStr8) return x.text;
      if (x instanceof Uint8Array) return Buffer.from(x).toString('latin1');
      if (typeof x === 'number' || typeof x === 'bigint') return String(x);
      throw new DataError(`'${k}' item ${i} is not a string`, file);
    });
  };
  return { labelNames: names('label_names'), fineLabelNames: names('fine_label_names'), coarseLabelNames: names('coarse_label_names') };
}
