/**
 * A restricted, safe reader for Python pickles: enough for the CIFAR "python version" files
 * (Python 2 cPickle, protocol 2) and for the same dictionaries re-pickled by Python 3
 * (protocols 2 to 5), and nothing more.
 *
 * Safety: this is not an emulation of Python's unpickler. It interprets a fixed set of data
 * opcodes (dicts, lists, tuples, strings, bytes, numbers, memo) and exactly the globals that
 * numpy arrays need, each mapped to a JavaScript function written here:
 *   numpy.core.multiarray._reconstruct / numpy._core.multiarray._reconstruct, numpy.ndarray,
 *   numpy.dtype, numpy.core.numeric._frombuffer / numpy._core.numeric._frombuffer,
 *   _codecs.encode (latin-1 only), builtins.bytearray.
 * Any other global, any other opcode (INST, OBJ, NEWOBJ, persistent ids, extension codes, ...)
 * is refused with a DataError that names the file, the opcode or global and its offset.
 * Nothing is ever executed or constructed from the pickle's say-so.
 *
 * A caller may widen this for one file format through `PickleExtensions` (torch-checkpoint.ts
 * reads PyTorch state dicts so): more named globals, each mapped to a function of its own, and
 * persistent ids (BINPERSID) resolved by the caller. Without extensions nothing changes.
 */
import { DataError } from './errors.ts';

/** A numpy array read from a pickle: raw bytes plus dtype, shape and memory order. */
export class NDArray {
  /** numpy type code without byte order, e.g. 'u1', 'i8', 'f4'. */
  dtype: string;
  /** '<' little, '>' big, '|' not applicable. */
  byteOrder: string;
  shape: number[];
  fortranOrder: boolean;
  /** Raw element bytes (a view into the pickle buffer where possible). */
  data: Uint8Array;

  constructor(dtype: string, byteOrder: string, shape: number[], fortranOrder: boolean, data: Uint8Array) {
    this.dtype = dtype;
    this.byteOrder = byteOrder;
    this.shape = shape;
    this.fortranOrder = fortranOrder;
    this.data = data;
  }
}

/** A numpy dtype read from a pickle. */
export class NumpyDType {
  code: string;
  byteOrder = '|';
  constructor(code: string) {
    this.code = code;
  }
}

/** A Python tuple (kept distinct from lists). */
export class PyTuple {
  items: PyValue[];
  constructor(items: PyValue[]) {
    this.items = items;
  }
}

/**
 * A Python 2 `str` (or a long latin-1 payload): kept as bytes to avoid inflating megabytes of
 * pixel data into a JavaScript string. `text` decodes it as latin-1 (what torchvision's
 * `pickle.load(f, encoding="latin1")` does).
 */
export class PyStr8 {
  bytes: Uint8Array;
  constructor(bytes: Uint8Array) {
    this.bytes = bytes;
  }
  get text(): string {
    return latin1(this.bytes);
  }
}

/** An allow-listed callable named by GLOBAL / STACK_GLOBAL (only ever an argument of another allow-listed call). */
export class PyGlobal {
  name: string;
  constructor(name: string) {
    this.name = name;
  }
}

export type PyKey = string | number | bigint | boolean | null;
export type PyValue =
  | null
  | boolean
  | number
  | bigint
  | string
  | Uint8Array
  | PyStr8
  | PyValue[]
  | PyTuple
  | Map<PyKey, PyValue>
  | NDArray
  | NumpyDType
  | PyGlobal;

type StackItem = PyValue;

/** What a file format adds to the data-only unpickler (see torch-checkpoint.ts). */
export interface PickleExtensions {
  /**
   * More allowed globals: a function REDUCE calls with the argument tuple's items, or null for a
   * global that may only be an argument (e.g. torch.FloatStorage naming a storage's dtype).
   */
  globals?: ReadonlyMap<string, ((args: PyValue[], fail: (m: string) => never) => PyValue) | null>;
  /** BINPERSID: the persistent id (which may hold allowed globals) to the object it stands for. */
  persistentLoad?: (pid: PyValue, fail: (m: string) => never) => PyValue;
  /** BUILD on a dict (an OrderedDict's instance attributes, e.g. a state_dict's _metadata): ignored when true. */
  ignoreDictState?: boolean;
  /** What the format allows, for the message refusing another global. */
  allowed?: string;
}

