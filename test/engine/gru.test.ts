import { describe, it, expect, beforeAll } from 'vitest';
import { readFileSync } from 'node:fs';
import { engine, t32, read } from '../helpers/gpu.ts';
import { parseSafetensors } from '../../src/engine/io/index.ts';
import { GRU } from '../../src/engine/nn/gru.ts';
import { randArray, asF32, expectClose, finiteDiff, dot } from '../helpers/reference.ts';
import { gruRef, sig, type RefLayer } from '../helpers/ref-gru.ts';
import { gru, cat0, reshape, backward, tensor, OpError, memoryStats, runtime, type Tensor } from '../../src/engine/index.ts';

interface Case {
  T: number;
  B: number;
  I: number;
  H: number;
  L: number;
  lens: number[];
}

function makeCase(c: Case, seed: number) {
  const s = 1 / Math.sqrt(c.H);
  const layers: RefLayer[] = [];
  for (let l = 0; l < c.L; l++) {
    const inSize = l === 0 ? c.I : c.H;
    layers.push({
      wIh: asF32(randArray(3 * c.H * inSize, seed + 10 * l, -s * 2, s * 2)),
      wHh: asF32(randArray(3 * c.H * c.H, seed + 10 * l + 1, -s * 2, s * 2)),
      bIh: asF32(randArray(3 * c.H, seed + 10 * l + 2, -0.5, 0.5)),
      bHh: asF32(randArray(3 * c.H, seed + 10 * l + 3, -0.5, 0.5)),
    });
  }
  return {
    layers,
    x: asF32(randArray(c.T * c.B * c.I, seed + 100, -1.5, 1.5)),
    h0: asF32(randArray(c.L * c.B * c.H, seed + 101, -0.8, 0.8)),
    gy: asF32(randArray(c.T * c.B * c.H, seed + 102, -1, 1)),
    ghN: asF32(randArray(c.L * c.B * c.H, seed + 103, -1, 1)),
  };
}

function gpuWeights(c: Case, layers: RefLayer[], grad: boolean) {
  return layers.map((w, l) => {
    const inSize = l === 0 ? c.I : c.H;
    return {
      wIh: t32(w.wIh, [3 * c.H, inSize], grad),
      wHh: t32(w.wHh, [3 * c.H, c.H], grad),
      bIh: t32(w.bIh, [3 * c.H], grad),
      bHh: t32(w.bHh, [3 * c.H], grad),
    };
  });
}

/** Batch-first copy of a time-major [T, B, F] array. */
function toBatchFirst(a: Float64Array, T: number, B: number, F: number): Float64Array {
  const o = new Float64Array(a.length);
  for (let t = 0; t < T; t++) for (let b = 0; b < B; b++) for (let f = 0; f < F; f++) o[(b * T + t) * F + f] = a[(t * B + b) * F + f];
  return o;
}

beforeAll(async () => {
  await engine();
});

