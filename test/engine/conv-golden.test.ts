/**
 * PyTorch goldens (scripts/fixtures/torch_conv_blocks.py, CPU float32): a pre-activation WRN
 * block and a BigGAN generator block, loaded by PyTorch's parameter names, forward and backward
 * in training mode, the state after the step (running statistics, spectral-norm vectors), and an
 * evaluation forward.
 */
import { describe, it, expect, beforeAll } from 'vitest';
import { readFileSync } from 'node:fs';
import { engine, read } from '../helpers/gpu.ts';
import { expectClose } from '../helpers/reference.ts';
import {
  Module, Conv2d, BatchNorm2d, ConditionalBatchNorm2d, spectralNorm, parseSafetensors, relu, add, mul, upsampleNearest2d, backward, tensor,
  type Tensor, type HostTensor, type SafeTensor,
} from '../../src/engine/index.ts';

beforeAll(async () => {
  await engine();
});

function load(name: string): Map<string, SafeTensor> {
  // a plain Uint8Array copy: parseSafetensors slices its input, and Buffer.slice is a view
  return parseSafetensors(new Uint8Array(readFileSync(new URL(`../fixtures/conv/${name}`, import.meta.url)))).tensors;
}

function section(f: Map<string, SafeTensor>, prefix: string): Map<string, HostTensor> {
  const out = new Map<string, HostTensor>();
  for (const [k, v] of f) if (k.startsWith(prefix)) out.set(k.slice(prefix.length), { shape: v.shape, data: v.data as HostTensor['data'] });
  return out;
}

function f32(f: Map<string, SafeTensor>, key: string, requiresGrad = false): Tensor {
  const v = f.get(key);
  if (!v) throw new Error(`fixture has no ${key}`);
  const t = tensor(v.data as Float32Array, v.shape);
  t.requiresGrad = requiresGrad;
  return t;
}

const TOL = { atol: 1e-4, rtol: 1e-3 };

async function checkAfterStep(m: Module, f: Map<string, SafeTensor>): Promise<void> {
  // gradients by PyTorch's parameter names, then the state after the step
  const grads = section(f, 'grad.');
  const params = m.namedParameters();
  expect(params.map(([n]) => n).sort()).toEqual([...grads.keys()].filter((k) => k !== 'x').sort());
  for (const [name, p] of params) expectClose(await read(p.grad!), grads.get(name)!.data as Float32Array, { ...TOL, what: `grad ${name}` });
  const after = section(f, 'after.');
  const state = m.stateDict();
  expect([...state.keys()].sort()).toEqual([...after.keys()].sort());
  for (const [name, t] of state) {
    const want = Array.from(after.get(name)!.data as ArrayLike<number | bigint>, Number);
    expectClose(Array.from(await t.data()), want, { atol: 1e-5, rtol: 1e-4, what: `state ${name} after the step` });
  }
}

class WrnBlock extends Module {
  readonly bn1 = this.registerModule('bn1', new BatchNorm2d(5));
  readonly conv1 = this.registerModule('conv1', new Conv2d(5, 8, 3, { stride: 2, padding: 1, bias: false }));
  readonly bn2 = this.registerModule('bn2', new BatchNorm2d(8));
  readonly conv2 = this.registerModule('conv2', new Conv2d(8, 8, 3, { padding: 1, bias: false }));
  readonly convShortcut = this.registerModule('convShortcut', new Conv2d(5, 8, 1, { stride: 2, padding: 0, bias: false }));
  readonly dropRate = 0.3;

  /** `keep`: the fixture's dropout keep-mask (PyTorch's generator is not ours). */
  forward(x: Tensor, keep: Tensor): Tensor {
    const o = relu(this.bn1.forward(x));
    const sc = this.convShortcut.forward(o);
    let out = relu(this.bn2.forward(this.conv1.forward(o)));
    if (this.training) out = mul(mul(out, keep), 1 / (1 - this.dropRate));
    out = this.conv2.forward(out);
    return add(sc, out);
  }
}

class GBlock extends Module {
  readonly conv1 = this.registerModule('conv1', spectralNorm(new Conv2d(6, 5, 3, { padding: 1 })));
  readonly conv2 = this.registerModule('conv2', spectralNorm(new Conv2d(5, 5, 3, { padding: 1 })));
  readonly conv_sc = this.registerModule('conv_sc', spectralNorm(new Conv2d(6, 5, 1)));
  readonly bn1 = this.registerModule('bn1', new ConditionalBatchNorm2d(6, 4));
  readonly bn2 = this.registerModule('bn2', new ConditionalBatchNorm2d(5, 4));

