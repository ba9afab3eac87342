/**
 * PyTorch checkpoints (`torch.save` of a state dict: .pth / .pt / .bin) read as tensors only,
 * through the data-only unpickler (pickle.ts): no code runs, and any object other than dicts,
 * lists, tuples, numbers, strings and tensors is refused with a DataError naming it.
 *
 * Two layouts, both written by torch 1.x and 2.x:
 *  - zip (torch >= 1.6 default, read through zip.ts): `<name>/data.pkl` is the pickle; each storage
 *    is the stored member `<name>/data/<key>`, named by the persistent id ('storage', torch.FloatStorage, key,
 *    location, numel).
 *  - legacy (`_use_new_zipfile_serialization=False`, and files from torch < 1.6 such as the BigGAN
 *    port's): five pickles in a row (magic number 0x1950a86a20f9469cfc6c, protocol version 1001,
 *    sys_info, the object with persistent ids ('storage', type, key, location, numel,
 *    view_metadata), the sorted storage keys), then each storage as int64 numel + raw bytes.
 * Tensors are rebuilt by torch._utils._rebuild_tensor_v2 (storage, offset, size, stride): the
 * strided view is copied out contiguously. Parameters (_rebuild_parameter) become their data.
 * The tar layout of torch < 0.4 is refused.
 */
import { readFileSync } from 'node:fs';
import { toFloat32 } from '../engine/io/index.ts';
import { DataError } from './errors.ts';
import { zipDirectory, zipMemberBytes } from './zip.ts';
import { NDArray, PyGlobal, PyTuple, unpickleAt, type PickleExtensions, type PyValue } from './pickle.ts';

/** torch dtypes by storage class; `code` is the dtype written on the NDArray of a tensor. */
const STORAGES: Record<string, { code: TorchDType; size: number }> = {
  'torch.FloatStorage': { code: 'F32', size: 4 },
  'torch.DoubleStorage': { code: 'F64', size: 8 },
  'torch.HalfStorage': { code: 'F16', size: 2 },
  'torch.BFloat16Storage': { code: 'BF16', size: 2 },
  'torch.LongStorage': { code: 'I64', size: 8 },
  'torch.IntStorage': { code: 'I32', size: 4 },
  'torch.ShortStorage': { code: 'I16', size: 2 },
  'torch.CharStorage': { code: 'I8', size: 1 },
  'torch.ByteStorage': { code: 'U8', size: 1 },
  'torch.BoolStorage': { code: 'BOOL', size: 1 },
};

export type TorchDType = 'F32' | 'F64' | 'F16' | 'BF16' | 'I64' | 'I32' | 'I16' | 'I8' | 'U8' | 'BOOL';

/** One tensor of a checkpoint: contiguous little-endian bytes. */
export interface TorchTensor {
  dtype: TorchDType;
  shape: number[];
  data: Uint8Array;
}

export interface TorchCheckpoint {
  layout: 'zip' | 'legacy';
  /** The unpickled object; tensors are NDArrays whose dtype is a TorchDType. */
  root: PyValue;
}

const LEGACY_MAGIC = 0x1950a86a20f9469cfc6cn;

/** A storage while the pickle is read; legacy files fill `data` after the object's pickle. */
interface Storage {
  dtype: TorchDType;
  size: number;
  numel: number;
  key: string;
  data: Uint8Array | null;
  view: { root: string; offset: number } | null;
}

interface Pending {
  tensor: NDArray;
  storage: Storage;
  offset: number;
  stride: number[];
}

function ints(v: PyValue | undefined, what: string, fail: (m: string) => never): number[] {
  const items = v instanceof PyTuple ? v.items : Array.isArray(v) ? v : null;
  if (items === null) return fail(`${what} is not a tuple`);
  return items.map((x) => (typeof x === 'number' && Number.isSafeInteger(x) && x >= 0 ? x : fail(`${what} holds ${String(x)}`)));
}