describe('gru forward', () => {
  it('2 layers, odd sizes, hidden > one workgroup, batch > one row block: matches float64', async () => {
    const c: Case = { T: 9, B: 5, I: 7, H: 70, L: 2, lens: [9, 9, 9, 9, 9] };
    const d = makeCase(c, 1);
    const ref = gruRef(d.x, d.h0, d.layers, c.T, c.B, c.I, c.H, c.lens);
    const { output, hN } = gru(t32(d.x, [c.T, c.B, c.I]), t32(d.h0, [c.L, c.B, c.H]), gpuWeights(c, d.layers, false));
    expect(output.shape).toEqual([c.T, c.B, c.H]);
    expect(hN.shape).toEqual([c.L, c.B, c.H]);
    expectClose(await read(output), ref.y, { atol: 2e-5, rtol: 1e-4, what: 'output' });
    expectClose(await read(hN), ref.hN, { atol: 2e-5, rtol: 1e-4, what: 'hN' });
  });

  it('variable lengths (padded outputs are zero, hN is each sequence own last state), batch first, no h0', async () => {
    const c: Case = { T: 8, B: 3, I: 4, H: 13, L: 2, lens: [8, 3, 5] };
    const d = makeCase(c, 2);
    const ref = gruRef(d.x, new Float64Array(c.L * c.B * c.H), d.layers, c.T, c.B, c.I, c.H, c.lens);
    const { output, hN } = gru(t32(toBatchFirst(d.x, c.T, c.B, c.I), [c.B, c.T, c.I]), null, gpuWeights(c, d.layers, false), { batchFirst: true, lengths: c.lens });
    expect(output.shape).toEqual([c.B, c.T, c.H]);
    expectClose(await read(output), toBatchFirst(ref.y, c.T, c.B, c.H), { atol: 2e-5, rtol: 1e-4, what: 'output' });
    expectClose(await read(hN), ref.hN, { atol: 2e-5, rtol: 1e-4, what: 'hN' });
  });

  it('hidden 300 (two batch rows per workgroup, five column blocks) matches float64', async () => {
    const c: Case = { T: 3, B: 3, I: 2, H: 300, L: 1, lens: [3, 1, 2] };
    const d = makeCase(c, 9);
    const ref = gruRef(d.x, d.h0, d.layers, c.T, c.B, c.I, c.H, c.lens);
    const { output, hN } = gru(t32(d.x, [c.T, c.B, c.I]), t32(d.h0, [c.L, c.B, c.H]), gpuWeights(c, d.layers, false), { lengths: c.lens });
    expectClose(await read(output), ref.y, { atol: 2e-5, rtol: 1e-4, what: 'output' });
    expectClose(await read(hN), ref.hN, { atol: 2e-5, rtol: 1e-4, what: 'hN' });
  });

  it('SIMD-8 step (lavapipe; H a multiple of 8, H <= 128): H 128 and 16, batch over 16-row blocks, masked lengths', async () => {
    // where simd8 applies these run gru_fwd_step_simd8; elsewhere the tiled step (same results)
    const cases: Case[] = [
      { T: 5, B: 19, I: 6, H: 128, L: 2, lens: [5, 5, 1, 3, 5, 5, 2, 5, 5, 4, 5, 5, 5, 5, 5, 1, 5, 5, 3] },
      { T: 7, B: 33, I: 3, H: 16, L: 1, lens: Array.from({ length: 33 }, (_, i) => 1 + (i % 7)) },
    ];
    for (const c of cases) {
      const d = makeCase(c, 21 + c.H);
      const ref = gruRef(d.x, d.h0, d.layers, c.T, c.B, c.I, c.H, c.lens);
      const { output, hN } = gru(t32(d.x, [c.T, c.B, c.I]), t32(d.h0, [c.L, c.B, c.H]), gpuWeights(c, d.layers, false), { lengths: c.lens });
      expectClose(await read(output), ref.y, { atol: 2e-5, rtol: 1e-4, what: `output H${c.H}` });
      expectClose(await read(hN), ref.hN, { atol: 2e-5, rtol: 1e-4, what: `hN H${c.H}` });
    }
  });

  it('one dispatch per step and layer for the recurrence (plus a few per layer)', async () => {
    const c: Case = { T: 40, B: 2, I: 3, H: 8, L: 2, lens: [40, 40] };
    const d = makeCase(c, 3);
    const w = gpuWeights(c, d.layers, false);
    const x = t32(d.x, [c.T, c.B, c.I]);
    const stats = runtime().device.stats;
    const before = stats.dispatches;
    const { output } = gru(x, null, w);
    const used = stats.dispatches - before;
    await output.data();
    expect(used).toBeLessThanOrEqual(c.L * (c.T + 8) + 4);
  });
});

