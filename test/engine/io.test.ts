/**
 * Checkpoint I/O: safetensors round trips, the fixture written with PyTorch (every readable
 * dtype), clear errors on truncated/corrupt files, checkpoints that resume training bit for bit,
 * and atomic writes.
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { mkdtempSync, readdirSync, mkdirSync, writeFileSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { engine, t32, read } from '../helpers/gpu.ts';
import { randArray } from '../helpers/reference.ts';
import {
  parseSafetensors, serializeSafetensors, toFloat32, SafetensorsError, checkpointToBytes, checkpointFromBytes, Linear, Sequential, ReLU,
  Adam, StepLR, Parameter, releaseParameterArena, manualSeed, getRngState, rand, saveCheckpoint, loadCheckpoint, saveModel, loadModel,
  writeFileAtomic, loadSafetensorsFile, Module, tensor,
} from '../../src/engine/index.ts';

const FIXTURES = join(dirname(fileURLToPath(import.meta.url)), '..', 'fixtures', 'mlp');
let dir = '';

beforeAll(async () => {
  await engine();
  dir = mkdtempSync(join(tmpdir(), 'goe-io-'));
});
afterAll(() => {
  releaseParameterArena();
  rmSync(dir, { recursive: true, force: true });
});

function sample(): Uint8Array {
  return serializeSafetensors(
    new Map<string, { shape: number[]; data: Float32Array | Int32Array | Uint32Array | Uint8Array }>([
      ['w', { shape: [3, 5], data: Float32Array.from(randArray(15, 1)) }],
      ['ids', { shape: [7], data: Int32Array.from([1, -2, 3, -4, 5, 2147483647, -2147483648]) }],
      ['u', { shape: [2, 1], data: Uint32Array.from([4294967295, 0]) }],
      ['mask', { shape: [3], data: Uint8Array.from([0, 1, 255]) }],
      ['scalar', { shape: [], data: Float32Array.from([0.125]) }],
      ['none', { shape: [0, 4], data: new Float32Array(0) }],
    ]),
    { epoch: '3', note: 'ünïcode ✓' },
  );
}

describe('safetensors', () => {
  it('parses a Node Buffer (whose slice() is a view into a shared pool) to the same values', () => {
    const bytes = sample();
    // A Buffer carved out of a larger pool at an odd offset, as readFileSync may return.
    const pool = Buffer.alloc(bytes.length + 13, 0xee);
    pool.set(bytes, 5);
    const buf = pool.subarray(5, 5 + bytes.length);
    const a = parseSafetensors(bytes);
    const b = parseSafetensors(buf);
    for (const [name, t] of a.tensors) {
      expect(Array.from(b.tensors.get(name)!.data as ArrayLike<number>), name).toEqual(Array.from(t.data as ArrayLike<number>));
    }
  });

  it('round trips F32/I32/U32/U8, 0-d and empty tensors, and metadata; the data section is 8-byte aligned', () => {
    const bytes = sample();
    const n = Number(new DataView(bytes.buffer).getBigUint64(0, true));
    expect(n % 8).toBe(0);
    const f = parseSafetensors(bytes);
    expect(f.metadata).toEqual({ epoch: '3', note: 'ünïcode ✓' });
    expect([...f.tensors.keys()]).toEqual(['w', 'ids', 'u', 'mask', 'scalar', 'none']);
    expect(f.tensors.get('w')!.dtype).toBe('F32');
    expect(Array.from(f.tensors.get('w')!.data as Float32Array)).toEqual(Array.from(Float32Array.from(randArray(15, 1))));
    expect(Array.from(f.tensors.get('ids')!.data as Int32Array)).toEqual([1, -2, 3, -4, 5, 2147483647, -2147483648]);
    expect(f.tensors.get('u')).toEqual({ dtype: 'U32', shape: [2, 1], data: Uint32Array.from([4294967295, 0]) });
    expect(f.tensors.get('mask')).toEqual({ dtype: 'U8', shape: [3], data: Uint8Array.from([0, 1, 255]) });
    expect(f.tensors.get('scalar')).toEqual({ dtype: 'F32', shape: [], data: Float32Array.from([0.125]) });
    expect(f.tensors.get('none')!.shape).toEqual([0, 4]);
  });

  it('reads the file written by PyTorch: F32, F64, F16, BF16, I64, I32, U8', async () => {
    const f = await loadSafetensorsFile(join(FIXTURES, 'dtypes.safetensors'));
    const v = [1.0, -2.5, 0.33333334, 65504.0, 1e-5, -0.0, 3.0e-8, 100.25];
    const f32 = Array.from(Float32Array.from(v));
    expect(Array.from(f.tensors.get('f32')!.data as Float32Array)).toEqual(f32);
    expect(Array.from(toFloat32(f.tensors.get('f64')!))).toEqual(f32);
    // torch's own f16/bf16 roundings of the same values (printed by torch 1.13)
    expect(Array.from(toFloat32(f.tensors.get('f16')!))).toEqual([1, -2.5, 0.333251953125, 65504, 1.0013580322265625e-5, -0, 5.960464477539063e-8, 100.25]);
    expect(Array.from(toFloat32(f.tensors.get('bf16')!))).toEqual([1, -2.5, 0.333984375, 65536, 1.0013580322265625e-5, -0, 3.003515303134918e-8, 100]);
    const i64 = f.tensors.get('i64')!;
    expect(i64.shape).toEqual([2, 3]);
    expect(Array.from(i64.data as BigInt64Array)).toEqual([0n, -1n, 2n ** 40n, 7n, -(2n ** 40n), 3n]);
    expect(Array.from(f.tensors.get('i32')!.data as Int32Array)).toEqual([5, -6, 2147483647]);
    expect(Array.from(f.tensors.get('u8')!.data as Uint8Array)).toEqual([0, 1, 255, 128]);
    expect(f.tensors.get('scalar')!.shape).toEqual([]);
    expect(f.tensors.get('empty')!.shape).toEqual([0, 3]);
    const decoded = await loadSafetensorsFile(join(FIXTURES, 'dtypes.safetensors'), { decodeHalf: true });
    expect(decoded.tensors.get('bf16')!.dtype).toBe('F32');
  });

  it('gives clear errors for truncated and corrupt files', () => {
    const good = sample();
    const n = Number(new DataView(good.buffer).getBigUint64(0, true));
    const cases: [string, Uint8Array, RegExp][] = [
      ['too short', good.slice(0, 5), /file is 5 bytes, shorter than the 8-byte header length/],
      ['cut in the header', good.slice(0, 8 + Math.floor(n / 2)), /header of \d+ bytes runs past the end of the \d+-byte file \(truncated file\?\)/],
      ['cut in the data', good.slice(0, good.length - 3), /run past the \d+-byte data section \(truncated file\?\)/],
      ['trailing bytes', new Uint8Array([...good, 1, 2, 3, 4]), /data section is \d+ bytes but the tensors cover/],
      ['huge header length', (() => { const b = good.slice(); new DataView(b.buffer).setBigUint64(0, 1n << 40n, true); return b; })(), /header length \d+ is implausible/],
    ];
    const withHeader = (h: object, data: number): Uint8Array => {
      const json = new TextEncoder().encode(JSON.stringify(h));
      const out = new Uint8Array(8 + json.length + data);
      new DataView(out.buffer).setBigUint64(0, BigInt(json.length), true);
      out.set(json, 8);
      return out;
    };
    const badJson = withHeader({}, 0);
    badJson[8] = 0x7b;
    badJson[9] = 0x78;
    cases.push(['bad JSON', badJson, /header is not valid UTF-8 JSON/]);
    cases.push(['size mismatch', withHeader({ a: { dtype: 'F32', shape: [2, 3], data_offsets: [0, 20] } }, 20), /tensor "a": F32\[2, 3\] needs 24 bytes, data_offsets \[0, 20\] give 20/]);
    cases.push(['overlap', withHeader({ a: { dtype: 'U8', shape: [4], data_offsets: [0, 4] }, b: { dtype: 'U8', shape: [4], data_offsets: [2, 6] } }, 6), /tensor "b" starts at byte 2 of the data section, expected 4 \(overlapping tensors\)/]);
    cases.push(['unknown dtype', withHeader({ a: { dtype: 'C64', shape: [1], data_offsets: [0, 8] } }, 8), /tensor "a": unsupported dtype "C64"/]);
    cases.push(['bad shape', withHeader({ a: { dtype: 'U8', shape: [-1], data_offsets: [0, 0] } }, 0), /shape \[-1\] is not a list of non-negative integers/]);
    cases.push(['bad metadata', withHeader({ __metadata__: { a: 1 } }, 0), /__metadata__.a must be a string/]);
    for (const [what, bytes, re] of cases) {
      expect(() => parseSafetensors(bytes), what).toThrow(SafetensorsError);
      expect(() => parseSafetensors(bytes), what).toThrow(re);
    }
    expect(() => serializeSafetensors({ x: { shape: [2], data: new Float32Array(3) } })).toThrow(/tensor "x": 3 values for shape \[2\]/);
    expect(() => serializeSafetensors({ x: { shape: [1], data: new Float32Array(1), dtype: 'F16' } })).toThrow(/writing F16 is not supported/);
  });
});

class Tiny extends Module {
  readonly net: Sequential;
  constructor() {
    super();
    this.net = this.registerModule('net', new Sequential(new Linear(5, 7), new ReLU(), new Linear(7, 3)));
    this.registerBuffer('count', tensor(Int32Array.from([11]), [1], 'i32'));
  }
}

function fakeGrads(m: Module, step: number): void {
  m.parameters().forEach((p, i) => (p.grad = t32(randArray(p.size, 100 * step + i), p.shape)));
}

describe('checkpoints', () => {
  it('model + Adam + StepLR + RNG + metadata restore and resume bit for bit', async () => {
    manualSeed(5);
    const a = new Tiny();
    const optA = new Adam(a.parameters(), { lr: 0.01, amsgrad: true });
    const schedA = new StepLR(optA, 2, 0.5);
    for (let s = 0; s < 3; s++) {
      fakeGrads(a, s);
      optA.step();
      schedA.step();
    }
    const bytes = await checkpointToBytes({ model: a, optimizer: optA, scheduler: schedA, meta: { epoch: 3, best: 0.5, tags: ['x'] } });
    const rngAfterSave = getRngState();
    const r1 = rand([9]);
    const draws = await read(r1);

    const b = new Tiny();
    const optB = new Adam(b.parameters(), { lr: 1 });
    const schedB = new StepLR(optB, 2, 0.5);
    rand([3]).dispose(); // move the generator; restore must rewind it
    const { meta } = checkpointFromBytes(bytes, { model: b, optimizer: optB, scheduler: schedB });
    expect(meta).toEqual({ epoch: 3, best: 0.5, tags: ['x'] });
    expect(getRngState()).toEqual(rngAfterSave);
    expect(Array.from(await read(rand([9])))).toEqual(Array.from(draws));
    expect(optB.paramGroups[0].options.lr).toBe(0.005);
    expect(optB.paramGroups[0].options.amsgrad).toBe(true);
    expect(schedB.lastEpoch).toBe(3);
    expect(Array.from(await b.getBuffer('count')!.data())).toEqual([11]);
    for (const [m, opt, sched] of [[a, optA, schedA], [b, optB, schedB]] as const) {
      fakeGrads(m, 7);
      opt.step();
      sched.step();
    }
    const pa = a.parameters();
    const pb = b.parameters();
    for (let i = 0; i < pa.length; i++) expect(Array.from(await read(pb[i]))).toEqual(Array.from(await read(pa[i])));
    for (const x of [a, b, optA, optB]) x.dispose();
    r1.dispose();
  });

  it('refuses a checkpoint that does not fit, before changing anything', async () => {
    const a = new Tiny();
    const bytes = await checkpointToBytes({ model: a });
    const other = new Sequential(new Linear(5, 7));
    expect(() => checkpointFromBytes(bytes, { model: other })).toThrow(/Missing key\(s\) in state_dict: "0.weight", "0.bias"\.\n  Unexpected key\(s\) in state_dict: "count", "net\.0\.weight"/);
    const opt = new Adam(a.parameters());
    expect(() => checkpointFromBytes(bytes, { model: a, optimizer: opt })).toThrow(/the checkpoint has no optimizer state/);
    const plain = serializeSafetensors({ w: { shape: [1], data: new Float32Array(1) } });
    expect(() => checkpointFromBytes(plain, { model: a, source: 'x.safetensors' })).toThrow(/x.safetensors: not a goe checkpoint/);
    await expect(checkpointToBytes({ model: a, meta: { n: 1n } })).rejects.toThrow(/meta is not JSON-serializable/);
    for (const x of [a, other, opt]) x.dispose();
  });

  it('files: saveCheckpoint/loadCheckpoint and saveModel/loadModel, with the file name in errors', async () => {
    const a = new Tiny();
    const opt = new Adam(a.parameters());
    fakeGrads(a, 1);
    opt.step();
    const path = join(dir, 'ckpt.safetensors');
    await saveCheckpoint(path, { model: a, optimizer: opt, meta: { step: 1 } });
    const b = new Tiny();
    const optB = new Adam(b.parameters());
    const r = await loadCheckpoint(path, { model: b, optimizer: optB });
    expect(r.meta).toEqual({ step: 1 });
    expect(Array.from(await read(b.net.at(2).parameters()[0]))).toEqual(Array.from(await read(a.net.at(2).parameters()[0])));
    const wpath = join(dir, 'weights.safetensors');
    await saveModel(wpath, a);
    const names = [...parseSafetensors(readFileSync(wpath)).tensors.keys()];
    expect(names).toEqual(['count', 'net.0.weight', 'net.0.bias', 'net.2.weight', 'net.2.bias']);
    const c = new Tiny();
    await loadModel(wpath, c);
    expect(Array.from(await read(c.net.at(0).parameters()[1]))).toEqual(Array.from(await read(a.net.at(0).parameters()[1])));
    const full = readFileSync(path);
    writeFileSync(join(dir, 'cut.safetensors'), full.subarray(0, full.length - 10));
    await expect(loadCheckpoint(join(dir, 'cut.safetensors'), { model: c })).rejects.toThrow(/cut.safetensors: tensor ".*": data_offsets .* \(truncated file\?\)/);
    await expect(loadModel(join(dir, 'missing.safetensors'), c)).rejects.toThrow(/could not read .*missing.safetensors/);
    for (const x of [a, b, c, opt, optB]) x.dispose();
  });

  it('atomic writes: a failed write leaves the old file and no temporary behind', async () => {
    const path = join(dir, 'atomic.bin');
    await writeFileAtomic(path, new Uint8Array([1, 2, 3]));
    expect(Array.from(readFileSync(path))).toEqual([1, 2, 3]);
    await writeFileAtomic(path, new Uint8Array([4, 5]));
    expect(Array.from(readFileSync(path))).toEqual([4, 5]);
    // the target is a non-empty folder: the rename fails after the temporary was written
    const blocked = join(dir, 'blocked');
    mkdirSync(blocked);
    writeFileSync(join(blocked, 'keep'), 'x');
    await expect(writeFileAtomic(blocked, new Uint8Array(1000))).rejects.toThrow(/could not write .*blocked/);
    await expect(writeFileAtomic(join(dir, 'no', 'such', 'dir.bin'), new Uint8Array(1))).rejects.toThrow(/could not write/);
    expect(readdirSync(dir).filter((f) => f.includes('.tmp-'))).toEqual([]);
    expect(Array.from(readFileSync(path))).toEqual([4, 5]);
  });
});

// Parameters from a loaded file are plain host arrays: Parameter.set accepts them too.
describe('parameters from files', () => {
  it('Parameter.set from a parsed tensor', async () => {
    const f = parseSafetensors(sample());
    const p = Parameter.empty([3, 5]);
    p.upload(f.tensors.get('w')!.data as Float32Array);
    expect(Array.from(await read(p))).toEqual(Array.from(Float32Array.from(randArray(15, 1))));
    p.dispose();
  });
});