const ALLOWED_GLOBALS = new Set([
  'numpy.core.multiarray._reconstruct',
  'numpy._core.multiarray._reconstruct',
  'numpy.ndarray',
  'numpy.dtype',
  'numpy.core.numeric._frombuffer',
  'numpy._core.numeric._frombuffer',
  '_codecs.encode',
  'builtins.bytearray',
  '__builtin__.bytearray',
]);

const OPCODE_NAMES: Record<number, string> = {
  0x69: 'INST',
  0x6f: 'OBJ',
  0x81: 'NEWOBJ',
  0x92: 'NEWOBJ_EX',
  0x50: 'PERSID',
  0x51: 'BINPERSID',
  0x82: 'EXT1',
  0x83: 'EXT2',
  0x84: 'EXT4',
  0x8f: 'EMPTY_SET',
  0x90: 'ADDITEMS',
  0x91: 'FROZENSET',
  0x97: 'NEXT_BUFFER',
  0x98: 'READONLY_BUFFER',
};

/**
 * Objects a pickle may build, in estimated bytes of JavaScript heap. A V8 Map costs about 300
 * bytes, so a 1 MB pickle of a million empty dicts would take 300 MB; real dataset pickles
 * (CIFAR's dict of arrays and label lists) build a few megabytes of objects, their arrays being
 * views of the file's bytes.
 */
const MAX_OBJECT_BYTES = 64 * 1024 * 1024;
/** Estimated heap bytes of what each opcode creates (measured on Node 24: Map ~300, array ~64-200, memo entry ~40). */
const OBJECT_COST: Record<number, number> = {
  0x7d: 320, // EMPTY_DICT
  0x64: 320, // DICT
  0x5d: 64, // EMPTY_LIST
  0x6c: 64, // LIST
  0x29: 48, // EMPTY_TUPLE
  0x74: 48, // TUPLE
  0x85: 48, // TUPLE1
  0x86: 48, // TUPLE2
  0x87: 48, // TUPLE3
  0x61: 16, // APPEND
  0x73: 80, // SETITEM
  0x71: 48, // BINPUT
  0x72: 48, // LONG_BINPUT
  0x94: 48, // MEMOIZE
  0x70: 48, // PUT
  0x52: 160, // REDUCE (an array, dtype or bytes object)
};

/** Read one pickle from `buf`. `file` is only used in error messages. */
export function unpickle(buf: Uint8Array, file = '<pickle>', ext: PickleExtensions = {}): PyValue {
  return unpickleAt(buf, 0, file, ext).value;
}

