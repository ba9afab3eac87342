/**
 * Writers for the real file formats, used by the data tests to make small files: a Python 2 style
 * pickle writer (the opcodes cPickle protocol 2 emits for CIFAR batches), PNG, zip, .npy and CIFAR
 * binary records.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { crc32, deflateRawSync, deflateSync } from 'node:zlib';

export function tempDir(prefix = 'goe-data-'): { dir: string; cleanup: () => void } {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

/** Deterministic bytes. */
export function bytes(n: number, seed = 1): Uint8Array {
  const out = new Uint8Array(n);
  let s = seed >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    out[i] = s & 255;
  }
  return out;
}

// ---------------------------------------------------------------- pickle (protocol 2, Python 2 style)

export type PyW =
  | { str: string } // Python 2 str: SHORT_BINSTRING / BINSTRING
  | { unicode: string } // BINUNICODE
  | { bytes: Uint8Array } // Python 3 bytes: SHORT_BINBYTES / BINBYTES (protocol 3+)
  | { int: number }
  | { list: PyW[] }
  | { dict: [PyW, PyW][] }
  | { ndarray: { dtype: string; shape: number[]; data: Uint8Array; py2: boolean } }
  | { raw: number[] } // arbitrary opcodes, for refusal tests
  | null;

export class PickleWriter {
  private out: number[] = [];
  private memo = 0;

  private u8(...b: number[]): void {
    this.out.push(...b);
  }
  private u32(n: number): void {
    this.u8(n & 255, (n >>> 8) & 255, (n >>> 16) & 255, (n >>> 24) & 255);
  }
  private put(): void {
    // BINPUT n, as cPickle does after each container/string
    if (this.memo < 256) this.u8(0x71, this.memo++);
    else {
      this.u8(0x72);
      this.u32(this.memo++);
    }
  }
  private latin1(s: string): number[] {
    return [...Buffer.from(s, 'latin1')];
  }
  private pushBytes(b: Uint8Array): void {
    for (let i = 0; i < b.length; i++) this.out.push(b[i]!);
  }

  value(v: PyW): void {
    if (v === null) return this.u8(0x4e);
    if ('int' in v) {
      const n = v.int;
      if (n >= 0 && n < 256) this.u8(0x4b, n);
      else if (n >= 0 && n < 65536) this.u8(0x4d, n & 255, n >> 8);
      else {
        this.u8(0x4a);
        this.u32(n >>> 0);
      }
      return;
    }
    if ('str' in v) {
      const b = this.latin1(v.str);
      if (b.length < 256) this.u8(0x55, b.length, ...b);
      else {
        this.u8(0x54);
        this.u32(b.length);
        this.u8(...b);
      }
      return this.put();
    }
    if ('unicode' in v) {
      const b = [...Buffer.from(v.unicode, 'utf8')];
      this.u8(0x58);
      this.u32(b.length);
      this.u8(...b);
      return this.put();
    }
    if ('bytes' in v) {
      if (v.bytes.length < 256) this.u8(0x43, v.bytes.length);
      else {
        this.u8(0x42);
        this.u32(v.bytes.length);
      }
      this.pushBytes(v.bytes);
      return this.put();
    }
    if ('raw' in v) return this.u8(...v.raw);
    if ('list' in v) {
      this.u8(0x5d);
      this.put();
      if (v.list.length === 0) return;
      this.u8(0x28);
      for (const x of v.list) this.value(x);
      return this.u8(0x65); // APPENDS
    }
    if ('dict' in v) {
      this.u8(0x7d);
      this.put();
      if (v.dict.length === 0) return;
      this.u8(0x28);
      for (const [k, x] of v.dict) {
        this.value(k);
        this.value(x);
      }
      return this.u8(0x75); // SETITEMS
    }
    // numpy array: _reconstruct(ndarray, (0,), 'b') + BUILD (1, shape, dtype, False, rawdata)
    const a = v.ndarray;
    this.u8(0x63, ...this.latin1('numpy.core.multiarray\n_reconstruct\n'));
    this.put();
    this.u8(0x63, ...this.latin1('numpy\nndarray\n'));
    this.put();
    this.u8(0x4b, 0, 0x85); // (0,)
    this.put();
    this.value(a.py2 ? { str: 'b' } : { bytes: new Uint8Array([0x62]) });
    this.u8(0x87); // TUPLE3
    this.put();
    this.u8(0x52); // REDUCE
    this.put();
    this.u8(0x28); // MARK for the state tuple
    this.value({ int: 1 });
    for (const d of a.shape) this.value({ int: d });
    this.u8(a.shape.length === 1 ? 0x85 : a.shape.length === 2 ? 0x86 : 0x87);
    this.put();
    this.u8(0x63, ...this.latin1('numpy\ndtype\n'));
    this.put();
    this.value({ str: a.dtype });
    this.value({ int: 0 });
    this.value({ int: 1 });
    this.u8(0x87, 0x52); // TUPLE3 REDUCE
    this.put();
    this.u8(0x28); // dtype state (3, '|', None, None, None, -1, -1, 0)
    this.value({ int: 3 });
    this.value({ str: '|' });
    this.u8(0x4e, 0x4e, 0x4e);
    this.u8(0x4a, 0xff, 0xff, 0xff, 0xff, 0x4a, 0xff, 0xff, 0xff, 0xff);
    this.value({ int: 0 });
    this.u8(0x74, 0x62); // TUPLE BUILD
    this.u8(0x89); // NEWFALSE (is_fortran)
    if (a.py2) {
      // Python 2 str: BINSTRING with a 4-byte length
      this.u8(0x54);
      this.u32(a.data.length);
      this.pushBytes(a.data);
    } else this.value({ bytes: a.data });
    this.u8(0x74, 0x62); // TUPLE BUILD
  }

