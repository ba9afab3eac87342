/**
 * BigGAN-PyTorch's layers (ajbrock/BigGAN-PyTorch layers.py) with its parameter and buffer names,
 * so a state_dict of its G or D loads one-to-one:
 *
 *   SNConv2d / SNLinear / SNEmbedding   weight, bias (not the embedding), buffers u0 [1, out], sv0 [1]
 *   ccbn                                gain, bias (nn.Embedding(classes, C) without G_shared, else
 *                                       SNLinear(shared_dim + z chunk, C, bias=False)); buffers
 *                                       stored_mean, stored_var
 *   bn                                  parameters gain, bias; buffers stored_mean, stored_var
 *   GBlock                              conv1, conv2, conv_sc, bn1, bn2 (that registration order)
 *   DBlock                              conv1, conv2, conv_sc
 *
 * Spectral norm follows BigGAN-PyTorch's SN class, which differs from torch.nn.utils.spectral_norm
 * (the engine's nn.spectralNorm) in its state and in evaluation:
 *   - only u is state (`u0`, [1, out], randn at construction, not normalised); v is recomputed
 *     from u at every forward: v = normalize(u W), u' = normalize(v W^T), sigma = v W^T u'^T;
 *   - the power iteration runs at every forward, in evaluation too; only training stores u' in u0
 *     and sigma in `sv0` (a logging buffer that is nevertheless in the state_dict and in the EMA);
 *   - eps (`SN_eps`) defaults to utils.py's 1e-8 (the class default is 1e-12).
 * The math of one step equals torch's (v = normalize(W^T u), u = normalize(W v), sigma = u.(W v)),
 * so the engine's spectralNormWeight kernel does it; the gradient treats u and v as constants in
 * both. num_svs = num_itrs = 1 (the CIFAR config); other values are not supported.
 */
import { keep, empty, type Tensor } from '../engine/api.ts';
import { noGrad } from '../engine/api.ts';
import { OpError } from '../engine/api.ts';
import { add, mul } from '../engine/api.ts';
import { relu } from '../engine/api.ts';
import { sum } from '../engine/api.ts';
import { reshape, copyInto, contiguousCopy } from '../engine/api.ts';
import { matmul, linear } from '../engine/api.ts';
import { conv2d } from '../engine/api.ts';
import { embedding } from '../engine/api.ts';
import { avgPool2d, upsampleNearest2d } from '../engine/api.ts';
import { batchNorm2d, conditionalBatchNorm2d } from '../engine/api.ts';
import { spectralNormWeight } from '../engine/api.ts';
import { randn } from '../engine/api.ts';
import { zeros, ones } from '../engine/api.ts';
import { Module, type UnaryModule } from '../engine/api.ts';
import { Parameter } from '../engine/api.ts';
import { Linear, Embedding } from '../engine/api.ts';
import { Conv2d } from '../engine/api.ts';

/** utils.py's --SN_eps default. */
export const BIGGAN_SN_EPS = 1e-8;

/** Registers SN's buffers u0 ([1, out], standard normal) and sv0 ([1], one). */
function registerSN(m: Module, numOutputs: number): void {
  m.registerBuffer('u0', keep(randn([1, numOutputs])));
  m.registerBuffer('sv0', keep(ones([1])));
}

/**
 * SN.W_(): W / sigma after one power iteration from u0. Training stores the new u in u0 and sigma
 * in sv0; evaluation iterates on a copy and leaves both alone.
 */
export function snWeight(m: Module, w: Parameter, eps: number): Tensor {
  const h = w.shape[0];
  const k = w.size / h;
  const u0 = m.getBuffer('u0')!;
  const sv0 = m.getBuffer('sv0')!;
  if (u0.offset !== 0 || !u0.isContiguous) throw new OpError('SN', `u0 of ${m.typeName} must be contiguous with its own storage`);
  const v = empty([k]);
  const uView = u0.view([h], [1], 0);
  const u = m.training ? uView : contiguousCopy(uView);
  const out = spectralNormWeight(w, u, v, { training: true, eps });
  if (m.training) {
    noGrad(() => {
      // sv0 = v W^T u^T with this step's u and v (what power_iteration returns)
      const wm = reshape(w, [h, k]);
      const vc = reshape(v, [k, 1]);
      const wv = matmul(wm, vc);
      const uc = reshape(u, [h, 1]);
      const p = mul(wv, uc);
      const s = sum(p);
      const s1 = reshape(s, [1]);
      copyInto(sv0, s1);
      for (const t of [wm, vc, wv, uc, p, s, s1]) t.dispose();
    });
  }
  if (u !== uView) u.dispose();
  uView.dispose();
  v.dispose();
  return out;
}

export interface SNConvOptions {
  padding?: number;
  eps?: number;
}

