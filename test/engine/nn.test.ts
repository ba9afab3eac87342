/**
 * nn: Parameter (arena slots, gradient accessor, scopes), Module (names, modes, state dicts),
 * layers (Linear against a float64 reference, its default init's distribution, Dropout), and the
 * initialisers' fan/gain arithmetic.
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { engine, t32, read } from '../helpers/gpu.ts';
import { randArray, asF32, expectClose } from '../helpers/reference.ts';
import {
  Parameter, Module, Linear, Embedding, Sequential, ModuleList, ReLU, Tanh, Dropout, Flatten, releaseParameterArena, scope, backward, sum, mul,
  calculateFanInAndFanOut, calculateGain, kaimingNormal_, kaimingUniform_, xavierUniform_, normal_, zeros_, ones_, constant_, manualSeed,
  runtime, memoryStats, tensor, noGrad,
} from '../../src/engine/index.ts';
import { BatchNorm2d } from '../../src/engine/nn/norm.ts';

beforeAll(async () => {
  await engine();
});
afterAll(() => releaseParameterArena());

function moments(v: ArrayLike<number>): { mean: number; std: number; min: number; max: number } {
  let s = 0;
  let min = Infinity;
  let max = -Infinity;
  for (let i = 0; i < v.length; i++) {
    s += v[i];
    min = Math.min(min, v[i]);
    max = Math.max(max, v[i]);
  }
  const mean = s / v.length;
  let q = 0;
  for (let i = 0; i < v.length; i++) q += (v[i] - mean) ** 2;
  return { mean, std: Math.sqrt(q / v.length), min, max };
}

describe('Parameter', () => {
  it('lives in an arena slot, is never owned by a scope, and takes ownership of assigned gradients', async () => {
    const p = scope(() => Parameter.from(t32([1, 2, 3, 4, 5], [5])));
    expect(p.disposed).toBe(false);
    expect(p.requiresGrad).toBe(true);
    expect(p.offset % 64).toBe(0);
    expect(Array.from(await read(p))).toEqual([1, 2, 3, 4, 5]);
    const g = t32([0.5, -1, 2, 3, 4], [5]);
    p.grad = g;
    expect(g.disposed).toBe(true);
    expect(p.grad!.bufferFor('t')).toBe(p.arena.grad().bufferFor('t'));
    expect(Array.from(await read(p.grad!))).toEqual([0.5, -1, 2, 3, 4]);
    expect(() => (p.grad = t32([1, 2], [2]))).toThrow(/Parameter.grad: gradient of shape \[2\] for a parameter of shape \[5\]/);
    p.grad = null;
    expect(p.grad).toBeNull();
    expect(() => p.upload(new Float32Array(3))).toThrow(/3 values for a parameter of shape \[5\]/);
    p.dispose();
    expect(p.grad).toBeNull();
  });

  it('backward writes into the gradient arena and accumulates across backward calls', async () => {
    const xv = asF32(randArray(7, 3));
    const wv = asF32(randArray(7, 4));
    const w = Parameter.from(t32(wv, [7]));
    const x = t32(xv, [7]);
    for (let k = 0; k < 2; k++) {
      scope(() => {
        const y = sum(mul(w, x));
        backward(y);
      });
    }
    expectClose(await read(w.grad!), Array.from(xv, (v) => 2 * v), { rtol: 1e-6 });
    x.dispose();
    w.dispose();
  });

  it('a parameter larger than half a chunk gets a chunk of its own, freed with it', async () => {
    releaseParameterArena();
    const pool = runtime().device.pool;
    const small = Parameter.empty([3]);
    const before = pool.stats().live;
    const big = Parameter.empty([1100001]); // does not fit the rest of the first 4 MiB chunk, and is over half of it
    expect(big.arena).not.toBe(small.arena);
    expect(big.offset).toBe(0);
    const v = Float32Array.from(randArray(1100001, 2));
    big.upload(v);
    big.grad = t32(randArray(1100001, 3), [1100001]);
    expect((await read(big)).slice(-3)).toEqual(Float64Array.from(v.slice(-3)));
    const small2 = Parameter.empty([5]);
    expect(small2.arena).toBe(small.arena);
    big.dispose();
    expect(pool.stats().live).toBe(before + 0);
    small.dispose();
    small2.dispose();
  });

  it('a disposed model frees its arena chunk once the allocator moves on', () => {
    releaseParameterArena();
    const pool = runtime().device.pool;
    const before = pool.stats().live;
    const m = new Linear(9, 5);
    m.weight.grad = t32(randArray(45, 1), [5, 9]);
    expect(pool.stats().live).toBeGreaterThan(before);
    m.dispose();
    releaseParameterArena();
    expect(pool.stats().live).toBe(before);
  });
});

class Unit extends Module {
  readonly conv1: Linear;
  readonly act: ReLU;
  constructor(n: number) {
    super();
    this.conv1 = this.registerModule('conv1', new Linear(n, n));
    this.act = this.registerModule('act', new ReLU());
  }
}

class Block extends Module {
  readonly layer: ModuleList<Unit>;
  constructor(n: number) {
    super();
    this.layer = this.registerModule('layer', new ModuleList([new Unit(n), new Unit(n)]));
  }
}

class Net extends Module {
  readonly block1: Block;
  readonly head: Sequential;
  readonly scale: Parameter;
  constructor() {
    super();
    this.scale = this.registerParameter('scale', Parameter.from(t32([1.5], [1])));
    this.block1 = this.registerModule('block1', new Block(3));
    this.head = this.registerModule('head', new Sequential(new Linear(3, 2), new Tanh()));
    this.registerBuffer('steps', tensor(Int32Array.from([7]), [1], 'i32'));
    this.registerBuffer('scratch', t32([0], [1]), false);
  }
}

describe('Module', () => {
  it("names parameters, buffers and modules with PyTorch's dotted names and order", () => {
    const net = new Net();
    expect(net.namedParameters().map(([n, p]) => `${n}:${p.shape.join('x')}`)).toEqual([
      'scale:1', 'block1.layer.0.conv1.weight:3x3', 'block1.layer.0.conv1.bias:3', 'block1.layer.1.conv1.weight:3x3',
      'block1.layer.1.conv1.bias:3', 'head.0.weight:2x3', 'head.0.bias:2',
    ]);
    expect([...net.stateDict().keys()]).toEqual([
      'scale', 'steps', 'block1.layer.0.conv1.weight', 'block1.layer.0.conv1.bias', 'block1.layer.1.conv1.weight',
      'block1.layer.1.conv1.bias', 'head.0.weight', 'head.0.bias',
    ]);
    expect(net.namedModules().map(([n]) => n)).toEqual(['', 'block1', 'block1.layer', 'block1.layer.0', 'block1.layer.0.conv1', 'block1.layer.0.act', 'block1.layer.1', 'block1.layer.1.conv1', 'block1.layer.1.act', 'head', 'head.0', 'head.1']);
    expect(net.numParameters()).toBe(1 + 2 * 12 + 8);
    expect(() => net.registerModule('bad.name', new ReLU())).toThrow(/must be letters, digits or underscores/);
    expect(() => net.registerParameter('block1', null)).toThrow(/already registered as another kind/);
    net.dispose();
  });

  it('lists a shared parameter once; train()/eval() reach every submodule', () => {
    const a = new Linear(4, 4);
    const s = new Sequential(a, new ReLU(), a);
    expect(s.parameters().length).toBe(2);
    expect(s.namedParameters().map(([n]) => n)).toEqual(['0.weight', '0.bias']);
    s.eval();
    expect(s.modules().every((m) => !m.training)).toBe(true);
    s.train();
    expect(s.modules().every((m) => m.training)).toBe(true);
    s.dispose();
  });

  it('loadStateDict copies from another model and from host arrays', async () => {
    const a = new Net();
    const b = new Net();
    b.loadStateDict(a.stateDict());
    for (const [[na, pa], [nb, pb]] of a.namedParameters().map((e, i) => [e, b.namedParameters()[i]] as const)) {
      expect(nb).toBe(na);
      expect(Array.from(await read(pb))).toEqual(Array.from(await read(pa)));
    }
    const host = new Map<string, { shape: number[]; data: Float32Array | Int32Array | BigInt64Array }>();
    for (const [k, t] of a.stateDict()) host.set(k, { shape: [...t.shape], data: new Float32Array(t.size).fill(0.25) });
    host.set('steps', { shape: [1], data: BigInt64Array.from([42n]) });
    b.loadStateDict(host);
    expect(Array.from(await read(b.block1.layer.at(1).conv1.bias!))).toEqual([0.25, 0.25, 0.25]);
    expect(Array.from(await b.getBuffer('steps')!.data())).toEqual([42]);
    a.dispose();
    b.dispose();
  });

  it('reports missing, unexpected and mis-shaped keys at once, and copies nothing then', async () => {
    const m = new Sequential(new Linear(3, 2), new ReLU(), new Linear(2, 4));
    const before = Array.from(await read(m.at(0).parameters()[0]));
    const state = new Map<string, { shape: number[]; data: Float32Array }>([
      ['0.weight', { shape: [2, 3], data: new Float32Array(6).fill(9) }],
      ['0.bias', { shape: [3], data: new Float32Array(3) }],
      ['2.weight', { shape: [4, 2], data: new Float32Array(8) }],
      ['extra.weight', { shape: [1], data: new Float32Array(1) }],
    ]);
    let msg = '';
    try {
      m.loadStateDict(state);
    } catch (e) {
      msg = (e as Error).message;
    }
    expect(msg).toContain('Error(s) in loading state_dict for Sequential');
    expect(msg).toContain('Missing key(s) in state_dict: "2.bias".');
    expect(msg).toContain('Unexpected key(s) in state_dict: "extra.weight".');
    expect(msg).toContain('size mismatch for 0.bias: copying a param with shape [3] from checkpoint, the shape in current model is [2].');
    expect(Array.from(await read(m.at(0).parameters()[0]))).toEqual(before);
    // non-strict: leftovers are returned, shape mismatches still throw
    state.set('0.bias', { shape: [2], data: new Float32Array([1, 2]) });
    const r = m.loadStateDict(state, false);
    expect(r).toEqual({ missingKeys: ['2.bias'], unexpectedKeys: ['extra.weight'] });
    expect(Array.from(await read(m.at(0).parameters()[0]))).toEqual(new Array(6).fill(9));
    m.dispose();
  });
});

describe('layers', () => {
  it('BatchNorm2d counts training batches in place; a loaded count goes on from its value, a counter set from outside is replaced, not written', async () => {
    const bn = new BatchNorm2d(3);
    const x = t32(randArray(2 * 3 * 2 * 2, 21), [2, 3, 2, 2]);
    const own = bn.getBuffer('num_batches_tracked')!;
    for (let i = 0; i < 3; i++) bn.forward(x).dispose();
    expect(bn.getBuffer('num_batches_tracked')).toBe(own);
    expect(Array.from(await own.data())).toEqual([3]);
    bn.loadStateDict({ num_batches_tracked: { shape: [], data: Int32Array.from([10]) } }, false);
    bn.forward(x).dispose();
    expect(Array.from(await bn.getBuffer('num_batches_tracked')!.data())).toEqual([11]);
    bn.eval();
    bn.forward(x).dispose();
    expect(Array.from(await bn.getBuffer('num_batches_tracked')!.data())).toEqual([11]);
    bn.train();
    const outside = tensor(Int32Array.from([40]), [], 'i32');
    bn.setBuffer('num_batches_tracked', outside);
    bn.forward(x).dispose();
    bn.forward(x).dispose();
    expect(outside.disposed).toBe(true);
    expect(Array.from(await bn.getBuffer('num_batches_tracked')!.data())).toEqual([42]);
    x.dispose();
  });

  it('Linear forward matches a float64 reference, and its gradients flow into the arena', async () => {
    const [B, I, O] = [5, 7, 3];
    const lin = new Linear(I, O);
    const W = Float64Array.from(await read(lin.weight));
    const bias = Float64Array.from(await read(lin.bias!));
    const xv = asF32(randArray(B * I, 8));
    const x = t32(xv, [B, I]);
    const y = lin.forward(x);
    const ref = new Float64Array(B * O);
    for (let b = 0; b < B; b++) for (let o = 0; o < O; o++) {
      let s = bias[o];
      for (let i = 0; i < I; i++) s += xv[b * I + i] * W[o * I + i];
      ref[b * O + o] = s;
    }
    expectClose(await read(y), ref, { atol: 1e-5, rtol: 1e-5 });
    backward(sum(y));
    const gw = new Float64Array(O * I);
    for (let o = 0; o < O; o++) for (let i = 0; i < I; i++) for (let b = 0; b < B; b++) gw[o * I + i] += xv[b * I + i];
    expectClose(await read(lin.weight.grad!), gw, { atol: 1e-5, rtol: 1e-5 });
    expectClose(await read(lin.bias!.grad!), new Array(O).fill(B), { rtol: 1e-6 });
    y.dispose();
    x.dispose();
    lin.dispose();
  });

  it("Linear's default init is U(-1/sqrt(in), 1/sqrt(in)) for weight and bias, reproducible by seed", async () => {
    manualSeed(123);
    const lin = new Linear(150, 201);
    const w = await read(lin.weight);
    const b = await read(lin.bias!);
    const bound = 1 / Math.sqrt(150);
    const mw = moments(w);
    expect(mw.min).toBeGreaterThanOrEqual(-bound);
    expect(mw.max).toBeLessThan(bound);
    expect(Math.abs(mw.mean)).toBeLessThan(0.02 * bound);
    expect(mw.std / (bound / Math.sqrt(3))).toBeCloseTo(1, 1);
    expect(Math.max(...b.map(Math.abs))).toBeLessThanOrEqual(bound);
    manualSeed(123);
    const again = new Linear(150, 201);
    expect(Array.from(await read(again.weight))).toEqual(Array.from(w));
    lin.dispose();
    again.dispose();
  });

  it('Dropout: scaled keep mask in training (gradient too), identity in eval', async () => {
    const n = 4001;
    const xv = asF32(randArray(n, 5, 0.5, 1.5));
    const x = t32(xv, [n], true);
    const d = new Dropout(0.3);
    const y = d.forward(x);
    const yv = await read(y);
    let dropped = 0;
    for (let i = 0; i < n; i++) {
      if (yv[i] === 0) dropped++;
      else expect(Math.abs(yv[i] - xv[i] / 0.7)).toBeLessThan(1e-6 * xv[i] / 0.7 + 1e-7);
    }
    expect(dropped / n).toBeGreaterThan(0.26);
    expect(dropped / n).toBeLessThan(0.34);
    backward(sum(y));
    const g = await read(x.grad!);
    for (let i = 0; i < n; i++) expect(g[i]).toBeCloseTo(yv[i] === 0 ? 0 : 1 / 0.7, 6);
    d.eval();
    const z = d.forward(x);
    expect(Array.from(await read(z))).toEqual(Array.from(xv));
    expect(() => new Dropout(1.5)).toThrow(/Dropout: dropout probability must be in \[0, 1\], got 1.5/);
    for (const t of [x.grad!, x, y, z]) t.dispose();
  });

  it('Embedding: N(0, 1) rows, zero padding row without gradient, gradients summed per row', async () => {
    manualSeed(3);
    const [V, D] = [13, 7];
    const e = new Embedding(V, D, { paddingIdx: -2 });
    expect(e.paddingIdx).toBe(11);
    const W = await read(e.weight);
    expect(Array.from(W.slice(11 * D, 12 * D))).toEqual(new Array(D).fill(0));
    const m = moments(W.filter((_, i) => Math.floor(i / D) !== 11));
    expect(Math.abs(m.mean)).toBeLessThan(0.4);
    expect(m.std).toBeGreaterThan(0.7);
    expect(m.std).toBeLessThan(1.3);
    const idsv = [3, 11, 0, 3, 12, 5];
    const ids = tensor(Int32Array.from(idsv), [2, 3], 'i32');
    const y = e.forward(ids);
    expect(y.shape).toEqual([2, 3, D]);
    const yv = await read(y);
    const ref = idsv.flatMap((i) => Array.from(W.slice(i * D, (i + 1) * D)));
    expect(Array.from(yv)).toEqual(ref);
    const gv = asF32(randArray(6 * D, 4));
    backward(y, t32(gv, [2, 3, D]));
    const gref = new Float64Array(V * D);
    idsv.forEach((id, k) => {
      if (id === 11) return;
      for (let d = 0; d < D; d++) gref[id * D + d] += gv[k * D + d];
    });
    expectClose(await read(e.weight.grad!), gref, { atol: 1e-6, rtol: 1e-6 });
    expect(() => new Embedding(4, 3, { paddingIdx: 4 })).toThrow(/Embedding: paddingIdx 4 out of range for 4 embeddings/);
    y.dispose();
    ids.dispose();
    e.dispose();
  });

  it('Flatten and Sequential free intermediates', async () => {
    const s = new Sequential(new Flatten(), new Linear(6, 4), new ReLU(), new Linear(4, 2));
    const x = t32(randArray(3 * 2 * 3, 9), [3, 2, 3]);
    const live = memoryStats().tensors;
    const y = noGrad(() => s.forward(x));
    expect(y.shape).toEqual([3, 2]);
    expect(memoryStats().tensors).toBe(live + 1);
    y.dispose();
    // with a graph: the saved tensors go when the output is disposed
    const y2 = s.forward(x);
    expect(y2.requiresGrad).toBe(true);
    y2.dispose();
    expect(memoryStats().tensors).toBe(live);
    x.dispose();
    s.dispose();
  });
});

describe('init', () => {
  it("fans and gains as PyTorch's", () => {
    expect(calculateFanInAndFanOut([8, 3, 5, 5])).toEqual({ fanIn: 75, fanOut: 200 });
    expect(calculateFanInAndFanOut([4, 6])).toEqual({ fanIn: 6, fanOut: 4 });
    expect(() => calculateFanInAndFanOut([4])).toThrow(/fewer than 2 dimensions/);
    expect(calculateGain('relu')).toBeCloseTo(Math.SQRT2, 12);
    expect(calculateGain('tanh')).toBeCloseTo(5 / 3, 12);
    expect(calculateGain('leaky_relu', Math.sqrt(5))).toBeCloseTo(Math.sqrt(1 / 3), 12);
    expect(calculateGain('selu')).toBe(0.75);
  });

  it('kaiming_normal_, kaiming_uniform_ (fan_out), xavier_uniform_, normal_ have the stated spread', async () => {
    const p = Parameter.empty([64, 33, 3, 3]); // fan_in 297, fan_out 576
    kaimingNormal_(p, { nonlinearity: 'relu' });
    let m = moments(await read(p));
    expect(m.std / Math.sqrt(2 / 297)).toBeCloseTo(1, 1);
    kaimingUniform_(p, { mode: 'fan_out', nonlinearity: 'relu' });
    m = moments(await read(p));
    const bound = Math.SQRT2 * Math.sqrt(3 / 576);
    expect(m.max).toBeLessThanOrEqual(bound);
    expect(m.min).toBeGreaterThanOrEqual(-bound);
    expect(m.std / (bound / Math.sqrt(3))).toBeCloseTo(1, 1);
    xavierUniform_(p, 2);
    m = moments(await read(p));
    const xb = 2 * Math.sqrt(6 / (297 + 576));
    expect(m.max).toBeLessThanOrEqual(xb);
    expect(m.std / (xb / Math.sqrt(3))).toBeCloseTo(1, 1);
    normal_(p, 3, 0.5);
    m = moments(await read(p));
    expect(m.mean).toBeCloseTo(3, 1);
    expect(m.std).toBeCloseTo(0.5, 1);
    zeros_(p);
    expect(moments(await read(p))).toEqual({ mean: 0, std: 0, min: 0, max: 0 });
    ones_(p);
    expect(moments(await read(p)).min).toBe(1);
    constant_(p, -2.5);
    expect(moments(await read(p)).max).toBe(-2.5);
    p.dispose();
  });
});

