/**
 * WideResNet (Zagoruyko & Komodakis) exactly as the Outlier Exposure code builds it
 * (hendrycks/outlier-exposure CIFAR/models/wrn.py; pytorch-ood's `WideResNet` is the same module
 * tree), so a PyTorch state_dict maps one-to-one onto `stateDict()`:
 *
 *   conv1                               3x3, 3 -> 16
 *   block1 / block2 / block3            NetworkBlock, each with a Sequential `layer` of
 *                                       n = (depth - 4) / 6 BasicBlocks, widths 16k, 32k, 64k
 *                                       (k = widen factor), strides 1, 2, 2
 *   bn1, relu                           final pre-activation
 *   fc                                  Linear(64k, classes)
 *
 * BasicBlock (pre-activation): bn1 -> relu -> conv1 (3x3, stride) -> bn2 -> relu -> dropout ->
 * conv2 (3x3), plus a shortcut. With equal in/out widths (`equalInOut`) the shortcut is the block's
 * input; otherwise it is the 1x1 strided `convShortcut` applied to relu(bn1(x)), the same
 * activation that feeds conv1 (wrn.py overwrites x with it). Convolutions have no bias.
 *
 * Every ReLU follows a BatchNorm2d and runs inside its kernels (bn.forward(x, 'relu'): one dispatch
 * fewer each way per BN, bench/NOTES.md issue 19); the ReLU modules stay in the tree as wrn.py has
 * them (no state, so state dicts are unchanged).
 *
 * The head is F.avg_pool2d(out, 8) followed by view(-1, C): for 32x32 inputs the final 8x8 maps
 * pool to 1x1 (inputs whose final maps do not pool to 1x1 are refused instead of being reshaped
 * into nonsense as view(-1, C) would).
 *
 * Initialisation as wrn.py: every conv weight ~ N(0, 2 / (kH * kW * out_channels)), BN weight 1 and
 * bias 0, Linear bias 0 (the Linear weight keeps PyTorch's default init). WRN-40-2 with 10 classes
 * has 2,243,546 parameters.
 */
import type { Tensor } from '../engine/api.ts';
import { OpError } from '../engine/api.ts';
import { add } from '../engine/api.ts';
import { dropout } from '../engine/api.ts';
import { avgPool2d } from '../engine/api.ts';
import { reshape } from '../engine/api.ts';
import { Module, type UnaryModule } from '../engine/api.ts';
import { Linear, Sequential, ReLU } from '../engine/api.ts';
import { normal_, ones_, zeros_ } from '../engine/api.ts';
import { Conv2d } from '../engine/api.ts';
import { BatchNorm2d } from '../engine/api.ts';

/** Pre-activation basic block of wrn.py (names bn1, relu1, conv1, bn2, relu2, conv2, convShortcut). */
export class BasicBlock extends Module implements UnaryModule {
  readonly inPlanes: number;
  readonly outPlanes: number;
  readonly stride: number;
  /** Dropout probability between the two convolutions (wrn.py's droprate; F.dropout). */
  dropRate: number;
  readonly equalInOut: boolean;
  readonly bn1: BatchNorm2d;
  readonly relu1: ReLU;
  readonly conv1: Conv2d;
  readonly bn2: BatchNorm2d;
  readonly relu2: ReLU;
  readonly conv2: Conv2d;
  readonly convShortcut: Conv2d | null;

  constructor(inPlanes: number, outPlanes: number, stride: number, dropRate = 0) {
    super();
    this.inPlanes = inPlanes;
    this.outPlanes = outPlanes;
    this.stride = stride;
    this.dropRate = dropRate;
    this.equalInOut = inPlanes === outPlanes;
    this.bn1 = this.registerModule('bn1', new BatchNorm2d(inPlanes));
    this.relu1 = this.registerModule('relu1', new ReLU());
    this.conv1 = this.registerModule('conv1', new Conv2d(inPlanes, outPlanes, 3, { stride, padding: 1, bias: false }));
    this.bn2 = this.registerModule('bn2', new BatchNorm2d(outPlanes));
    this.relu2 = this.registerModule('relu2', new ReLU());
    this.conv2 = this.registerModule('conv2', new Conv2d(outPlanes, outPlanes, 3, { stride: 1, padding: 1, bias: false }));
    this.convShortcut = this.registerModule(
      'convShortcut',
      this.equalInOut ? null : new Conv2d(inPlanes, outPlanes, 1, { stride, padding: 0, bias: false }),
    );
  }