/** Read the pickle that starts at byte `start`; `end` is the offset after its STOP (files that hold several pickles). */
export function unpickleAt(buf: Uint8Array, start: number, file = '<pickle>', ext: PickleExtensions = {}): { value: PyValue; end: number } {
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const stack: StackItem[] = [];
  const marks: number[] = [];
  const memo = new Map<number, StackItem>();
  // Tuples that hold a global (directly or through another such tuple). Globals are only meaningful
  // as call arguments, so lists, dicts and the result may not hold them; marking tuples as they are
  // built keeps that check O(1) per item, with no walk over a shared or cyclic result.
  const holdsGlobal = new WeakSet<PyTuple>();
  const tuple = (items: StackItem[]): PyTuple => {
    const t = new PyTuple(items);
    if (items.some((x) => x instanceof PyGlobal || (x instanceof PyTuple && holdsGlobal.has(x)))) holdsGlobal.add(t);
    return t;
  };
  let pos = start;
  let budget = MAX_OBJECT_BYTES;

  const fail = (what: string, at = pos): never => {
    throw new DataError(`not a supported pickle: ${what} (at byte ${at})`, file);
  };
  const charge = (bytes: number, at: number): void => {
    budget -= bytes;
    if (budget < 0) fail(`it builds more than ${MAX_OBJECT_BYTES >> 20} MiB of Python objects (dataset pickles hold a few arrays and lists)`, at);
  };
  const need = (n: number): void => {
    if (n < 0 || pos + n > buf.length) fail(`truncated: needs ${n} more bytes, file has ${buf.length - pos}`);
  };
  const u8 = (): number => {
    need(1);
    return buf[pos++]!;
  };
  const u16 = (): number => {
    need(2);
    const v = view.getUint16(pos, true);
    pos += 2;
    return v;
  };
  const u32 = (): number => {
    need(4);
    const v = view.getUint32(pos, true);
    pos += 4;
    return v;
  };
  const i32 = (): number => {
    need(4);
    const v = view.getInt32(pos, true);
    pos += 4;
    return v;
  };
  const u64 = (): number => {
    need(8);
    const v = view.getBigUint64(pos, true);
    pos += 8;
    if (v > BigInt(Number.MAX_SAFE_INTEGER)) fail('length too large');
    return Number(v);
  };
  const bytes = (n: number): Uint8Array => {
    need(n);
    const b = buf.subarray(pos, pos + n);
    pos += n;
    return b;
  };
  const line = (): string => {
    const end = buf.indexOf(0x0a, pos);
    if (end < 0) fail('truncated: unterminated text line');
    const s = latin1(buf.subarray(pos, end));
    pos = end + 1;
    return s;
  };
  const pop = (): StackItem => {
    if (stack.length === 0 || (marks.length > 0 && stack.length <= marks[marks.length - 1]!)) fail('stack underflow');
    return stack.pop()!;
  };
  const popMark = (): StackItem[] => {
    const m = marks.pop();
    if (m === undefined) fail('MARK expected');
    charge(16 * (stack.length - m!), pos);
    return stack.splice(m!);
  };
  const top = (): StackItem => {
    if (stack.length === 0) fail('stack underflow');
    return stack[stack.length - 1]!;
  };
  const value = (x: StackItem, what: string, at = pos): PyValue => {
    if (x instanceof PyGlobal) return fail(`${what}: a bare global (${x.name}) is not data`, at);
    if (x instanceof PyTuple && holdsGlobal.has(x)) return fail(`${what}: a tuple holding a global is not data`, at);
    return x;
  };

  for (;;) {
    const at = pos;
    const op = u8();
    charge(OBJECT_COST[op] ?? 0, at);
    switch (op) {
      case 0x80: // PROTO
        if (u8() > 5) fail('pickle protocol newer than 5', at);
        break;
      case 0x95: // FRAME
        u64();
        break;
      case 0x2e: {
        // STOP
        if (stack.length !== 1) fail(`stack holds ${stack.length} items at STOP`, at);
        return { value: value(stack[0]!, 'the result', at), end: pos };
      }
      case 0x28: // MARK
        marks.push(stack.length);
        break;
      case 0x30: // POP
        if (marks.length > 0 && stack.length === marks[marks.length - 1]) marks.pop();
        else pop();
        break;
      case 0x31: // POP_MARK
        popMark();
        break;
      case 0x32: // DUP
        stack.push(top());
        break;
      case 0x7d: // EMPTY_DICT
        stack.push(new Map());
        break;
      case 0x5d: // EMPTY_LIST
        stack.push([]);
        break;
      case 0x6c: // LIST (protocol 0)
        stack.push(popMark().map((x) => value(x, 'list item')));
        break;
      case 0x64: {
        // DICT (protocol 0)
        const items = popMark();
        if (items.length % 2 !== 0) fail('DICT with an odd number of items', at);
        const d = new Map<PyKey, PyValue>();
        for (let i = 0; i < items.length; i += 2) d.set(dictKey(value(items[i]!, 'dict key'), fail), value(items[i + 1]!, 'dict value'));
        stack.push(d);
        break;
      }
      case 0x29: // EMPTY_TUPLE
        stack.push(tuple([]));
        break;
      case 0x74: // TUPLE
        stack.push(tuple(popMark()));
        break;
      case 0x85: // TUPLE1
        stack.push(tuple([pop()]));
        break;
      case 0x86: {
        const b = pop();
        const a = pop();
        stack.push(tuple([a, b]));
        break;
      }
      case 0x87: {
        const c = pop();
        const b = pop();
        const a = pop();
        stack.push(tuple([a, b, c]));
        break;
      }
      case 0x61: {
        // APPEND
        const v = value(pop(), 'list item');
        const l = top();
        if (!Array.isArray(l)) fail('APPEND to a non-list', at);
        (l as PyValue[]).push(v);
        break;
      }
      case 0x65: {
        // APPENDS
        const items = popMark();
        const l = top();
        if (!Array.isArray(l)) fail('APPENDS to a non-list', at);
        for (const x of items) (l as PyValue[]).push(value(x, 'list item'));
        break;
      }
      case 0x73: {
        // SETITEM
        const v = value(pop(), 'dict value');
        const k = value(pop(), 'dict key');
        const d = top();
        if (!(d instanceof Map)) fail('SETITEM on a non-dict', at);
        (d as Map<PyKey, PyValue>).set(dictKey(k, fail), v);
        break;
      }
      case 0x75: {
        // SETITEMS
        const items = popMark();
        const d = top();
        if (!(d instanceof Map)) fail('SETITEMS on a non-dict', at);
        if (items.length % 2 !== 0) fail('SETITEMS with an odd number of items', at);
        for (let i = 0; i < items.length; i += 2) {
          (d as Map<PyKey, PyValue>).set(dictKey(value(items[i]!, 'dict key'), fail), value(items[i + 1]!, 'dict value'));
        }
        break;
      }
      case 0x71: // BINPUT
        memo.set(u8(), top());
        break;
      case 0x72: // LONG_BINPUT
        memo.set(u32(), top());
        break;
      case 0x94: // MEMOIZE
        memo.set(memo.size, top());
        break;
      case 0x70: // PUT
        memo.set(parseDecimal(line(), fail), top());
        break;
      case 0x68:
      case 0x6a:
      case 0x67: {
        // BINGET, LONG_BINGET, GET
        const idx = op === 0x68 ? u8() : op === 0x6a ? u32() : parseDecimal(line(), fail);
        if (!memo.has(idx)) fail(`memo key ${idx} missing`, at);
        stack.push(memo.get(idx)!);
        break;
      }
      case 0x4e: // NONE
        stack.push(null);
        break;
      case 0x88: // NEWTRUE
        stack.push(true);
        break;
      case 0x89: // NEWFALSE
        stack.push(false);
        break;
      case 0x4b: // BININT1
        stack.push(u8());
        break;
      case 0x4d: // BININT2
        stack.push(u16());
        break;
      case 0x4a: // BININT
        stack.push(i32());
        break;
      case 0x8a:
      case 0x8b: {
        // LONG1, LONG4
        const n = op === 0x8a ? u8() : u32();
        stack.push(decodeLong(bytes(n)));
        break;
      }
      case 0x49: {
        // INT (protocol 0; "01"/"00" are True/False)
        const s = line();
        if (s === '01') stack.push(true);
        else if (s === '00') stack.push(false);
        else stack.push(parseInteger(s, (m) => fail(m, at)));
        break;
      }
      case 0x4c: {
        // LONG (protocol 0)
        stack.push(parseInteger(line().replace(/L$/, ''), (m) => fail(m, at)));
        break;
      }
      case 0x46: {
        // FLOAT (protocol 0)
        const t = line().trim();
        const v = Number(t);
        if (t === '' || (Number.isNaN(v) && !/^-?nan$/i.test(t))) fail(`bad FLOAT literal '${clip(t)}'`, at);
        stack.push(v);
        break;
      }
      case 0x53: // STRING (protocol 0: a quoted Python 2 str literal, read as latin-1)
        stack.push(pyStringLiteral(line(), (m) => fail(m, at)));
        break;
      case 0x56: // UNICODE (protocol 0: raw-unicode-escape)
        stack.push(rawUnicodeEscape(line(), (m) => fail(m, at)));
        break;
      case 0x47: {
        // BINFLOAT (big-endian)
        need(8);
        stack.push(view.getFloat64(pos, false));
        pos += 8;
        break;
      }
      case 0x55: // SHORT_BINSTRING (Python 2 str, read as latin-1 like encoding="latin1")
        stack.push(latin1(bytes(u8())));
        break;
      case 0x54: {
        // BINSTRING
        const n = i32();
        if (n < 0) fail('negative BINSTRING length', at);
        const b = bytes(n);
        stack.push(n < 65536 ? latin1(b) : new PyStr8(b));
        break;
      }
      case 0x8c: // SHORT_BINUNICODE
        stack.push(utf8(bytes(u8()), fail));
        break;
      case 0x58: // BINUNICODE
        stack.push(utf8(bytes(u32()), fail));
        break;
      case 0x8d: // BINUNICODE8
        stack.push(utf8(bytes(u64()), fail));
        break;
      case 0x43: // SHORT_BINBYTES
        stack.push(bytes(u8()));
        break;
      case 0x42: // BINBYTES
        stack.push(bytes(u32()));
        break;
      case 0x8e: // BINBYTES8
      case 0x96: // BYTEARRAY8
        stack.push(bytes(u64()));
        break;
      case 0x63: {
        // GLOBAL
        const module = line();
        const name = line();
        stack.push(global(`${module}.${name}`, at));
        break;
      }
      case 0x93: {
        // STACK_GLOBAL
        const name = pop();
        const module = pop();
        if (typeof module !== 'string' || typeof name !== 'string') fail('STACK_GLOBAL needs two strings', at);
        stack.push(global(`${module as string}.${name as string}`, at));
        break;
      }
      case 0x52: {
        // REDUCE
        const args = pop();
        const fn = pop();
        if (!(fn instanceof PyGlobal)) fail('REDUCE on something that is not an allow-listed global', at);
        if (!(args instanceof PyTuple)) fail('REDUCE arguments are not a tuple', at);
        const extFn = ext.globals?.get((fn as PyGlobal).name);
        const f = (m: string): never => fail(m, at);
        stack.push(extFn ? extFn((args as PyTuple).items, f) : call((fn as PyGlobal).name, (args as PyTuple).items, f));
        break;
      }
      case 0x62: {
        // BUILD
        const state = value(pop(), 'BUILD state');
        const obj = top();
        if (obj instanceof NDArray) buildArray(obj, state, (m) => fail(m, at));
        else if (obj instanceof NumpyDType) buildDType(obj, state, (m) => fail(m, at));
        else if (ext.ignoreDictState && obj instanceof Map && (state instanceof Map || state === null)) break;
        else fail('BUILD on an object that is not a numpy array or dtype', at);
        break;
      }
      case 0x51: {
        // BINPERSID (only where the caller resolves persistent ids)
        if (!ext.persistentLoad) fail('opcode BINPERSID is refused (it would construct arbitrary objects)', at);
        const pid = pop();
        stack.push(ext.persistentLoad!(pid, (m) => fail(m, at)));
        break;
      }
      default: {
        const name = OPCODE_NAMES[op];
        fail(
          name === undefined
            ? `unknown opcode 0x${op.toString(16).padStart(2, '0')}`
            : `opcode ${name} is refused (it would construct arbitrary objects)`,
          at,
        );
      }
    }
  }

  function global(name: string, at: number): PyGlobal {
    if (!ALLOWED_GLOBALS.has(name) && !ext.globals?.has(name)) {
      return fail(`global '${name}' is not allowed (${ext.allowed ?? 'only numpy arrays, dtypes and latin-1 bytes are'})`, at);
    }
    return new PyGlobal(name);
  }
}

