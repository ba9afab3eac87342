/**
 * ResNet (He et al.) with torchvision's module tree and state_dict names (torchvision 0.14
 * models/resnet.py), so torchvision's resnet18/34/50/101/152 checkpoints load one-to-one:
 *
 *   conv1 (7x7, stride 2, padding 3, no bias), bn1, relu, maxpool (3x3, stride 2, padding 1)
 *   layer1..layer4   Sequential of blocks; the first block of layer2..4 has stride 2, and a block
 *                    whose input differs in width or stride has downsample = Sequential(
 *                    0: conv 1x1 with the stride, no bias; 1: BatchNorm2d)
 *   avgpool (global average), fc Linear(512 * expansion, classes)
 *
 * BasicBlock (expansion 1): conv1 3x3 (stride) -> bn1 -> relu -> conv2 3x3 -> bn2, + identity,
 * relu. Bottleneck (expansion 4, "ResNet v1.5": the stride is on the 3x3): conv1 1x1 -> bn1 ->
 * relu -> conv2 3x3 (stride) -> bn2 -> relu -> conv3 1x1 -> bn3, + identity, relu.
 *
 * BatchNorm follows the module's mode: batch statistics and running-statistic updates in train(),
 * the running statistics in eval() (PyTorch's semantics).
 *
 * Initialisation as torchvision: conv weights kaiming_normal(fan_out, relu), BN weight 1 / bias 0,
 * fc PyTorch's Linear default; `zeroInitResidual` zeroes the last BN weight of every block.
 */
import {
  OpError, Module, Linear, Conv2d, BatchNorm2d, Sequential, type Tensor, type UnaryModule,
  add, relu, maxPool2d, globalAvgPool2d, kaimingNormal_, ones_, zeros_,
} from '../engine/api.ts';

function conv(cin: number, cout: number, k: number, stride: number): Conv2d {
  return new Conv2d(cin, cout, k, { stride, padding: (k - 1) / 2, bias: false });
}

/** downsample = Sequential(conv1x1(stride), BatchNorm2d) when the shortcut changes shape. */
function downsample(cin: number, cout: number, stride: number): Sequential | null {
  return stride !== 1 || cin !== cout ? new Sequential(conv(cin, cout, 1, stride), new BatchNorm2d(cout)) : null;
}

function residual(out: Tensor, x: Tensor, ds: Sequential | null): Tensor {
  const id = ds ? ds.forward(x) : x;
  const s = add(out, id);
  if (id !== x) id.dispose();
  const r = relu(s);
  s.dispose();
  return r;
}

/** conv -> bn (-> relu), freeing the intermediates. */
function convBn(c: Conv2d, bn: BatchNorm2d, x: Tensor, act: boolean): Tensor {
  const h = c.forward(x);
  const b = bn.forward(h);
  h.dispose();
  if (!act) return b;
  const r = relu(b);
  b.dispose();
  return r;
}

export class ResNetBasicBlock extends Module implements UnaryModule {
  static readonly expansion = 1;
  readonly conv1: Conv2d;
  readonly bn1: BatchNorm2d;
  readonly conv2: Conv2d;
  readonly bn2: BatchNorm2d;
  readonly downsample: Sequential | null;

  constructor(inplanes: number, planes: number, stride = 1) {
    super();
    this.conv1 = this.registerModule('conv1', conv(inplanes, planes, 3, stride));
    this.bn1 = this.registerModule('bn1', new BatchNorm2d(planes));
    this.conv2 = this.registerModule('conv2', conv(planes, planes, 3, 1));
    this.bn2 = this.registerModule('bn2', new BatchNorm2d(planes));
    this.downsample = this.registerModule('downsample', downsample(inplanes, planes, stride));
  }

  /** The BN whose weight zero_init_residual zeroes. */
  get lastBn(): BatchNorm2d {
    return this.bn2;
  }

  forward(x: Tensor): Tensor {
    const a = convBn(this.conv1, this.bn1, x, true);
    const b = convBn(this.conv2, this.bn2, a, false);
    a.dispose();
    const out = residual(b, x, this.downsample);
    b.dispose();
    return out;
  }
}

export class ResNetBottleneck extends Module implements UnaryModule {
  static readonly expansion = 4;
  readonly conv1: Conv2d;
  readonly bn1: BatchNorm2d;
  readonly conv2: Conv2d;
  readonly bn2: BatchNorm2d;
  readonly conv3: Conv2d;
  readonly bn3: BatchNorm2d;
  readonly downsample: Sequential | null;

  constructor(inplanes: number, planes: number, stride = 1) {
    super();
    const width = planes; // groups 1, base width 64
    this.conv1 = this.registerModule('conv1', conv(inplanes, width, 1, 1));
    this.bn1 = this.registerModule('bn1', new BatchNorm2d(width));
    this.conv2 = this.registerModule('conv2', conv(width, width, 3, stride));
    this.bn2 = this.registerModule('bn2', new BatchNorm2d(width));
    this.conv3 = this.registerModule('conv3', conv(width, planes * 4, 1, 1));
    this.bn3 = this.registerModule('bn3', new BatchNorm2d(planes * 4));
    this.downsample = this.registerModule('downsample', downsample(inplanes, planes * 4, stride));
  }

  get lastBn(): BatchNorm2d {
    return this.bn3;
  }

  forward(x: Tensor): Tensor {
    const a = convBn(this.conv1, this.bn1, x, true);
    const b = convBn(this.conv2, this.bn2, a, true);
    a.dispose();
    const c = convBn(this.conv3, this.bn3, b, false);
    b.dispose();
    const out = residual(c, x, this.downsample);
    c.dispose();
    return out;
  }
}