/** The unpickler's extensions for torch, collecting storages and the tensors made from them. */
function torchExtensions(storages: Map<string, Storage>, pending: Pending[], legacy: boolean): PickleExtensions {
  const storageOf = new WeakMap<NDArray, Storage>();
  const rebuild = (args: PyValue[], fail: (m: string) => never): PyValue => {
    const [st, offset, size, stride] = args;
    const s = st instanceof NDArray ? storageOf.get(st) : undefined;
    if (!s) return fail('_rebuild_tensor without a storage');
    if (typeof offset !== 'number' || !Number.isSafeInteger(offset) || offset < 0) return fail('tensor storage offset is not a non-negative integer');
    const shape = ints(size, 'tensor size', fail);
    const strides = ints(stride, 'tensor stride', fail);
    if (strides.length !== shape.length) return fail(`tensor size (${shape.join(', ')}) and stride (${strides.join(', ')}) differ in rank`);
    const numel = shape.reduce((a, b) => a * b, 1);
    const last = numel === 0 ? offset : offset + shape.reduce((a, d, i) => a + (d - 1) * strides[i]!, 0);
    if (numel > 0 && last >= s.numel) return fail(`tensor of size (${shape.join(', ')}) at offset ${offset} reaches past its storage of ${s.numel} elements`);
    const t = new NDArray(s.dtype, '<', shape, false, new Uint8Array(0));
    pending.push({ tensor: t, storage: s, offset, stride: strides });
    return t;
  };
  const globals = new Map<string, ((args: PyValue[], fail: (m: string) => never) => PyValue) | null>([
    ['collections.OrderedDict', (args, fail) => (args.length === 0 ? new Map() : fail('OrderedDict is only allowed empty (items follow as SETITEMS)'))],
    ['torch._utils._rebuild_tensor_v2', rebuild],
    ['torch._utils._rebuild_tensor', rebuild],
    ['torch._utils._rebuild_parameter', (args, fail) => (args[0] instanceof NDArray ? args[0] : fail('_rebuild_parameter without a tensor'))],
    ['torch._utils._rebuild_parameter_with_state', (args, fail) => (args[0] instanceof NDArray ? args[0] : fail('_rebuild_parameter_with_state without a tensor'))],
    ...Object.keys(STORAGES).map((k) => [k, null] as const),
  ]);
  const persistentLoad = (pid: PyValue, fail: (m: string) => never): PyValue => {
    const items = pid instanceof PyTuple ? pid.items : null;
    if (!items || items[0] !== 'storage') return fail('a persistent id that is not a torch storage');
    const [, type, key, , numel, view] = items;
    const spec = type instanceof PyGlobal ? STORAGES[type.name] : undefined;
    if (!spec) return fail(`storage of an unsupported type ${type instanceof PyGlobal ? type.name : String(type)}`);
    if (typeof key !== 'string') return fail('storage key is not a string');
    if (typeof numel !== 'number' || !Number.isSafeInteger(numel) || numel < 0) return fail('storage size is not a non-negative integer');
    let s = storages.get(key);
    if (!s) {
      s = { dtype: spec.code, size: spec.size, numel, key, data: null, view: null };
      storages.set(key, s);
    }
    if (legacy && view !== null && view !== undefined) {
      // (view_key, offset, view_size): a view of the root storage `key` (torch < 1.0 files)
      const v = view instanceof PyTuple ? view.items : [];
      const [vkey, voff, vsize] = v;
      if (typeof vkey !== 'string' || typeof voff !== 'number' || typeof vsize !== 'number') return fail('malformed storage view metadata');
      let vs = storages.get(vkey);
      if (!vs) {
        vs = { dtype: spec.code, size: spec.size, numel: vsize, key: vkey, data: null, view: { root: key, offset: voff } };
        storages.set(vkey, vs);
      }
      s = vs;
    }
    if (s.dtype !== spec.code) return fail(`storage ${key} is read as both ${s.dtype} and ${spec.code}`);
    const handle = new NDArray(s.dtype, '<', [s.numel], false, new Uint8Array(0));
    storageOf.set(handle, s);
    return handle;
  };
  return { globals, persistentLoad, ignoreDictState: true, allowed: 'a state dict holds only tensors, dicts, lists, strings and numbers; no code from the file is run' };
}