function call(name: string, args: PyValue[], fail: (m: string) => never): PyValue {
  switch (name) {
    case 'numpy.core.multiarray._reconstruct':
    case 'numpy._core.multiarray._reconstruct':
      // _reconstruct(ndarray, (0,), b'b'): an empty array that BUILD fills in.
      if (!(args[0] instanceof PyGlobal) || args[0].name !== 'numpy.ndarray') return fail('_reconstruct is only allowed for numpy.ndarray');
      return new NDArray('u1', '|', [0], false, new Uint8Array(0));
    case 'numpy.dtype': {
      const code = args[0];
      if (typeof code !== 'string') return fail('numpy.dtype needs a type code string');
      return new NumpyDType(code);
    }
    case 'numpy.ndarray':
      return fail('numpy.ndarray may only be passed to _reconstruct');
    case '_codecs.encode': {
      const [s, enc] = args;
      if (typeof s !== 'string' || (enc !== 'latin1' && enc !== 'latin-1')) {
        return fail('_codecs.encode is only allowed as (str, "latin1")');
      }
      return latin1Encode(s, fail);
    }
    case 'builtins.bytearray':
    case '__builtin__.bytearray': {
      const [s, enc] = args;
      if (args.length === 0) return new Uint8Array(0);
      if (s instanceof Uint8Array && args.length === 1) return s;
      if (typeof s === 'string' && (enc === 'latin1' || enc === 'latin-1')) return latin1Encode(s, fail);
      return fail('bytearray is only allowed from bytes or (str, "latin-1")');
    }
    case 'numpy.core.numeric._frombuffer':
    case 'numpy._core.numeric._frombuffer': {
      const [b, dt, shape, order] = args;
      const data = asBytes(b, fail);
      if (!(dt instanceof NumpyDType)) return fail('_frombuffer needs a dtype');
      const a = new NDArray(dt.code, dt.byteOrder, shapeOf(shape, fail), order === 'F', data);
      checkArrayBytes(a, fail);
      return a;
    }
    default:
      return fail(`global '${name}' cannot be called`);
  }
}

