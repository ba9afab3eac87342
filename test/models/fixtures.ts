/**
 * Reads the model goldens of scripts/fixtures/torch_models.py (test/fixtures/models/) with the
 * engine's safetensors reader.
 */
import { readFileSync } from 'node:fs';
import { expect } from 'vitest';
import { parseSafetensors, type SafeTensor } from '../../src/engine/io/index.ts';
import { tensor, type Tensor } from '../../src/engine/index.ts';
import type { Module } from '../../src/engine/nn/module.ts';
import { expectClose } from '../helpers/reference.ts';
import { read } from '../helpers/gpu.ts';

export interface ModelFixture {
  meta: Record<string, string>;
  get(name: string): SafeTensor;
  f32(name: string): Float32Array;
  tensor(name: string, requiresGrad?: boolean): Tensor;
  /** `param.*` entries without the prefix: the PyTorch state_dict. */
  state: Map<string, { shape: number[]; data: Float32Array | Int32Array }>;
}

export function loadFixture(name: string): ModelFixture {
  const file = parseSafetensors(new Uint8Array(readFileSync(new URL(`../fixtures/models/${name}.safetensors`, import.meta.url))), { source: name });
  const get = (n: string): SafeTensor => {
    const t = file.tensors.get(n);
    if (!t) throw new Error(`${name}: no tensor ${n}`);
    return t;
  };
  const state = new Map<string, { shape: number[]; data: Float32Array | Int32Array }>();
  for (const [n, t] of file.tensors) if (n.startsWith('param.')) state.set(n.slice(6), { shape: t.shape, data: t.data as Float32Array });
  return {
    meta: file.metadata,
    get,
    f32: (n) => get(n).data as Float32Array,
    tensor: (n, requiresGrad = false) => {
      const t = get(n);
      const x = tensor(t.data as Float32Array | Int32Array, t.shape);
      x.requiresGrad = requiresGrad;
      return x;
    },
    state,
  };
}

export interface NamesEntry {
  state: [string, number[]][];
  parameters: [string, number[]][];
  numParameters: number;
}

export function loadNames(): Record<string, NamesEntry> {
  return JSON.parse(readFileSync(new URL('../fixtures/models/names.json', import.meta.url), 'utf8')) as Record<string, NamesEntry>;
}

/** The module's state_dict and parameter list (names, shapes, order) equal PyTorch's. */
export function expectSameNames(m: Module, ref: NamesEntry): void {
  expect([...m.stateDict()].map(([n, t]) => [n, [...t.shape]])).toEqual(ref.state);
  expect(m.namedParameters().map(([n, p]) => [n, [...p.shape]])).toEqual(ref.parameters);
  expect(m.numParameters()).toBe(ref.numParameters);
}

/** Every parameter's gradient against the fixture's grad.<name>. */
export async function expectGrads(fx: ModelFixture, m: Module, tol: { atol: number; rtol: number }): Promise<void> {
  for (const [n, p] of m.namedParameters()) {
    expect(p.grad, `grad of ${n}`).not.toBeNull();
    expectClose(await read(p.grad!), fx.f32(`grad.${n}`), { ...tol, what: `grad.${n}` });
  }
}