describe('gru backward', () => {
  const names = ['wIh', 'wHh', 'bIh', 'bHh'] as const;

  async function runBackward(c: Case, d: ReturnType<typeof makeCase>, withH0: boolean) {
    const x = t32(d.x, [c.T, c.B, c.I], true);
    const h0 = withH0 ? t32(d.h0, [c.L, c.B, c.H], true) : null;
    const w = gpuWeights(c, d.layers, true);
    const { output, hN } = gru(x, h0, w, { lengths: c.lens });
    // one backward through both outputs: concatenate them (flattened) with their gradients
    const flat = [reshape(output, [-1]), reshape(hN, [-1])];
    const both = cat0(flat);
    const seed = new Float64Array(d.gy.length + d.ghN.length);
    seed.set(d.gy);
    seed.set(d.ghN, d.gy.length);
    const seedT = t32(seed, both.shape);
    backward(both, seedT);
    return { x, h0, w, made: [output, hN, both, seedT, ...flat] };
  }

  /** Every gradient (x, h0, the named weights of every layer) against central differences. */
  async function checkAllGradients(c: Case, seed: number, weights: readonly (typeof names)[number][]) {
    const d = makeCase(c, seed);
    const loss = (x: Float64Array, h0: Float64Array, layers: RefLayer[]) => {
      const r = gruRef(x, h0, layers, c.T, c.B, c.I, c.H, c.lens);
      return dot(r.y, d.gy) + dot(r.hN, d.ghN);
    };
    const g = await runBackward(c, d, true);
    expectClose(await read(g.x.grad!), finiteDiff((v) => loss(v, d.h0, d.layers), d.x), { atol: 5e-5, rtol: 1e-3, what: 'dx' });
    expectClose(await read(g.h0!.grad!), finiteDiff((v) => loss(d.x, v, d.layers), d.h0), { atol: 5e-5, rtol: 1e-3, what: 'dh0' });
    for (let l = 0; l < c.L; l++) {
      for (const n of weights) {
        const fd = finiteDiff((v) => loss(d.x, d.h0, d.layers.map((w, i) => (i === l ? { ...w, [n]: v } : w))), d.layers[l][n]);
        expectClose(await read(g.w[l][n].grad!), fd, { atol: 5e-5, rtol: 1e-3, what: `${n}_l${l}` });
      }
    }
  }

  it('GPU gradients = float64 reference gradients (central differences), all inputs, masked lengths', async () => {
    await checkAllGradients({ T: 5, B: 3, I: 3, H: 4, L: 2, lens: [5, 2, 4] }, 4, names);
  });

  it('through the SIMD-8 forward (H 8, the states and gates it saves): central differences, masked lengths', async () => {
    await checkAllGradients({ T: 4, B: 3, I: 2, H: 8, L: 1, lens: [4, 2, 3] }, 31, ['wHh']);
  });

  it('a padded step leaves the gradients untouched: padding inputs get zero gradient', async () => {
    const c: Case = { T: 6, B: 2, I: 3, H: 5, L: 1, lens: [6, 3] };
    const d = makeCase(c, 5);
    const g = await runBackward(c, d, true);
    const dx = await read(g.x.grad!);
    for (let t = 3; t < 6; t++) for (let i = 0; i < c.I; i++) expect(dx[(t * c.B + 1) * c.I + i]).toBe(0);
    expect(dx.some((v) => v !== 0)).toBe(true);
  });

  for (const c of [{ T: 6, B: 5, I: 4, H: 67, L: 1, lens: [6, 6, 1, 4, 6] }, { T: 3, B: 3, I: 2, H: 300, L: 1, lens: [3, 2, 3] }] as Case[]) {
  it(`larger hidden size ${c.H} (several column blocks and row blocks): sampled finite differences`, async () => {
    const d = makeCase(c, 6);
    const loss = (x: Float64Array, h0: Float64Array, layers: RefLayer[]) => {
      const r = gruRef(x, h0, layers, c.T, c.B, c.I, c.H, c.lens);
      return dot(r.y, d.gy) + dot(r.hN, d.ghN);
    };
    const g = await runBackward(c, d, true);
    const sample = (name: string, got: Float64Array, f: (v: Float64Array) => number, at: Float64Array, count: number) => {
      const idx = Array.from({ length: count }, (_, i) => Math.floor((i * at.length) / count + 3) % at.length);
      const h = 1e-6;
      const want: number[] = [];
      const have: number[] = [];
      for (const i of idx) {
        const v = at.slice();
        v[i] += h;
        const fp = f(v);
        v[i] -= 2 * h;
        want.push((fp - f(v)) / (2 * h));
        have.push(got[i]);
      }
      expectClose(have, want, { atol: 5e-5, rtol: 1e-3, what: name });
    };
    sample('dx', await read(g.x.grad!), (v) => loss(v, d.h0, d.layers), d.x, 24);
    sample('dh0', await read(g.h0!.grad!), (v) => loss(d.x, v, d.layers), d.h0, 24);
    for (const n of names) sample(n, await read(g.w[0][n].grad!), (v) => loss(d.x, d.h0, [{ ...d.layers[0], [n]: v }]), d.layers[0][n], 24);
  });
  }

  it('frees its temporaries', async () => {
    const c: Case = { T: 4, B: 2, I: 3, H: 5, L: 2, lens: [4, 2] };
    const d = makeCase(c, 7);
    const before = memoryStats();
    const g = await runBackward(c, d, true);
    await g.x.grad!.data();
    const all: Tensor[] = [g.x, g.h0!, ...g.w.flatMap((w) => [w.wIh, w.wHh, w.bIh, w.bHh]), ...g.made];
    for (const t of all) {
      t.grad?.dispose();
      t.dispose();
    }
    expect(memoryStats()).toEqual(before);
  });
});