function buildArray(a: NDArray, state: PyValue, fail: (m: string) => never): void {
  if (!(state instanceof PyTuple)) fail('numpy array state is not a tuple');
  let items = (state as PyTuple).items;
  if (items.length === 5) items = items.slice(1); // (version, shape, dtype, is_fortran, data)
  if (items.length !== 4) fail(`numpy array state has ${items.length} items`);
  const [shape, dt, fortran, raw] = items;
  if (!(dt instanceof NumpyDType)) fail('numpy array state has no dtype');
  if (Array.isArray(raw)) fail('object arrays are not supported');
  const d = dt as NumpyDType;
  a.dtype = d.code;
  a.byteOrder = d.byteOrder;
  a.shape = shapeOf(shape, fail);
  a.fortranOrder = fortran === true || fortran === 1;
  a.data = asBytes(raw ?? null, fail);
  checkArrayBytes(a, fail);
}

/** numpy refuses a buffer whose size differs from what the shape and dtype need; so do we (no zero-filling later). */
function checkArrayBytes(a: NDArray, fail: (m: string) => never): void {
  if (a.dtype === 'O') fail('object arrays are not supported');
  const size = itemSize(a.dtype);
  if (size === undefined) return fail(`numpy dtype '${a.dtype}' is not supported`);
  const need = a.shape.reduce((x, y) => x * y, size);
  if (need !== a.data.length) {
    fail(`numpy array of shape (${a.shape.join(', ')}) and dtype ${a.dtype} needs ${need} bytes, has ${a.data.length}`);
  }
}

