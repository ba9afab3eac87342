/**
 * Basic layers with PyTorch's names, parameter shapes and default initialisation.
 */
import type { Tensor } from '../tensor.ts';
import { OpError } from '../errors.ts';
import { linear } from '../ops/matmul.ts';
import { reshape } from '../ops/movement.ts';
import { dropout } from '../ops/dropout.ts';
import { embedding } from '../ops/gather.ts';
import { fillRange } from '../ops/creation.ts';
import { relu, tanh, sigmoid, gelu, leakyRelu } from '../ops/unary.ts';
import { Module, type UnaryModule } from './module.ts';
import { Parameter } from './parameter.ts';
import { kaimingUniform_, uniform_, normal_, calculateFanInAndFanOut } from './init.ts';

/** y = x Wᵀ + b, W [out, in]. Init as torch.nn.Linear: W ~ kaiming_uniform(a=sqrt(5)), i.e.
 * U(-1/sqrt(in), 1/sqrt(in)), and b ~ U(-1/sqrt(in), 1/sqrt(in)). */
export class Linear extends Module implements UnaryModule {
  readonly inFeatures: number;
  readonly outFeatures: number;
  readonly weight: Parameter;
  readonly bias: Parameter | null;

  constructor(inFeatures: number, outFeatures: number, bias = true) {
    super();
    for (const [n, v] of [['inFeatures', inFeatures], ['outFeatures', outFeatures]] as const) {
      if (!Number.isInteger(v) || v < 0) throw new OpError('Linear', `${n} must be a non-negative integer, got ${v}`);
    }
    this.inFeatures = inFeatures;
    this.outFeatures = outFeatures;
    this.weight = this.registerParameter('weight', Parameter.empty([outFeatures, inFeatures]));
    this.bias = this.registerParameter('bias', bias ? Parameter.empty([outFeatures]) : null);
    this.resetParameters();
  }

  resetParameters(): void {
    kaimingUniform_(this.weight, { a: Math.sqrt(5) });
    if (this.bias) {
      const { fanIn } = calculateFanInAndFanOut(this.weight.shape);
      const bound = fanIn > 0 ? 1 / Math.sqrt(fanIn) : 0;
      uniform_(this.bias, -bound, bound);
    }
  }

  forward(x: Tensor): Tensor {
    return linear(x, this.weight, this.bias ?? undefined);
  }
}

/** Chains modules in order; children are named "0", "1", ... as in PyTorch. */
export class Sequential extends Module implements UnaryModule {
  private readonly layers: UnaryModule[] = [];

  constructor(...modules: UnaryModule[]) {
    super();
    for (const m of modules) this.append(m);
  }

  append(m: UnaryModule): this {
    this.registerModule(String(this.layers.length), m);
    this.layers.push(m);
    return this;
  }

  at(i: number): UnaryModule {
    const m = this.layers[i < 0 ? i + this.layers.length : i];
    if (!m) throw new Error(`Sequential: index ${i} out of range for ${this.layers.length} modules`);
    return m;
  }

  get length(): number {
    return this.layers.length;
  }

  [Symbol.iterator](): Iterator<UnaryModule> {
    return this.layers[Symbol.iterator]();
  }

  forward(x: Tensor): Tensor {
    // Intermediate activations are freed as soon as the next layer has consumed them (the
    // autograd graph keeps what backward needs).
    let h = x;
    for (const m of this.layers) {
      const next = m.forward(h);
      if (h !== x && next !== h) h.dispose();
      h = next;
    }
    return h;
  }
}

/** A list of submodules named "0", "1", ... (torch.nn.ModuleList); no forward of its own. */
export class ModuleList<M extends Module = Module> extends Module {
  private readonly items: M[] = [];

  constructor(modules: Iterable<M> = []) {
    super();
    for (const m of modules) this.append(m);
  }

  append(m: M): this {
    this.registerModule(String(this.items.length), m);
    this.items.push(m);
    return this;
  }

  at(i: number): M {
    const m = this.items[i < 0 ? i + this.items.length : i];
    if (!m) throw new Error(`ModuleList: index ${i} out of range for ${this.items.length} modules`);
    return m;
  }

  get length(): number {
    return this.items.length;
  }

  [Symbol.iterator](): Iterator<M> {
    return this.items[Symbol.iterator]();
  }
}

export class Identity extends Module implements UnaryModule {
  forward(x: Tensor): Tensor {
    return reshape(x, x.shape);
  }
}

