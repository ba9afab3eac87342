/**
 * The model-level test: a small MLP (8 -> 32 -> ReLU -> 3) trained with SGD (momentum 0.9,
 * Nesterov, weight decay 1e-4, lr 0.1) and with Adam (lr 0.01) on a seeded synthetic 3-class
 * task, from the initial weights and on the batches that scripts/fixtures/torch_mlp.py wrote with
 * PyTorch into test/fixtures/mlp/mlp.safetensors, together with PyTorch's per-step losses and
 * final weights.
 *
 * Stated tolerances (float32 on both sides, different summation orders, 60 steps):
 *  - every step's loss within 1e-4 relative (+1e-6 absolute) of PyTorch's (measured on lavapipe:
 *    worst 8e-7 for SGD, 1e-5 for Adam);
 *  - final weights within 1e-4 absolute + 1e-3 relative of PyTorch's;
 *  - evaluation accuracy on 200 held-out samples >= 85%, and within one sample of PyTorch's.
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { engine, read } from '../helpers/gpu.ts';
import { expectClose } from '../helpers/reference.ts';
import {
  Sequential, Linear, ReLU, SGD, Adam, crossEntropy, backward, scope, keep, noGrad, tensor, argmax, loadSafetensorsFile,
  releaseParameterArena, type SafetensorsFile, type SafeTensor, type Tensor, type Optimizer,
} from '../../src/engine/index.ts';

const FIXTURE = join(dirname(fileURLToPath(import.meta.url)), '..', 'fixtures', 'mlp', 'mlp.safetensors');
const LOSS_RTOL = 1e-4;
const LOSS_ATOL = 1e-6;

let fx: SafetensorsFile;
beforeAll(async () => {
  await engine();
  fx = await loadSafetensorsFile(FIXTURE);
});
afterAll(() => releaseParameterArena());

function get(name: string): SafeTensor {
  const t = fx.tensors.get(name);
  if (!t) throw new Error(`fixture lacks ${name}`);
  return t;
}

function labels(t: SafeTensor): Int32Array {
  return Int32Array.from(t.data as BigInt64Array, Number);
}

function makeModel(): Sequential {
  const m = new Sequential(new Linear(8, 32), new ReLU(), new Linear(32, 3));
  const init = new Map<string, SafeTensor>();
  for (const [k, v] of fx.tensors) if (k.startsWith('init.')) init.set(k.slice(5), v);
  m.loadStateDict(init as Map<string, { shape: number[]; data: Float32Array }>);
  return m;
}

async function evalAccuracy(model: Sequential): Promise<number> {
  const x = get('eval.x');
  const y = labels(get('eval.y'));
  const pred = noGrad(() =>
    scope(() => {
      const xt = tensor(x.data as Float32Array, x.shape);
      return argmax(model.forward(xt), 1);
    }),
  );
  const p = await pred.data();
  pred.dispose();
  let ok = 0;
  for (let i = 0; i < y.length; i++) if (p[i] === y[i]) ok++;
  return ok / y.length;
}

async function train(name: 'sgd' | 'adam', makeOpt: (m: Sequential) => Optimizer<any>): Promise<void> {
  const model = makeModel();
  const opt = makeOpt(model);
  const xs = get('batches.x');
  const ys = labels(get('batches.y'));
  const [steps, batch, features] = xs.shape;
  const xData = xs.data as Float32Array;
  const losses: Tensor[] = [];
  for (let s = 0; s < steps; s++) {
    const loss = scope(() => {
      const x = tensor(xData.subarray(s * batch * features, (s + 1) * batch * features), [batch, features]);
      const y = tensor(ys.subarray(s * batch, (s + 1) * batch), [batch], 'i32');
      opt.zeroGrad();
      const l = crossEntropy(model.forward(x), y);
      backward(l);
      opt.step();
      return l;
    });
    losses.push(keep(loss));
  }
  const ours = await Promise.all(losses.map((l) => l.item()));
  losses.forEach((l) => l.dispose());
  const golden = Array.from(get(`${name}.losses`).data as Float32Array);
  let worst = 0;
  ours.forEach((v, i) => (worst = Math.max(worst, Math.abs(v - golden[i]) / Math.abs(golden[i]))));
  console.log(`${name}: loss ${ours[0].toFixed(4)} -> ${ours[steps - 1].toFixed(4)} (PyTorch ${golden[steps - 1].toFixed(4)}), worst relative loss difference ${worst.toExponential(2)}`);
  expectClose(ours, golden, { rtol: LOSS_RTOL, atol: LOSS_ATOL, what: `${name} loss curve` });
  expect(ours[steps - 1]).toBeLessThan(0.25 * ours[0]);
  for (const [k, p] of model.stateDict()) {
    expectClose(await read(p), get(`${name}.final.${k}`).data as Float32Array, { atol: 1e-4, rtol: 1e-3, what: `${name} final ${k}` });
  }
  const acc = await evalAccuracy(model);
  const torchAcc = Number(fx.metadata[`${name}_eval_accuracy`]);
  console.log(`${name}: eval accuracy ${acc} (PyTorch ${torchAcc})`);
  expect(acc).toBeGreaterThanOrEqual(0.85);
  expect(Math.abs(acc - torchAcc)).toBeLessThanOrEqual(1 / 200 + 1e-9);
  opt.dispose();
  model.dispose();
}

describe('MLP trained against PyTorch golden curves', () => {
  it('the fixture is what the script wrote', () => {
    expect(get('batches.x').shape).toEqual([60, 32, 8]);
    expect(get('batches.y').dtype).toBe('I64');
    expect(JSON.parse(fx.metadata.sgd)).toEqual({ lr: 0.1, momentum: 0.9, nesterov: true, weight_decay: 1e-4 });
  });

  it('SGD (momentum 0.9, Nesterov, weight decay 1e-4): loss curve, final weights, accuracy', async () => {
    await train('sgd', (m) => new SGD(m.parameters(), { lr: 0.1, momentum: 0.9, nesterov: true, weightDecay: 1e-4 }));
  });

  it('Adam (lr 0.01): loss curve, final weights, accuracy', async () => {
    await train('adam', (m) => new Adam(m.parameters(), { lr: 0.01 }));
  });
});