/** Copies each tensor's strided view out of its storage. */
function materialise(pending: Pending[], storages: Map<string, Storage>, file: string): void {
  const bytesOf = (s: Storage): Uint8Array => {
    if (s.view) {
      const root = storages.get(s.view.root);
      if (!root?.data) throw new DataError(`storage view ${s.key} of a missing storage ${s.view.root}`, file);
      const start = s.view.offset * s.size;
      if (start + s.numel * s.size > root.data.length) throw new DataError(`storage view ${s.key} reaches past its root storage`, file);
      return root.data.subarray(start, start + s.numel * s.size);
    }
    if (!s.data) throw new DataError(`storage ${s.key} has no data in the file`, file);
    return s.data;
  };
  // Views with stride 0 (expand) may be larger than their storage; a hostile file could ask for
  // terabytes that way. Real state dicts copy out at most what their storages hold (plus views of
  // the same storage): allow 4x the storages' bytes and 64 MiB.
  const stored = [...storages.values()].reduce((a, s) => a + (s.view ? 0 : s.numel * s.size), 0);
  let budget = 4 * stored + (64 << 20);
  for (const { tensor: t, storage: s, offset, stride } of pending) {
    const src = bytesOf(s);
    const n = t.shape.reduce((a, b) => a * b, 1);
    const k = s.size;
    budget -= n * k;
    if (budget < 0) throw new DataError(`its tensors would take more than 4x the bytes of their storages (tensor of size (${t.shape.join(', ')})): not a plain state dict`, file);
    const contiguous = t.shape.every((_, i) => t.shape[i] === 1 || stride[i] === t.shape.slice(i + 1).reduce((a, b) => a * b, 1));
    if (contiguous) {
      t.data = src.slice(offset * k, (offset + n) * k);
      continue;
    }
    const out = new Uint8Array(n * k);
    const idx = new Array<number>(t.shape.length).fill(0);
    for (let e = 0; e < n; e++) {
      let off = offset;
      for (let d = 0; d < idx.length; d++) off += idx[d]! * stride[d]!;
      out.set(src.subarray(off * k, off * k + k), e * k);
      for (let d = idx.length - 1; d >= 0; d--) {
        if (++idx[d]! < t.shape[d]!) break;
        idx[d] = 0;
      }
    }
    t.data = out;
  }
}

function readZipLayout(path: string, bytes: Uint8Array): PyValue {
  const members = new Map(zipDirectory(bytes, path).filter((m) => !m.isDirectory).map((m) => [m.name, m]));
  const pkls = [...members.keys()].filter((n) => /^[^/]+\/data\.pkl$/.test(n));
  if (pkls.length !== 1) throw new DataError(`a zip archive without exactly one <name>/data.pkl: not a torch.save checkpoint`, path);
  const prefix = pkls[0]!.slice(0, -'data.pkl'.length);
  const member = (name: string): Uint8Array => {
    const m = members.get(name);
    if (!m) throw new DataError(`no member '${name}' in the checkpoint`, path);
    return zipMemberBytes(bytes, m, path);
  };
  // torch >= 2.1 records the byte order of the storages (older files are little-endian)
  if (members.has(`${prefix}byteorder`)) {
    const order = new TextDecoder().decode(member(`${prefix}byteorder`)).trim();
    if (order !== 'little') throw new DataError(`storages in '${order}'-endian byte order (only little-endian is read)`, path);
  }
  const storages = new Map<string, Storage>();
  const pending: Pending[] = [];
  const { value } = unpickleAt(member(`${prefix}data.pkl`), 0, `${path}:${prefix}data.pkl`, torchExtensions(storages, pending, false));
  for (const s of storages.values()) {
    const b = member(`${prefix}data/${s.key}`);
    if (b.length < s.numel * s.size) throw new DataError(`storage ${s.key} holds ${b.length} bytes, ${s.numel} ${s.dtype} elements need ${s.numel * s.size}`, path);
    s.data = b;
  }
  materialise(pending, storages, path);
  return value;
}