/** layers.SNConv2d (stride 1, bias): F.conv2d(x, W_(), bias). */
export class SNConv2d extends Conv2d {
  readonly snEps: number;
  readonly pad: number;
  constructor(inChannels: number, outChannels: number, kernelSize = 3, opts: SNConvOptions = {}) {
    const padding = opts.padding ?? (kernelSize === 3 ? 1 : 0);
    super(inChannels, outChannels, kernelSize, { padding, bias: true });
    this.pad = padding;
    this.snEps = opts.eps ?? BIGGAN_SN_EPS;
    registerSN(this, outChannels);
  }
  override forward(x: Tensor): Tensor {
    const w = snWeight(this, this.weight, this.snEps);
    const y = conv2d(x, w, this.bias, { padding: this.pad });
    w.dispose();
    return y;
  }
}

/** layers.SNLinear: F.linear(x, W_(), bias). */
export class SNLinear extends Linear {
  readonly snEps: number;
  constructor(inFeatures: number, outFeatures: number, bias = true, eps = BIGGAN_SN_EPS) {
    super(inFeatures, outFeatures, bias);
    this.snEps = eps;
    registerSN(this, outFeatures);
  }
  override forward(x: Tensor): Tensor {
    const w = snWeight(this, this.weight, this.snEps);
    const y = linear(x, w, this.bias ?? undefined);
    w.dispose();
    return y;
  }
}

/** layers.SNEmbedding: F.embedding(ids, W_()), u0 of length num_embeddings. */
export class SNEmbedding extends Embedding {
  readonly snEps: number;
  constructor(numEmbeddings: number, embeddingDim: number, eps = BIGGAN_SN_EPS) {
    super(numEmbeddings, embeddingDim);
    this.snEps = eps;
    registerSN(this, numEmbeddings);
  }
  override forward(ids: Tensor): Tensor {
    const w = snWeight(this, this.weight, this.snEps);
    const y = embedding(w, ids);
    w.dispose();
    return y;
  }
}

export interface NormOptions {
  eps?: number;
  momentum?: number;
}

/**
 * layers.ccbn (norm_style 'bn'): F.batch_norm without affine (stored_mean/stored_var, momentum
 * 0.1), then out * (1 + gain(y)) + bias(y). Without G_shared, gain and bias are nn.Embedding
 * tables indexed by class ids (y: i32 [N]); with G_shared they are SNLinear(inputSize, C,
 * bias=False) applied to the conditioning vector (y: f32 [N, inputSize]).
 */
export class CCBN extends Module {
  readonly outputSize: number;
  readonly inputSize: number;
  readonly shared: boolean;
  readonly eps: number;
  readonly momentum: number;
  readonly gain: Embedding | SNLinear;
  readonly bias: Embedding | SNLinear;

  constructor(outputSize: number, inputSize: number, shared: boolean, opts: NormOptions & { snEps?: number } = {}) {
    super();
    this.outputSize = outputSize;
    this.inputSize = inputSize;
    this.shared = shared;
    this.eps = opts.eps ?? 1e-5;
    this.momentum = opts.momentum ?? 0.1;
    const make = (): Embedding | SNLinear => (shared ? new SNLinear(inputSize, outputSize, false, opts.snEps) : new Embedding(inputSize, outputSize));
    this.gain = this.registerModule('gain', make());
    this.bias = this.registerModule('bias', make());
    this.registerBuffer('stored_mean', keep(zeros([outputSize])));
    this.registerBuffer('stored_var', keep(ones([outputSize])));
  }

  forward(x: Tensor, y: Tensor): Tensor {
    const opts = {
      training: this.training,
      runningMean: this.getBuffer('stored_mean'),
      runningVar: this.getBuffer('stored_var'),
      momentum: this.momentum,
      eps: this.eps,
    };
    if (!this.shared) {
      if (y.dtype !== 'i32') throw new OpError('ccbn', `without G_shared the conditioning is class ids (i32 [N]), got ${y.dtype} [${y.shape.join(', ')}]`);
      return conditionalBatchNorm2d(x, y, this.gain.weight, this.bias.weight, opts);
    }
    if (y.dtype !== 'f32' || y.rank !== 2 || y.shape[1] !== this.inputSize) {
      throw new OpError('ccbn', `with G_shared the conditioning is f32 [N, ${this.inputSize}], got ${y.dtype} [${y.shape.join(', ')}]`);
    }
    const g = this.gain.forward(y);
    const g1 = add(g, 1);
    const b = this.bias.forward(y);
    const out = batchNorm2d(x, g1, b, opts);
    for (const t of [g, g1, b]) t.dispose();
    return out;
  }
}