  forward(x: Tensor): Tensor {
    const o = this.bn1.forward(x, 'relu');
    const c1 = this.conv1.forward(o);
    let h = this.bn2.forward(c1, 'relu');
    c1.dispose();
    if (this.dropRate > 0) {
      const d = dropout(h, this.dropRate, this.training);
      if (d !== h) h.dispose();
      h = d;
    }
    const c2 = this.conv2.forward(h);
    h.dispose();
    let out: Tensor;
    if (this.convShortcut) {
      const sc = this.convShortcut.forward(o);
      out = add(sc, c2);
      sc.dispose();
    } else {
      out = add(x, c2);
    }
    o.dispose();
    c2.dispose();
    return out;
  }
}

/** A stage of n blocks in a Sequential named `layer` (wrn.py's NetworkBlock). */
export class NetworkBlock extends Module implements UnaryModule {
  readonly layer: Sequential;

  constructor(nbLayers: number, inPlanes: number, outPlanes: number, stride: number, dropRate = 0) {
    super();
    const blocks: BasicBlock[] = [];
    for (let i = 0; i < nbLayers; i++) blocks.push(new BasicBlock(i === 0 ? inPlanes : outPlanes, outPlanes, i === 0 ? stride : 1, dropRate));
    this.layer = this.registerModule('layer', new Sequential(...blocks));
  }

  forward(x: Tensor): Tensor {
    return this.layer.forward(x);
  }
}

export interface WideResNetOptions {
  /** Total depth; (depth - 4) must be a multiple of 6. Default 40. */
  depth?: number;
  /** Widen factor k (widths 16k, 32k, 64k). Default 2. */
  widenFactor?: number;
  /** Dropout between the convolutions of every block. Default 0.3 (the paper's WRN-40-2). */
  dropRate?: number;
  /** Input planes (pytorch-ood's in_channels; 1 for grey images). Default 3. */
  inChannels?: number;
  /**
   * The head's pooling: 'avg8' is wrn.py's avg_pool2d(out, 8) (32x32 inputs); 'global' averages
   * the whole final map, for other input sizes (28x28 gives 7x7 maps, which avg_pool2d(8) refuses).
   */
  pooling?: 'avg8' | 'global';
}

export class WideResNet extends Module implements UnaryModule {
  readonly depth: number;
  readonly widenFactor: number;
  readonly numClasses: number;
  readonly inChannels: number;
  readonly pooling: 'avg8' | 'global';
  /** Channel widths [16, 16k, 32k, 64k] (wrn.py's nChannels). */
  readonly nChannels: readonly number[];
  readonly conv1: Conv2d;
  readonly block1: NetworkBlock;
  readonly block2: NetworkBlock;
  readonly block3: NetworkBlock;
  readonly bn1: BatchNorm2d;
  readonly relu: ReLU;
  readonly fc: Linear;

  constructor(numClasses: number, opts: WideResNetOptions = {}) {
    super();
    const depth = opts.depth ?? 40;
    const k = opts.widenFactor ?? 2;
    const p = opts.dropRate ?? 0.3;
    if (!Number.isInteger(depth) || depth < 10 || (depth - 4) % 6 !== 0) {
      throw new OpError('WideResNet', `depth must be 6n + 4 with n >= 1 (10, 16, 22, 28, 40, ...), got ${depth}`);
    }
    if (!Number.isInteger(k) || k < 1) throw new OpError('WideResNet', `widenFactor must be a positive integer, got ${k}`);
    if (!Number.isInteger(numClasses) || numClasses < 1) throw new OpError('WideResNet', `numClasses must be a positive integer, got ${numClasses}`);
    if (!(p >= 0 && p < 1)) throw new OpError('WideResNet', `dropRate must be in [0, 1), got ${p}`);
    const cin = opts.inChannels ?? 3;
    if (!Number.isInteger(cin) || cin < 1) throw new OpError('WideResNet', `inChannels must be a positive integer, got ${cin}`);
    this.inChannels = cin;
    this.pooling = opts.pooling ?? 'avg8';
    this.depth = depth;
    this.widenFactor = k;
    this.numClasses = numClasses;
    const ch = [16, 16 * k, 32 * k, 64 * k];
    this.nChannels = ch;
    const n = (depth - 4) / 6;
    this.conv1 = this.registerModule('conv1', new Conv2d(cin, ch[0], 3, { stride: 1, padding: 1, bias: false }));
    this.block1 = this.registerModule('block1', new NetworkBlock(n, ch[0], ch[1], 1, p));
    this.block2 = this.registerModule('block2', new NetworkBlock(n, ch[1], ch[2], 2, p));
    this.block3 = this.registerModule('block3', new NetworkBlock(n, ch[2], ch[3], 2, p));
    this.bn1 = this.registerModule('bn1', new BatchNorm2d(ch[3]));
    this.relu = this.registerModule('relu', new ReLU());
    this.fc = this.registerModule('fc', new Linear(ch[3], numClasses));
    this.resetParameters();
  }