function readLegacyLayout(path: string, bytes: Uint8Array): PyValue {
  let pos = 0;
  const next = (ext: PickleExtensions = {}): PyValue => {
    const r = unpickleAt(bytes, pos, path, ext);
    pos = r.end;
    return r.value;
  };
  const magic = next();
  if (magic !== LEGACY_MAGIC && magic !== Number(LEGACY_MAGIC)) throw new DataError('a pickle that is not a torch.save checkpoint (no torch magic number); goe convert reads state dicts saved by torch.save', path);
  const version = next();
  if (version !== 1001) throw new DataError(`torch legacy protocol version ${String(version)} (only 1001 is known)`, path);
  const sysInfo = next();
  if (sysInfo instanceof Map && sysInfo.get('little_endian') === false) throw new DataError('a big-endian checkpoint', path);
  const storages = new Map<string, Storage>();
  const pending: Pending[] = [];
  const value = next(torchExtensions(storages, pending, true));
  const keys = next();
  if (!Array.isArray(keys) || !keys.every((k) => typeof k === 'string')) throw new DataError('the storage key list is not a list of strings', path);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  for (const key of keys as string[]) {
    const s = storages.get(key);
    if (!s) throw new DataError(`storage ${key} is listed but not used`, path);
    if (pos + 8 > bytes.length) throw new DataError(`truncated before storage ${key}`, path);
    const numel = Number(view.getBigInt64(pos, true));
    pos += 8;
    if (numel !== s.numel) throw new DataError(`storage ${key} holds ${numel} elements, its id says ${s.numel}`, path);
    const n = numel * s.size;
    if (pos + n > bytes.length) throw new DataError(`truncated inside storage ${key}`, path);
    s.data = bytes.subarray(pos, pos + n);
    pos += n;
  }
  materialise(pending, storages, path);
  return value;
}

/** Reads a torch.save file (zip or legacy layout) without running any of its code. */
export async function readTorchCheckpoint(path: string): Promise<TorchCheckpoint> {
  let bytes: Uint8Array;
  try {
    bytes = new Uint8Array(readFileSync(path));
  } catch (e) {
    throw new DataError(`cannot read: ${(e as Error).message}`, path);
  }
  if (bytes[0] === 0x50 && bytes[1] === 0x4b && bytes[2] === 0x03 && bytes[3] === 0x04) return { layout: 'zip', root: readZipLayout(path, bytes) };
  if (bytes[0] === 0x80) return { layout: 'legacy', root: readLegacyLayout(path, bytes) };
  if (bytes.length > 262 && new TextDecoder().decode(bytes.subarray(257, 262)) === 'ustar') {
    throw new DataError('a tar checkpoint of torch < 0.4: load it in PyTorch and save it again with torch.save', path);
  }
  throw new DataError('not a PyTorch checkpoint (neither a torch.save zip archive nor a pickle)', path);
}

/** A tensor of the checkpoint, from an NDArray rebuilt by the torch extensions. */
function torchTensor(a: NDArray): TorchTensor {
  return { dtype: a.dtype as TorchDType, shape: a.shape, data: a.data };
}

/**
 * The state dict inside a checkpoint: the top-level dict of tensors, or the one under 'state_dict'
 * or 'model' (training scripts' wrappers); a 'module.' prefix on every key (nn.DataParallel) is
 * removed. Anything else is a DataError saying what the file holds instead.
 */