export class ReLU extends Module implements UnaryModule {
  forward(x: Tensor): Tensor {
    return relu(x);
  }
}

export class LeakyReLU extends Module implements UnaryModule {
  readonly negativeSlope: number;
  constructor(negativeSlope = 0.01) {
    super();
    this.negativeSlope = negativeSlope;
  }
  forward(x: Tensor): Tensor {
    return leakyRelu(x, this.negativeSlope);
  }
}

export class Tanh extends Module implements UnaryModule {
  forward(x: Tensor): Tensor {
    return tanh(x);
  }
}

export class Sigmoid extends Module implements UnaryModule {
  forward(x: Tensor): Tensor {
    return sigmoid(x);
  }
}

export class GELU extends Module implements UnaryModule {
  readonly approximate: 'none' | 'tanh';
  constructor(approximate: 'none' | 'tanh' = 'none') {
    super();
    this.approximate = approximate;
  }
  forward(x: Tensor): Tensor {
    return gelu(x, this.approximate);
  }
}

/** Flattens dimensions startDim..endDim into one (torch.nn.Flatten, default from 1). */
export class Flatten extends Module implements UnaryModule {
  readonly startDim: number;
  readonly endDim: number;
  constructor(startDim = 1, endDim = -1) {
    super();
    this.startDim = startDim;
    this.endDim = endDim;
  }
  forward(x: Tensor): Tensor {
    const r = x.rank;
    const s = this.startDim < 0 ? this.startDim + r : this.startDim;
    const e = this.endDim < 0 ? this.endDim + r : this.endDim;
    if (s < 0 || e >= r || s > e) throw new OpError('Flatten', `dimensions ${this.startDim}..${this.endDim} out of range for shape [${x.shape.join(', ')}]`);
    const shape = [...x.shape.slice(0, s), x.shape.slice(s, e + 1).reduce((a, b) => a * b, 1), ...x.shape.slice(e + 1)];
    return reshape(x, shape);
  }
}

/**
 * Inverted dropout (torch.nn.Dropout): in training, each element is zeroed with probability p
 * and the rest scaled by 1/(1-p), with a mask from the seeded GPU generator (ops/random.ts);
 * in eval mode the input passes through unchanged.
 */
export class Dropout extends Module implements UnaryModule {
  readonly p: number;
  constructor(p = 0.5) {
    super();
    if (!(p >= 0 && p <= 1)) throw new OpError('Dropout', `dropout probability must be in [0, 1], got ${p}`);
    this.p = p;
  }
  forward(x: Tensor): Tensor {
    return dropout(x, this.p, this.training);
  }
}

/**
 * A lookup table (torch.nn.Embedding): weight [numEmbeddings, embeddingDim] ~ N(0, 1), the
 * padding row (if any) zero and without gradient. forward(ids i32 [...]) -> [..., embeddingDim].
 */
export class Embedding extends Module {
  readonly numEmbeddings: number;
  readonly embeddingDim: number;
  readonly paddingIdx: number | undefined;
  readonly weight: Parameter;

  constructor(numEmbeddings: number, embeddingDim: number, opts: { paddingIdx?: number } = {}) {
    super();
    for (const [n, v] of [['numEmbeddings', numEmbeddings], ['embeddingDim', embeddingDim]] as const) {
      if (!Number.isInteger(v) || v < 1) throw new OpError('Embedding', `${n} must be a positive integer, got ${v}`);
    }
    let pad = opts.paddingIdx;
    if (pad !== undefined) {
      if (!Number.isInteger(pad) || pad < -numEmbeddings || pad >= numEmbeddings) {
        throw new OpError('Embedding', `paddingIdx ${pad} out of range for ${numEmbeddings} embeddings`);
      }
      if (pad < 0) pad += numEmbeddings;
    }
    this.numEmbeddings = numEmbeddings;
    this.embeddingDim = embeddingDim;
    this.paddingIdx = pad;
    this.weight = this.registerParameter('weight', Parameter.empty([numEmbeddings, embeddingDim]));
    this.resetParameters();
  }

  resetParameters(): void {
    normal_(this.weight);
    if (this.paddingIdx !== undefined) fillRange(this.weight, this.weight.offset + this.paddingIdx * this.embeddingDim, this.embeddingDim, 0);
  }

  forward(ids: Tensor): Tensor {
    return embedding(this.weight, ids, { paddingIdx: this.paddingIdx });
  }
}
