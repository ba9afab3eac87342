/**
 * Adam and AdamW with PyTorch's formulas (torch/optim/adam.py, adamw.py):
 *   Adam:  g += wd*p           AdamW: p *= 1 - lr*wd
 *   m = b1*m + (1-b1)*g;  v = b2*v + (1-b2)*g^2;  (amsgrad: vmax = max(vmax, v), v := vmax)
 *   p -= lr/(1-b1^t) * m / (sqrt(v)/sqrt(1-b2^t) + eps)      (eps outside the square root)
 * The bias corrections are computed in float64 on the host per step and passed as uniforms.
 */
import { OpError } from '../errors.ts';
import { Optimizer, type ParamGroup, type ParamsArg, type StepKernel } from './optimizer.ts';

export interface AdamOptions {
  lr: number;
  betas: readonly [number, number];
  eps: number;
  weightDecay: number;
  amsgrad: boolean;
}

class AdamBase extends Optimizer<AdamOptions> {
  private readonly decoupled: boolean;

  constructor(kind: string, decoupled: boolean, params: ParamsArg<AdamOptions>, opts: Partial<AdamOptions>) {
    super(kind, params, { lr: 1e-3, betas: [0.9, 0.999], eps: 1e-8, weightDecay: decoupled ? 1e-2 : 0, amsgrad: false, ...opts });
    this.decoupled = decoupled;
    for (const g of this.paramGroups) {
      const o = g.options;
      const [b1, b2] = o.betas;
      if (!(b1 >= 0 && b1 < 1) || !(b2 >= 0 && b2 < 1)) throw new OpError(kind, `invalid betas [${b1}, ${b2}]: each must be in [0, 1)`);
      if (!(o.eps >= 0)) throw new OpError(kind, `invalid eps ${o.eps}`);
      if (!(o.weightDecay >= 0)) throw new OpError(kind, `invalid weight decay ${o.weightDecay}`);
    }
    this.allocateState();
  }

  protected stateCount(group: ParamGroup<AdamOptions>): number {
    return group.options.amsgrad ? 3 : 2;
  }

  protected stateNames(group: ParamGroup<AdamOptions>): string[] {
    return group.options.amsgrad ? ['exp_avg', 'exp_avg_sq', 'max_exp_avg_sq'] : ['exp_avg', 'exp_avg_sq'];
  }

  protected stepKernel(group: ParamGroup<AdamOptions>, step: number): StepKernel {
    const o = group.options;
    const [b1, b2] = o.betas;
    const bc1 = 1 - b1 ** step;
    const bc2 = 1 - b2 ** step;
    return {
      entry: o.amsgrad ? 'adam_amsgrad' : 'adam',
      spec: { constants: { DECOUPLED: this.decoupled ? 1 : 0 } },
      params: { lr: o.lr, wd: o.weightDecay, a: b1, b: b2, eps: o.eps, stepSize: o.lr / bc1, bc2Sqrt: Math.sqrt(bc2) },
    };
  }
}

/** Adam (weight decay added to the gradient). Defaults: lr 1e-3, betas [0.9, 0.999], eps 1e-8. */
export class Adam extends AdamBase {
  constructor(params: ParamsArg<AdamOptions>, opts: Partial<AdamOptions> = {}) {
    super('Adam', false, params, opts);
  }
}

/** AdamW (decoupled weight decay, default 1e-2). */
export class AdamW extends AdamBase {
  constructor(params: ParamsArg<AdamOptions>, opts: Partial<AdamOptions> = {}) {
    super('AdamW', true, params, opts);
  }
}
