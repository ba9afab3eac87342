/**
 * The checks every golden of scripts/fixtures/torch_vit_resnet.py gets (test/fixtures/vit_resnet/):
 * same state_dict names as PyTorch, eval logits, training logits + cross-entropy loss + every
 * parameter's gradient, BN running statistics after the training forward, and eval logits after
 * one SGD step (lr 0.1) on the engine's own gradients.
 */
import { readFileSync } from 'node:fs';
import { expect } from 'vitest';
import { parseSafetensors, type SafeTensor } from '../../src/engine/io/index.ts';
import { backward, crossEntropy, noGrad, tensor, SGD, type Tensor, type Module, type HostTensor, type UnaryModule } from '../../src/engine/index.ts';
import { expectClose } from '../helpers/reference.ts';
import { read } from '../helpers/gpu.ts';

export interface Golden {
  get(name: string): SafeTensor;
  f32(name: string): Float32Array;
  tensor(name: string): Tensor;
  state: Map<string, HostTensor>;
}

export function fixturePath(name: string): string {
  return new URL(`../fixtures/vit_resnet/${name}`, import.meta.url).pathname;
}

export function loadGolden(name: string): Golden {
  const file = parseSafetensors(new Uint8Array(readFileSync(fixturePath(`${name}.safetensors`))), { source: name });
  const get = (n: string): SafeTensor => {
    const t = file.tensors.get(n);
    if (!t) throw new Error(`${name}: no tensor ${n}`);
    return t;
  };
  const state = new Map<string, HostTensor>();
  for (const [n, t] of file.tensors) if (n.startsWith('param.')) state.set(n.slice(6), { shape: t.shape, data: t.data as Float32Array | Int32Array });
  return {
    get,
    f32: (n) => get(n).data as Float32Array,
    tensor: (n) => {
      const t = get(n);
      return tensor(t.data as Float32Array | Int32Array, t.shape);
    },
    state,
  };
}

export interface Tolerances {
  logits: { atol: number; rtol: number };
  grads: { atol: number; rtol: number };
}

/** Loads the golden's weights into `m` and checks it against PyTorch end to end. */
export async function checkGolden(fx: Golden, m: Module & UnaryModule, tol: Tolerances): Promise<void> {
  expect([...m.stateDict().keys()].sort()).toEqual([...fx.state.keys()].sort());
  m.loadStateDict(fx.state);
  const x = fx.tensor('in.x');
  const y = fx.tensor('in.y');
  m.eval();
  const ev = noGrad(() => m.forward(x));
  expectClose(await read(ev), fx.f32('eval.logits'), { ...tol.logits, what: 'eval.logits' });
  ev.dispose();

  m.train();
  const logits = m.forward(x);
  const loss = crossEntropy(logits, y);
  expectClose(await read(logits), fx.f32('train.logits'), { ...tol.logits, what: 'train.logits' });
  expectClose(await read(loss), fx.f32('train.loss'), { ...tol.logits, what: 'train.loss' });
  backward(loss);
  for (const [n, p] of m.namedParameters()) {
    expect(p.grad, `grad of ${n}`).not.toBeNull();
    expectClose(await read(p.grad!), fx.f32(`grad.${n}`), { ...tol.grads, what: `grad.${n}` });
  }
  for (const [n, b] of m.namedBuffers()) {
    if (n.includes('running')) expectClose(await read(b), fx.f32(`after.${n}`), { atol: 1e-5, rtol: 1e-4, what: `after.${n}` });
  }
  const opt = new SGD(m.parameters(), { lr: 0.1 });
  opt.step();
  m.eval();
  const after = noGrad(() => m.forward(x));
  expectClose(await read(after), fx.f32('step.logits'), { ...tol.logits, what: 'step.logits' });
  for (const t of [x, y, logits, loss, after]) t.dispose();
  opt.dispose();
}