  /** A full pickle: PROTO 2, the value, STOP. */
  static dump(v: PyW): Uint8Array {
    const w = new PickleWriter();
    w.u8(0x80, 2);
    w.value(v);
    w.u8(0x2e);
    return new Uint8Array(w.out);
  }
}

/** A CIFAR python-format batch as Python 2's cPickle wrote it. */
export function cifarPickle(data: Uint8Array, labels: number[], variant: 'cifar10' | 'cifar100', coarse?: number[]): Uint8Array {
  const n = labels.length;
  const entries: [PyW, PyW][] = [
    [{ str: 'data' }, { ndarray: { dtype: 'u1', shape: [n, 3072], data, py2: true } }],
    [{ str: variant === 'cifar10' ? 'labels' : 'fine_labels' }, { list: labels.map((int) => ({ int })) }],
    [{ str: 'batch_label' }, { str: 'training batch 1 of 1' }],
    [{ str: 'filenames' }, { list: labels.map((_, i) => ({ str: `img_${i}.png` })) }],
  ];
  if (variant === 'cifar100') entries.push([{ str: 'coarse_labels' }, { list: (coarse ?? labels.map((l) => l % 20)).map((int) => ({ int })) }]);
  return PickleWriter.dump({ dict: entries });
}

// ---------------------------------------------------------------- PNG

function chunk(type: string, data: Uint8Array): Buffer {
  const len = Buffer.alloc(4);
  len.writeUInt32BE(data.length);
  const td = Buffer.concat([Buffer.from(type, 'latin1'), data]);
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(td));
  return Buffer.concat([len, td, crc]);
}

/** An 8-bit PNG: channels 1 (grey), 2 (grey+alpha), 3 (RGB) or 4 (RGBA); pixels interleaved row-major. */
export function png(width: number, height: number, channels: 1 | 2 | 3 | 4, pixels: Uint8Array): Buffer {
  const colorType = { 1: 0, 2: 4, 3: 2, 4: 6 }[channels];
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr[8] = 8;
  ihdr[9] = colorType;
  const raw = Buffer.alloc(height * (1 + width * channels));
  for (let y = 0; y < height; y++) {
    raw[y * (1 + width * channels)] = 0;
    raw.set(pixels.subarray(y * width * channels, (y + 1) * width * channels), y * (1 + width * channels) + 1);
  }
  return Buffer.concat([Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]), chunk('IHDR', ihdr), chunk('IDAT', deflateSync(raw)), chunk('IEND', new Uint8Array(0))]);
}