function buildDType(d: NumpyDType, state: PyValue, fail: (m: string) => never): void {
  if (!(state instanceof PyTuple)) fail('numpy dtype state is not a tuple');
  const order = (state as PyTuple).items[1];
  if (typeof order === 'string') d.byteOrder = order;
}

function itemSize(code: string): number | undefined {
  const m = /^([uifbcSUV])(\d{1,9})$/.exec(code);
  if (m) return Number(m[2]) * (m[1] === 'U' ? 4 : 1);
  if (code === '?') return 1;
  return undefined;
}

function shapeOf(v: PyValue | undefined, fail: (m: string) => never): number[] {
  const items = v instanceof PyTuple ? v.items : Array.isArray(v) ? v : null;
  if (items === null) return fail('array shape is not a tuple');
  return items.map((x) => {
    if (typeof x !== 'number' || !Number.isSafeInteger(x) || x < 0) return fail('array shape holds something other than a non-negative integer');
    return x;
  });
}

function asBytes(v: PyValue, fail: (m: string) => never): Uint8Array {
  if (v instanceof Uint8Array) return v;
  if (v instanceof PyStr8) return v.bytes;
  if (typeof v === 'string') return latin1Encode(v, fail);
  return fail('array data is not bytes');
}

function dictKey(k: PyValue, fail: (m: string) => never): PyKey {
  if (typeof k === 'string' || typeof k === 'number' || typeof k === 'bigint' || typeof k === 'boolean' || k === null) return k;
  if (k instanceof Uint8Array) return latin1(k);
  if (k instanceof PyStr8) return k.text;
  return fail('unsupported dict key type');
}

const SIMPLE_ESCAPES: Partial<Record<string, string>> = { '\\': '\\', "'": "'", '"': '"', n: '\n', r: '\r', t: '\t', a: '\x07', b: '\b', f: '\f', v: '\v', '\n': '' };

