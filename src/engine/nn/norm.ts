/**
 * Normalisation layers with PyTorch's names: BatchNorm2d (weight, bias, running_mean,
 * running_var, num_batches_tracked), BigGAN's conditional batch norm (gain.weight, bias.weight,
 * stored_mean, stored_var), Dropout2d, and spectral normalisation applied to a module's weight as
 * torch.nn.utils.spectral_norm does it (weight_orig, weight_u, weight_v).
 */
import { keep, Tensor, type Storage } from '../tensor.ts';
import { noGrad } from '../autograd.ts';
import { OpError } from '../errors.ts';
import { batchNorm2d, conditionalBatchNorm2d, type BatchNormActivation } from '../ops/batchnorm.ts';
import { spectralNormWeight } from '../ops/spectral.ts';
import { dropout2d } from '../ops/dropout.ts';
import { zeros, ones, full } from '../ops/creation.ts';
import { addInto, mul, div } from '../ops/binary.ts';
import { contiguousCopy } from '../ops/movement.ts';
import { sum } from '../ops/reduce.ts';
import { sqrt } from '../ops/unary.ts';
import { randn } from '../ops/random.ts';
import { Module, type UnaryModule } from './module.ts';
import { Parameter } from './parameter.ts';

export interface BatchNormModuleOptions {
  eps?: number;
  momentum?: number;
  affine?: boolean;
  trackRunningStats?: boolean;
}

/** torch.nn.BatchNorm2d: weight 1, bias 0, running_mean 0, running_var 1. */
export class BatchNorm2d extends Module implements UnaryModule {
  readonly numFeatures: number;
  readonly eps: number;
  readonly momentum: number;
  readonly weight: Parameter | null;
  readonly bias: Parameter | null;

  constructor(numFeatures: number, opts: BatchNormModuleOptions = {}) {
    super();
    if (!Number.isInteger(numFeatures) || numFeatures < 1) throw new OpError('BatchNorm2d', `numFeatures must be a positive integer, got ${numFeatures}`);
    this.numFeatures = numFeatures;
    this.eps = opts.eps ?? 1e-5;
    this.momentum = opts.momentum ?? 0.1;
    const affine = opts.affine ?? true;
    this.weight = this.registerParameter('weight', affine ? filled([numFeatures], 1) : null);
    this.bias = this.registerParameter('bias', affine ? filled([numFeatures], 0) : null);
    if (opts.trackRunningStats ?? true) {
      this.registerBuffer('running_mean', keep(zeros([numFeatures])));
      this.registerBuffer('running_var', keep(ones([numFeatures])));
      this.registerBuffer('num_batches_tracked', counterOver(zeros([], 'i32')));
    }
  }

  private hasRunning(): boolean {
    return this.namedBuffers('', false).length > 0;
  }

  /** act(bn(x)); the activation (default none) runs in the batch norm's own kernels. */
  forward(x: Tensor, activation: BatchNormActivation = 'none'): Tensor {
    const tracking = this.hasRunning();
    const training = this.training || !tracking;
    if (this.training && tracking) {
      let n = this.getBuffer('num_batches_tracked')!;
      if (!(n instanceof BatchCounter)) {
        // A counter set from outside is replaced by a copy of its value, once (it is not written).
        n = noGrad(() => counterOver(contiguousCopy(n)));
        this.setBuffer('num_batches_tracked', n);
      }
      (n as BatchCounter).count();
    }
    return batchNorm2d(x, this.weight, this.bias, {
      training,
      runningMean: tracking ? this.getBuffer('running_mean') : null,
      runningVar: tracking ? this.getBuffer('running_var') : null,
      momentum: this.momentum,
      eps: this.eps,
      activation,
    });
  }
}

/**
 * num_batches_tracked, counted on the host: a training forward adds 1 to `pending` and dispatches
 * nothing (an add on the device cost a copy and an add per layer per step: bench/NOTES.md, "Host
 * cost per dispatch"). Every use of the storage (a read, a checkpoint, a copy, a kernel, a load
 * that overwrites it) goes through storageFor, which first adds the pending count on the device,
 * so whoever touches the buffer sees PyTorch's value. A view taken earlier shares the storage but
 * not the pending count: it shows the value at the time it was last touched.
 */
class BatchCounter extends Tensor {
  private pending = 0;
  private flushing = false;

  count(): void {
    this.pending++;
  }

  override storageFor(op: string): Storage {
    const storage = super.storageFor(op);
    if (this.pending !== 0 && !this.flushing) this.flush();
    return storage;
  }

  private flush(): void {
    this.flushing = true;
    try {
      noGrad(() => {
        const k = full([], this.pending, this.dtype);
        addInto(this, k);
        k.dispose();
      });
      this.pending = 0;
    } finally {
      this.flushing = false;
    }
  }
}