/** layers.bn: F.batch_norm with parameters gain (1) and bias (0), buffers stored_mean/stored_var. */
export class BigGANBN extends Module implements UnaryModule {
  readonly eps: number;
  readonly momentum: number;
  readonly gain: Parameter;
  readonly bias: Parameter;
  constructor(outputSize: number, opts: NormOptions = {}) {
    super();
    this.eps = opts.eps ?? 1e-5;
    this.momentum = opts.momentum ?? 0.1;
    this.gain = this.registerParameter('gain', fromFilled([outputSize], 1));
    this.bias = this.registerParameter('bias', fromFilled([outputSize], 0));
    this.registerBuffer('stored_mean', keep(zeros([outputSize])));
    this.registerBuffer('stored_var', keep(ones([outputSize])));
  }
  forward(x: Tensor): Tensor {
    return batchNorm2d(x, this.gain, this.bias, {
      training: this.training,
      runningMean: this.getBuffer('stored_mean'),
      runningVar: this.getBuffer('stored_var'),
      momentum: this.momentum,
      eps: this.eps,
    });
  }
}

function fromFilled(shape: number[], value: number): Parameter {
  const t = value === 0 ? zeros(shape) : ones(shape);
  const p = Parameter.from(t);
  t.dispose();
  return p;
}

/**
 * layers.GBlock with upsample = nearest x2:
 *   h = conv1(up(relu(bn1(x, y)))); h = conv2(relu(bn2(h, y))); out = h + conv_sc(up(x)).
 */
export class GBlock extends Module {
  readonly conv1: SNConv2d;
  readonly conv2: SNConv2d;
  readonly conv_sc: SNConv2d | null;
  readonly bn1: CCBN;
  readonly bn2: CCBN;
  readonly upsample: boolean;

  constructor(inChannels: number, outChannels: number, upsample: boolean, bn: (channels: number) => CCBN, snEps = BIGGAN_SN_EPS) {
    super();
    this.upsample = upsample;
    this.conv1 = this.registerModule('conv1', new SNConv2d(inChannels, outChannels, 3, { eps: snEps }));
    this.conv2 = this.registerModule('conv2', new SNConv2d(outChannels, outChannels, 3, { eps: snEps }));
    const learnable = inChannels !== outChannels || upsample;
    this.conv_sc = this.registerModule('conv_sc', learnable ? new SNConv2d(inChannels, outChannels, 1, { padding: 0, eps: snEps }) : null);
    this.bn1 = this.registerModule('bn1', bn(inChannels));
    this.bn2 = this.registerModule('bn2', bn(outChannels));
  }

  forward(x: Tensor, y: Tensor): Tensor {
    const tmp: Tensor[] = [];
    const t = (v: Tensor): Tensor => (tmp.push(v), v);
    let h = t(relu(t(this.bn1.forward(x, y))));
    let s = x;
    if (this.upsample) {
      h = t(upsampleNearest2d(h, 2));
      s = t(upsampleNearest2d(x, 2));
    }
    h = t(this.conv1.forward(h));
    h = t(relu(t(this.bn2.forward(h, y))));
    h = t(this.conv2.forward(h));
    if (this.conv_sc) s = t(this.conv_sc.forward(s));
    const out = add(h, s);
    for (const v of tmp) v.dispose();
    return out;
  }
}

/**
 * layers.DBlock (wide: hidden = out channels), downsample = AvgPool2d(2):
 *   h = conv2(relu(conv1(preact ? relu(x) : x))), pooled; shortcut conv_sc then pool when
 *   preactivated, pool then conv_sc otherwise.
 */
export class DBlock extends Module implements UnaryModule {
  readonly conv1: SNConv2d;
  readonly conv2: SNConv2d;
  readonly conv_sc: SNConv2d | null;
  readonly preactivation: boolean;
  readonly downsample: boolean;

  constructor(inChannels: number, outChannels: number, opts: { preactivation: boolean; downsample: boolean; wide?: boolean; snEps?: number }) {
    super();
    const hidden = (opts.wide ?? true) ? outChannels : inChannels;
    const eps = opts.snEps ?? BIGGAN_SN_EPS;
    this.preactivation = opts.preactivation;
    this.downsample = opts.downsample;
    this.conv1 = this.registerModule('conv1', new SNConv2d(inChannels, hidden, 3, { eps }));
    this.conv2 = this.registerModule('conv2', new SNConv2d(hidden, outChannels, 3, { eps }));
    const learnable = inChannels !== outChannels || opts.downsample;
    this.conv_sc = this.registerModule('conv_sc', learnable ? new SNConv2d(inChannels, outChannels, 1, { padding: 0, eps }) : null);
  }

  forward(x: Tensor): Tensor {
    const tmp: Tensor[] = [];
    const t = (v: Tensor): Tensor => (tmp.push(v), v);
    let h = this.preactivation ? t(relu(x)) : x;
    h = t(this.conv1.forward(h));
    h = t(this.conv2.forward(t(relu(h))));
    if (this.downsample) h = t(avgPool2d(h, 2));
    let s = x;
    if (this.preactivation) {
      if (this.conv_sc) s = t(this.conv_sc.forward(s));
      if (this.downsample) s = t(avgPool2d(s, 2));
    } else {
      if (this.downsample) s = t(avgPool2d(s, 2));
      if (this.conv_sc) s = t(this.conv_sc.forward(s));
    }
    const out = add(h, s);
    for (const v of tmp) v.dispose();
    return out;
  }
}