export function stateDictOf(ckpt: TorchCheckpoint, file: string): { tensors: Map<string, TorchTensor>; notes: string[] } {
  const notes: string[] = [];
  let root = ckpt.root;
  const isTensorDict = (v: PyValue): boolean => v instanceof Map && v.size > 0 && [...v.values()].every((x) => x instanceof NDArray);
  if (root instanceof Map && !isTensorDict(root)) {
    const key = ['state_dict', 'model', 'model_state_dict'].find((k) => root instanceof Map && isTensorDict(root.get(k) ?? null));
    if (key === undefined) {
      const what = [...root.entries()].slice(0, 6).map(([k, v]) => `${String(k)}: ${describe(v)}`).join(', ');
      throw new DataError(`not a state dict of tensors (it holds ${what}${root.size > 6 ? ', ...' : ''})`, file);
    }
    notes.push(`the state dict under '${key}'`);
    root = root.get(key)!;
  }
  if (!(root instanceof Map)) throw new DataError(`not a state dict (the file holds ${describe(root)})`, file);
  let tensors = new Map<string, TorchTensor>();
  for (const [k, v] of root) {
    if (typeof k !== 'string' || !(v instanceof NDArray)) throw new DataError(`entry ${String(k)} is ${describe(v)}, not a tensor`, file);
    tensors.set(k, torchTensor(v));
  }
  if (tensors.size > 0 && [...tensors.keys()].every((k) => k.startsWith('module.'))) {
    tensors = new Map([...tensors].map(([k, v]) => [k.slice('module.'.length), v]));
    notes.push("the 'module.' prefix of nn.DataParallel removed");
  }
  return { tensors, notes };
}

function describe(v: PyValue): string {
  if (v instanceof NDArray) return `a tensor ${v.dtype} (${v.shape.join(', ')})`;
  if (v instanceof Map) return `a dict of ${v.size}`;
  if (Array.isArray(v)) return `a list of ${v.length}`;
  if (v instanceof PyTuple) return `a tuple of ${v.items.length}`;
  if (v === null) return 'None';
  return typeof v === 'string' ? `'${v.slice(0, 30)}'` : typeof v;
}

/** A state-dict tensor on the host as the engine takes it: floats as f32, integers as i32, bool / uint8 as u8. */
export interface HostStateTensor {
  shape: number[];
  data: Float32Array | Int32Array | Uint8Array;
}

/** A checkpoint tensor converted to the engine's host types (int64 values must fit int32). */
export function hostTensorOf(name: string, t: TorchTensor, file = '<checkpoint>'): HostStateTensor {
  const buf = t.data.slice().buffer; // an aligned copy
  switch (t.dtype) {
    case 'F32':
      return { shape: t.shape, data: new Float32Array(buf) };
    case 'F64':
      return { shape: t.shape, data: Float32Array.from(new Float64Array(buf)) };
    case 'F16':
    case 'BF16':
      return { shape: t.shape, data: toFloat32({ dtype: t.dtype, shape: t.shape, data: new Uint16Array(buf) }) };
    case 'I64': {
      const v = new BigInt64Array(buf);
      const out = new Int32Array(v.length);
      for (let i = 0; i < v.length; i++) {
        if (v[i]! > 2147483647n || v[i]! < -2147483648n) throw new DataError(`${name}: int64 value ${v[i]} does not fit the engine's int32`, file);
        out[i] = Number(v[i]);
      }
      return { shape: t.shape, data: out };
    }
    case 'I32':
      return { shape: t.shape, data: new Int32Array(buf) };
    case 'I16':
      return { shape: t.shape, data: Int32Array.from(new Int16Array(buf)) };
    case 'I8':
      return { shape: t.shape, data: Int32Array.from(new Int8Array(buf)) };
    case 'U8':
    case 'BOOL':
      return { shape: t.shape, data: new Uint8Array(buf) };
  }
}

/**
 * A torch.save'd state dict as host tensors (what `goe convert` writes and what
 * Module.loadStateDict takes), with the layout and the unwrapping notes (stateDictOf).
 */
export async function readTorchStateDict(path: string): Promise<{ tensors: Map<string, HostStateTensor>; layout: 'zip' | 'legacy'; notes: string[] }> {
  const ckpt = await readTorchCheckpoint(path);
  const { tensors, notes } = stateDictOf(ckpt, path);
  const out = new Map<string, HostStateTensor>();
  for (const [k, t] of tensors) out.set(k, hostTensorOf(k, t, path));
  return { tensors: out, layout: ckpt.layout, notes };
}