/** A kept counter over `t`'s storage (t is disposed). */
function counterOver(t: Tensor): BatchCounter {
  const c = new BatchCounter(t.storageFor('BatchNorm2d').retain(), t.shape, t.dtype, t.strides, t.offset);
  t.dispose();
  return keep(c);
}

/** A class-indexed table with the parameter name `weight` (BigGAN's ccbn uses nn.Embedding). */
export class ClassTable extends Module {
  readonly weight: Parameter;
  constructor(numClasses: number, features: number) {
    super();
    this.weight = this.registerParameter('weight', filled([numClasses, features], 0));
  }
}

/**
 * BigGAN's class-conditional batch norm (ccbn with embeddings): batch statistics without affine
 * parameters, then gain = 1 + gain.weight[y] and bias = bias.weight[y] per sample. The tables
 * start at zero (an unconditional batch norm); BigGAN re-initialises them with its own scheme.
 */
export class ConditionalBatchNorm2d extends Module {
  readonly numFeatures: number;
  readonly eps: number;
  readonly momentum: number;
  readonly gain: ClassTable;
  readonly bias: ClassTable;

  constructor(numFeatures: number, numClasses: number, opts: { eps?: number; momentum?: number } = {}) {
    super();
    this.numFeatures = numFeatures;
    this.eps = opts.eps ?? 1e-5;
    this.momentum = opts.momentum ?? 0.1;
    this.gain = this.registerModule('gain', new ClassTable(numClasses, numFeatures));
    this.bias = this.registerModule('bias', new ClassTable(numClasses, numFeatures));
    this.registerBuffer('stored_mean', keep(zeros([numFeatures])));
    this.registerBuffer('stored_var', keep(ones([numFeatures])));
  }

  /** y: an i32 tensor [N] of class indices. */
  forward(x: Tensor, y: Tensor): Tensor {
    return conditionalBatchNorm2d(x, y, this.gain.weight, this.bias.weight, {
      training: this.training,
      runningMean: this.getBuffer('stored_mean'),
      runningVar: this.getBuffer('stored_var'),
      momentum: this.momentum,
      eps: this.eps,
    });
  }
}

/** torch.nn.Dropout2d: whole channels zeroed with probability p in training. */
export class Dropout2d extends Module implements UnaryModule {
  readonly p: number;
  constructor(p = 0.5) {
    super();
    if (!(p >= 0 && p <= 1)) throw new OpError('Dropout2d', `dropout probability must be in [0, 1], got ${p}`);
    this.p = p;
  }
  forward(x: Tensor): Tensor {
    return dropout2d(x, this.p, this.training);
  }
}

/** A parameter filled with one value. */
function filled(shape: readonly number[], value: number): Parameter {
  const t = full(shape, value);
  const p = Parameter.from(t);
  t.dispose();
  return p;
}

function normalizedRandn(n: number): Tensor {
  return noGrad(() => {
    const r = randn([n]);
    const sq = mul(r, r);
    const s = sum(sq);
    const nrm = sqrt(s);
    const out = div(r, nrm);
    for (const t of [r, sq, s, nrm]) t.dispose();
    return keep(out);
  });
}

/**
 * torch.nn.utils.spectral_norm(module, name): the parameter `name` becomes `${name}_orig`,
 * buffers `${name}_u` and `${name}_v` hold the power-iteration state (random unit vectors at
 * first), and every forward sets `module[name]` to W / sigma (one power iteration per training
 * forward) before the module's own forward runs. Returns the module.
 */
export function spectralNorm<M extends Module>(module: M, name = 'weight', opts: { eps?: number; powerIterations?: number } = {}): M {
  const w = module.getParameter(name);
  if (!w) throw new OpError('spectralNorm', `${module.typeName} has no parameter "${name}"`);
  if (w.rank < 2) throw new OpError('spectralNorm', `parameter "${name}" of ${module.typeName} must have at least 2 dimensions, got [${w.shape.join(', ')}]`);
  const h = w.shape[0];
  const k = w.size / h;
  module.registerParameter(name, null);
  module.registerParameter(`${name}_orig`, w);
  module.registerBuffer(`${name}_u`, normalizedRandn(h));
  module.registerBuffer(`${name}_v`, normalizedRandn(k));
  const target = module as unknown as Record<string, unknown> & { forward: (...args: unknown[]) => Tensor };
  const inner = target.forward.bind(module);
  target.forward = (...args: unknown[]): Tensor => {
    const orig = module.getParameter(`${name}_orig`)!;
    const wsn = spectralNormWeight(orig, module.getBuffer(`${name}_u`)!, module.getBuffer(`${name}_v`)!, {
      training: module.training, eps: opts.eps, powerIterations: opts.powerIterations,
    });
    const prev = target[name];
    target[name] = wsn;
    try {
      return inner(...args);
    } finally {
      target[name] = prev;
      wsn.dispose();
    }
  };
  return module;
}