describe('gru input checks', () => {
  it('rejects bad shapes and lengths before any kernel runs', () => {
    const x = tensor(new Float32Array(4 * 2 * 3), [4, 2, 3]);
    const w = { wIh: tensor(new Float32Array(15 * 3), [15, 3]), wHh: tensor(new Float32Array(15 * 5), [15, 5]) };
    expect(() => gru(x, null, [{ ...w, wIh: tensor(new Float32Array(15 * 4), [15, 4]) }])).toThrow(/weight_ih_l0 must be \[15, 3\]/);
    expect(() => gru(x, tensor(new Float32Array(10), [1, 2, 5]).view([2, 1, 5], [5, 5, 1], 0), [w])).toThrow(/h0 must be \[1, 2, 5\]/);
    expect(() => gru(x, null, [w], { lengths: [4, 5] })).toThrow(/length 5 outside 0..4/);
    expect(() => gru(x, null, [w], { lengths: [4] })).toThrow(/1 lengths for a batch of 2/);
    expect(() => gru(tensor(new Float32Array(6), [2, 3]), null, [w])).toThrow(OpError);
  });
});

describe('nn.GRU = torch.nn.GRU (PyTorch golden, 2 layers, packed variable lengths)', () => {
  it('output, h_n and every gradient from the same weights, loaded by PyTorch names', async () => {
    // a plain Uint8Array copy: parseSafetensors slices its input, and a Node Buffer's slice is a view
    const file = parseSafetensors(new Uint8Array(readFileSync(new URL('../fixtures/seq/gru_2layer_packed.safetensors', import.meta.url))));
    const get = (n: string) => {
      const t = file.tensors.get(n);
      if (!t) throw new Error(`no ${n}`);
      return t;
    };
    const m = file.metadata;
    const [I, H, L, B, T] = [m.I, m.H, m.L, m.B, m.T].map(Number);
    const gruM = new GRU(I, H, { numLayers: L, batchFirst: true });
    const params = new Map<string, { shape: number[]; data: Float32Array }>();
    for (const [n, t] of file.tensors) if (n.startsWith('param.')) params.set(n.slice(6), { shape: t.shape, data: t.data as Float32Array });
    expect(gruM.namedParameters().map(([n]) => n).sort()).toEqual([...params.keys()].sort());
    gruM.loadStateDict(params);
    const x = tensor(get('in.x').data as Float32Array, [B, T, I]);
    x.requiresGrad = true;
    const h0 = tensor(get('in.h0').data as Float32Array, [L, B, H]);
    h0.requiresGrad = true;
    const lengths = Array.from(get('in.lengths').data as Float32Array);
    const { output, hN } = gruM.forward(x, h0, { lengths });
    const tol = { atol: 1e-5, rtol: 1e-4 };
    expectClose(await read(output), get('out.y').data as Float32Array, { ...tol, what: 'output' });
    expectClose(await read(hN), get('out.hn').data as Float32Array, { ...tol, what: 'h_n' });
    const flat = [reshape(output, [-1]), reshape(hN, [-1])];
    const both = cat0(flat);
    const seed = new Float32Array(both.size);
    seed.set(get('in.gy').data as Float32Array);
    seed.set(get('in.ghn').data as Float32Array, output.size);
    backward(both, tensor(seed, both.shape));
    for (const [n, p] of gruM.namedParameters()) expectClose(await read(p.grad!), get(`grad.${n}`).data as Float32Array, { ...tol, what: `grad.${n}` });
    expectClose(await read(x.grad!), get('grad.x').data as Float32Array, { ...tol, what: 'grad.x' });
    expectClose(await read(h0.grad!), get('grad.h0').data as Float32Array, { ...tol, what: 'grad.h0' });
  });

  it('inter-layer dropout in training, none in eval', async () => {
    const gm = new GRU(3, 6, { numLayers: 2, dropout: 0.5 });
    const x = t32(randArray(5 * 2 * 3, 8), [5, 2, 3]);
    const a = await read(gm.forward(x).output);
    const b = await read(gm.forward(x).output);
    expect(Array.from(a)).not.toEqual(Array.from(b));
    gm.eval();
    expect(Array.from(await read(gm.forward(x).output))).toEqual(Array.from(await read(gm.forward(x).output)));
  });
});