// ---------------------------------------------------------------- zip

/** A zip archive of the given members, stored (method 0) or deflated (method 8). */
export function zip(members: { name: string; data: Uint8Array; deflate?: boolean }[]): Buffer {
  const locals: Buffer[] = [];
  const centrals: Buffer[] = [];
  let offset = 0;
  for (const m of members) {
    const name = Buffer.from(m.name, 'utf8');
    const body = m.deflate ? deflateRawSync(m.data) : Buffer.from(m.data);
    const crc = crc32(m.data);
    const lh = Buffer.alloc(30);
    lh.writeUInt32LE(0x04034b50, 0);
    lh.writeUInt16LE(20, 4);
    lh.writeUInt16LE(0x0800, 6); // UTF-8 names
    lh.writeUInt16LE(m.deflate ? 8 : 0, 8);
    lh.writeUInt32LE(crc, 14);
    lh.writeUInt32LE(body.length, 18);
    lh.writeUInt32LE(m.data.length, 22);
    lh.writeUInt16LE(name.length, 26);
    const ch = Buffer.alloc(46);
    ch.writeUInt32LE(0x02014b50, 0);
    ch.writeUInt16LE(20, 4);
    ch.writeUInt16LE(20, 6);
    ch.writeUInt16LE(0x0800, 8);
    ch.writeUInt16LE(m.deflate ? 8 : 0, 10);
    ch.writeUInt32LE(crc, 16);
    ch.writeUInt32LE(body.length, 20);
    ch.writeUInt32LE(m.data.length, 24);
    ch.writeUInt16LE(name.length, 28);
    ch.writeUInt32LE(offset, 42);
    locals.push(lh, name, body);
    centrals.push(ch, name);
    offset += 30 + name.length + body.length;
  }
  const cd = Buffer.concat(centrals);
  const end = Buffer.alloc(22);
  end.writeUInt32LE(0x06054b50, 0);
  end.writeUInt16LE(members.length, 8);
  end.writeUInt16LE(members.length, 10);
  end.writeUInt32LE(cd.length, 12);
  end.writeUInt32LE(offset, 16);
  return Buffer.concat([...locals, cd, end]);
}

// ---------------------------------------------------------------- npy

/** A version 1.0 .npy file. `data` holds the raw element bytes in the declared order. */
export function npy(descr: string, shape: number[], data: Uint8Array, fortran = false): Buffer {
  const shapeText = shape.length === 1 ? `(${shape[0]},)` : `(${shape.join(', ')})`;
  let header = `{'descr': '${descr}', 'fortran_order': ${fortran ? 'True' : 'False'}, 'shape': ${shapeText}, }`;
  const total = 10 + header.length + 1;
  header += ' '.repeat((64 - (total % 64)) % 64) + '\n';
  const pre = Buffer.alloc(10);
  Buffer.from([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, 1, 0]).copy(pre);
  pre.writeUInt16LE(header.length, 8);
  return Buffer.concat([pre, Buffer.from(header, 'latin1'), data]);
}

// ---------------------------------------------------------------- CIFAR binary

/** CIFAR binary records: label byte(s) then 3072 pixel bytes each. */
export function cifarBinary(images: Uint8Array, labels: number[], coarse?: number[]): Buffer {
  const lb = coarse ? 2 : 1;
  const out = Buffer.alloc(labels.length * (lb + 3072));
  labels.forEach((l, i) => {
    const o = i * (lb + 3072);
    if (coarse) {
      out[o] = coarse[i]!;
      out[o + 1] = l;
    } else out[o] = l;
    out.set(images.subarray(i * 3072, (i + 1) * 3072), o + lb);
  });
  return out;
}