  forward(x: Tensor, y: Tensor): Tensor {
    let h = relu(this.bn1.forward(x, y));
    h = upsampleNearest2d(h, 2);
    const xu = upsampleNearest2d(x, 2);
    h = this.conv1.forward(h);
    h = relu(this.bn2.forward(h, y));
    h = this.conv2.forward(h);
    return add(h, this.conv_sc.forward(xu));
  }
}

describe('PyTorch goldens', () => {
  it('pre-activation WRN block (BN-ReLU-conv-BN-ReLU-dropout-conv, 1x1 strided shortcut)', async () => {
    const f = load('wrn_block.safetensors');
    const block = new WrnBlock();
    block.loadStateDict(section(f, 'param.'));
    const x = f32(f, 'input.x', true);
    const keep = f32(f, 'input.keep_mask');
    const y = block.forward(x, keep);
    expectClose(await read(y), f.get('train.y')!.data as Float32Array, { ...TOL, what: 'training forward' });
    backward(y, f32(f, 'input.gy'));
    expectClose(await read(x.grad!), f.get('grad.x')!.data as Float32Array, { ...TOL, what: 'grad x' });
    await checkAfterStep(block, f);
    block.eval();
    const ye = block.forward(f32(f, 'input.x'), keep);
    expectClose(await read(ye), f.get('eval.y')!.data as Float32Array, { ...TOL, what: 'evaluation forward' });
    block.dispose();
  });

  it('BigGAN generator block (conditional BN, upsample, spectral-norm convs)', async () => {
    const f = load('biggan_gblock.safetensors');
    const block = new GBlock();
    block.loadStateDict(section(f, 'param.'));
    const x = f32(f, 'input.x', true);
    const cls = tensor(f.get('input.classes')!.data as Int32Array, [3], 'i32');
    const y = block.forward(x, cls);
    expectClose(await read(y), f.get('train.y')!.data as Float32Array, { ...TOL, what: 'training forward' });
    backward(y, f32(f, 'input.gy'));
    expectClose(await read(x.grad!), f.get('grad.x')!.data as Float32Array, { ...TOL, what: 'grad x' });
    await checkAfterStep(block, f);
    block.eval();
    const ye = block.forward(f32(f, 'input.x'), cls);
    expectClose(await read(ye), f.get('eval.y')!.data as Float32Array, { ...TOL, what: 'evaluation forward' });
    block.dispose();
  });
});

describe('layer modules', () => {
  it('Conv2d and BatchNorm2d have PyTorch names, shapes and initial values', async () => {
    const conv = new Conv2d(6, 10, [3, 2], { groups: 2 });
    expect([...conv.stateDict()].map(([k, t]) => [k, t.shape])).toEqual([['weight', [10, 3, 3, 2]], ['bias', [10]]]);
    // kaiming_uniform(a=sqrt(5)) and the bias both give U(-1/sqrt(fan_in), 1/sqrt(fan_in)), fan_in = 3*3*2
    const bound = 1 / Math.sqrt(18);
    for (const t of [conv.weight, conv.bias!]) {
      const v = Array.from(await t.data());
      expect(Math.max(...v.map(Math.abs))).toBeLessThanOrEqual(bound);
      expect(new Set(v).size).toBe(v.length);
    }
    const bn = new BatchNorm2d(4);
    expect([...bn.stateDict().keys()]).toEqual(['weight', 'bias', 'running_mean', 'running_var', 'num_batches_tracked']);
    expectClose(Array.from(await bn.getBuffer('running_var')!.data()), [1, 1, 1, 1], { atol: 0, rtol: 0 });
    const sn = spectralNorm(new Conv2d(3, 4, 3));
    expect([...sn.stateDict().keys()]).toEqual(['bias', 'weight_orig', 'weight_u', 'weight_v']);
    const u = Array.from(await sn.getBuffer('weight_u')!.data());
    expect(Math.hypot(...u)).toBeCloseTo(1, 5);
    for (const m of [conv, bn, sn]) m.dispose();
  });
});