export type ResNetBlockKind = 'basic' | 'bottleneck';

export interface ResNetOptions {
  numClasses?: number;
  /** Channels of the first stage (64 in torchvision); later stages double it. Reduced-size tests use less. */
  baseWidth?: number;
  inChannels?: number;
  zeroInitResidual?: boolean;
}

export const RESNET_PRESETS: Record<string, { block: ResNetBlockKind; layers: [number, number, number, number] }> = {
  resnet18: { block: 'basic', layers: [2, 2, 2, 2] },
  resnet34: { block: 'basic', layers: [3, 4, 6, 3] },
  resnet50: { block: 'bottleneck', layers: [3, 4, 6, 3] },
  resnet101: { block: 'bottleneck', layers: [3, 4, 23, 3] },
  resnet152: { block: 'bottleneck', layers: [3, 8, 36, 3] },
};

export class ResNet extends Module implements UnaryModule {
  readonly block: ResNetBlockKind;
  readonly numClasses: number;
  readonly inChannels: number;
  readonly conv1: Conv2d;
  readonly bn1: BatchNorm2d;
  readonly layer1: Sequential;
  readonly layer2: Sequential;
  readonly layer3: Sequential;
  readonly layer4: Sequential;
  readonly fc: Linear;

  constructor(block: ResNetBlockKind, layers: readonly number[], opts: ResNetOptions = {}) {
    super();
    const classes = opts.numClasses ?? 1000;
    const base = opts.baseWidth ?? 64;
    const cin = opts.inChannels ?? 3;
    if (block !== 'basic' && block !== 'bottleneck') throw new OpError('ResNet', `block must be 'basic' or 'bottleneck', got '${String(block)}'`);
    if (layers.length !== 4 || !layers.every((n) => Number.isInteger(n) && n >= 1)) {
      throw new OpError('ResNet', `layers must be four positive integers (blocks per stage), got [${layers.join(', ')}]`);
    }
    for (const [n, v] of [['numClasses', classes], ['baseWidth', base], ['inChannels', cin]] as const) {
      if (!Number.isInteger(v) || v < 1) throw new OpError('ResNet', `${n} must be a positive integer, got ${v}`);
    }
    this.block = block;
    this.numClasses = classes;
    this.inChannels = cin;
    const expansion = block === 'basic' ? 1 : 4;
    const make = (inp: number, planes: number, stride: number) =>
      block === 'basic' ? new ResNetBasicBlock(inp, planes, stride) : new ResNetBottleneck(inp, planes, stride);
    this.conv1 = this.registerModule('conv1', new Conv2d(cin, base, 7, { stride: 2, padding: 3, bias: false }));
    this.bn1 = this.registerModule('bn1', new BatchNorm2d(base));
    let inplanes = base;
    const stage = (planes: number, n: number, stride: number): Sequential => {
      const s = new Sequential();
      for (let i = 0; i < n; i++) {
        s.append(make(inplanes, planes, i === 0 ? stride : 1));
        inplanes = planes * expansion;
      }
      return s;
    };
    this.layer1 = this.registerModule('layer1', stage(base, layers[0], 1));
    this.layer2 = this.registerModule('layer2', stage(base * 2, layers[1], 2));
    this.layer3 = this.registerModule('layer3', stage(base * 4, layers[2], 2));
    this.layer4 = this.registerModule('layer4', stage(base * 8, layers[3], 2));
    this.fc = this.registerModule('fc', new Linear(base * 8 * expansion, classes));
    for (const m of this.modules()) {
      if (m instanceof Conv2d) kaimingNormal_(m.weight, { mode: 'fan_out', nonlinearity: 'relu' });
      else if (m instanceof BatchNorm2d) {
        ones_(m.weight!);
        zeros_(m.bias!);
      }
    }
    if (opts.zeroInitResidual) {
      for (const m of this.modules()) if (m instanceof ResNetBasicBlock || m instanceof ResNetBottleneck) zeros_(m.lastBn.weight!);
    }
  }

  /** Pooled features [N, 512 * expansion] (the input of fc). */
  features(x: Tensor): Tensor {
    if (x.rank !== 4 || x.shape[1] !== this.inChannels) throw new OpError('ResNet', `input must be [N, ${this.inChannels}, H, W], got [${x.shape.join(', ')}]`);
    const a = convBn(this.conv1, this.bn1, x, true);
    let h = maxPool2d(a, 3, { stride: 2, padding: 1 });
    a.dispose();
    for (const layer of [this.layer1, this.layer2, this.layer3, this.layer4]) {
      const next = layer.forward(h);
      h.dispose();
      h = next;
    }
    const f = globalAvgPool2d(h, false);
    h.dispose();
    return f;
  }

  /** Logits [N, classes]. */
  forward(x: Tensor): Tensor {
    const f = this.features(x);
    const y = this.fc.forward(f);
    f.dispose();
    return y;
  }
}

/** A torchvision ResNet by name (resnet18, resnet34, resnet50, resnet101, resnet152). */
export function resnet(name: keyof typeof RESNET_PRESETS | string, opts: ResNetOptions = {}): ResNet {
  const p = RESNET_PRESETS[name];
  if (!p) throw new OpError('ResNet', `unknown ResNet '${name}' (one of ${Object.keys(RESNET_PRESETS).join(', ')})`);
  return new ResNet(p.block, p.layers, opts);
}

export const resnet18 = (opts: ResNetOptions = {}): ResNet => resnet('resnet18', opts);
export const resnet50 = (opts: ResNetOptions = {}): ResNet => resnet('resnet50', opts);
export const resnet101 = (opts: ResNetOptions = {}): ResNet => resnet('resnet101', opts);