  /** wrn.py's initialisation (conv N(0, 2 / (kH kW out)), BN 1/0, Linear bias 0). */
  resetParameters(): void {
    for (const m of this.modules()) {
      if (m instanceof Conv2d) {
        const [kh, kw] = m.kernelSize;
        normal_(m.weight, 0, Math.sqrt(2 / (kh * kw * m.outChannels)));
      } else if (m instanceof BatchNorm2d) {
        if (m.weight) ones_(m.weight);
        if (m.bias) zeros_(m.bias);
      } else if (m instanceof Linear) {
        if (m.bias) zeros_(m.bias);
      }
    }
  }

  /** Every BasicBlock's dropout probability (e.g. 0 for a deterministic check). */
  setDropRate(p: number): void {
    if (!(p >= 0 && p < 1)) throw new OpError('WideResNet', `dropRate must be in [0, 1), got ${p}`);
    for (const m of this.modules()) if (m instanceof BasicBlock) m.dropRate = p;
  }

  /** The last feature maps [N, 64k, H/4, W/4] before pooling: relu(bn1(blocks(conv1(x))))
   * (pytorch-ood's intermediate_forward). */
  intermediateForward(x: Tensor): Tensor {
    if (x.rank !== 4 || x.shape[1] !== this.inChannels) {
      throw new OpError('WideResNet', `input must be [N, ${this.inChannels}, H, W], got [${x.shape.join(', ')}]`);
    }
    const c = this.conv1.forward(x);
    const b1 = this.block1.forward(c);
    c.dispose();
    const b2 = this.block2.forward(b1);
    b1.dispose();
    const b3 = this.block3.forward(b2);
    b2.dispose();
    const r = this.bn1.forward(b3, 'relu');
    b3.dispose();
    return r;
  }

  /** Penultimate features [N, 64k]: intermediateForward(x), average pooled (the input of fc). */
  features(x: Tensor): Tensor {
    if (x.rank !== 4 || x.shape[1] !== this.inChannels) {
      throw new OpError('WideResNet', `input must be [N, ${this.inChannels}, H, W], got [${x.shape.join(', ')}]`);
    }
    // two 3x3 stride-2 padding-1 stages: s -> floor((s - 1) / 2) + 1
    const down = (s: number) => Math.floor((s - 1) / 2) + 1;
    const [fh, fw] = [down(down(x.shape[2])), down(down(x.shape[3]))];
    if (this.pooling === 'avg8' && (Math.floor(fh / 8) !== 1 || Math.floor(fw / 8) !== 1)) {
      throw new OpError(
        'WideResNet',
        `input [${x.shape.join(', ')}] gives ${fh}x${fw} final feature maps; avg_pool2d(8) must reduce them to 1x1 (32x32 inputs give 8x8; pooling 'global' takes any size)`,
      );
    }
    const r = this.intermediateForward(x);
    const [N, C] = r.shape;
    const pooled = avgPool2d(r, this.pooling === 'avg8' ? 8 : [fh, fw]);
    r.dispose();
    const f = reshape(pooled, [N, C]);
    pooled.dispose();
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

/** WRN-40-2 with dropout 0.3, the paper's CIFAR classifier. */
export function wrn40x2(numClasses: number, dropRate = 0.3): WideResNet {
  return new WideResNet(numClasses, { depth: 40, widenFactor: 2, dropRate });
}