/** A protocol-0 STRING argument: 'text' or "text" with Python 2 escapes (\\ \' \" \n \r \t \xHH \ooo). */
function pyStringLiteral(s: string, fail: (m: string) => never): string {
  const q = s[0];
  if (s.length < 2 || (q !== "'" && q !== '"') || s[s.length - 1] !== q) return fail('STRING argument is not a quoted literal');
  const body = s.slice(1, -1);
  let out = '';
  for (let i = 0; i < body.length; i++) {
    const c = body[i]!;
    if (c !== '\\') {
      out += c;
      continue;
    }
    const e = body[++i];
    if (e === undefined) return fail('STRING literal ends in a backslash');
    const simple = SIMPLE_ESCAPES[e];
    if (simple !== undefined) out += simple;
    else if (e === 'x' && /^[0-9a-fA-F]{2}$/.test(body.slice(i + 1, i + 3))) {
      out += String.fromCharCode(parseInt(body.slice(i + 1, i + 3), 16));
      i += 2;
    } else if (e >= '0' && e <= '7') {
      let n = 0;
      let k = 0;
      for (; k < 3 && body[i + k]! >= '0' && body[i + k]! <= '7'; k++) n = n * 8 + (body.charCodeAt(i + k) - 48);
      out += String.fromCharCode(n & 0xff);
      i += k - 1;
    } else out += '\\' + e;
  }
  return out;
}

/** Python's raw-unicode-escape decoding: \\uXXXX and \\UXXXXXXXX escapes, other characters as they are (latin-1). */
function rawUnicodeEscape(s: string, fail: (m: string) => never): string {
  return s.replace(/\\u([0-9a-fA-F]{4})|\\U([0-9a-fA-F]{8})/g, (_, u: string | undefined, U: string | undefined) => {
    const cp = parseInt(u ?? U!, 16);
    if (cp > 0x10ffff) return fail(`UNICODE escape \\U${U} is beyond U+10FFFF`);
    return String.fromCodePoint(cp);
  });
}

function clip(s: string): string {
  return s.length > 40 ? `${s.slice(0, 40)}...` : s;
}

function parseDecimal(s: string, fail: (m: string) => never): number {
  if (!/^-?\d+$/.test(s)) return fail(`bad decimal '${clip(s)}'`);
  return Number(s);
}

/** Python's int_max_str_digits: longer decimal literals are refused, as Python 3.11+ does (parsing them is quadratic). */
const MAX_DECIMAL_DIGITS = 4300;

/** A protocol-0 INT / LONG literal: a number when it is a safe integer, else a bigint. */
function parseInteger(s: string, fail: (m: string) => never): number | bigint {
  if (!/^[+-]?\d+$/.test(s)) return fail(`bad integer literal '${clip(s)}'`);
  if (s.length > MAX_DECIMAL_DIGITS + 1) return fail(`integer literal of ${s.length} digits (Python refuses over ${MAX_DECIMAL_DIGITS})`);
  return narrow(BigInt(s));
}

/** Little-endian two's complement, in linear time (hex parsing instead of a shift per byte). */
function decodeLong(b: Uint8Array): number | bigint {
  if (b.length === 0) return 0;
  let v = BigInt(`0x${Buffer.from(b).reverse().toString('hex')}`);
  if (b[b.length - 1]! & 0x80) v -= 1n << BigInt(8 * b.length);
  return narrow(v);
}

function narrow(v: bigint): number | bigint {
  return v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v;
}

function latin1(b: Uint8Array): string {
  return Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('latin1');
}

function latin1Encode(s: string, fail: (m: string) => never): Uint8Array {
  for (let i = 0; i < s.length; i++) if (s.charCodeAt(i) > 255) return fail('latin-1 text holds a character above U+00FF');
  return new Uint8Array(Buffer.from(s, 'latin1'));
}

const utf8Decoder = new TextDecoder('utf-8', { fatal: true });
function utf8(b: Uint8Array, fail: (m: string) => never): string {
  try {
    return utf8Decoder.decode(b);
  } catch {
    return fail('invalid UTF-8 in a unicode string');
  }
}

/** Look a key up in an unpickled dict, accepting str keys (latin-1) as Python 3 would with encoding="latin1". */
export function dictGet(d: PyValue, key: string): PyValue | undefined {
  if (!(d instanceof Map)) return undefined;
  return d.get(key);
}
