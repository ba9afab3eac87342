/**
 * Stochastic gradient descent with momentum, dampening, Nesterov momentum and (coupled) weight
 * decay, in PyTorch's order of operations (torch/optim/sgd.py):
 *   d_p = g + wd*p;  buf = momentum*buf + (1-dampening)*d_p  (buf = d_p on a parameter's first
 *   step);  d_p = nesterov ? d_p + momentum*buf : buf;  p -= lr*d_p.
 */
import { OpError } from '../errors.ts';
import { Optimizer, type ParamGroup, type ParamsArg, type StepKernel } from './optimizer.ts';

export interface SGDOptions {
  lr: number;
  momentum: number;
  dampening: number;
  weightDecay: number;
  nesterov: boolean;
}

export class SGD extends Optimizer<SGDOptions> {
  constructor(params: ParamsArg<SGDOptions>, opts: Partial<SGDOptions> & { lr: number }) {
    super('SGD', params, { momentum: 0, dampening: 0, weightDecay: 0, nesterov: false, ...opts });
    for (const g of this.paramGroups) {
      const o = g.options;
      if (!(o.momentum >= 0)) throw new OpError('SGD', `invalid momentum ${o.momentum}`);
      if (!(o.weightDecay >= 0)) throw new OpError('SGD', `invalid weight decay ${o.weightDecay}`);
      if (o.nesterov && (o.momentum <= 0 || o.dampening !== 0)) {
        throw new OpError('SGD', `Nesterov momentum requires a momentum and zero dampening (momentum ${o.momentum}, dampening ${o.dampening})`);
      }
    }
    this.allocateState();
  }

  protected stateCount(group: ParamGroup<SGDOptions>): number {
    return group.options.momentum !== 0 ? 1 : 0;
  }

  protected stateNames(group: ParamGroup<SGDOptions>): string[] {
    return group.options.momentum !== 0 ? ['momentum_buffer'] : [];
  }

  protected stepKernel(group: ParamGroup<SGDOptions>, step: number): StepKernel {
    const o = group.options;
    if (o.momentum === 0) return { entry: 'sgd_plain', spec: {}, params: { lr: o.lr, wd: o.weightDecay } };
    return {
      entry: 'sgd',
      spec: { constants: { NESTEROV: o.nesterov ? 1 : 0 } },
      params: { lr: o.lr, wd: o.weightDecay, a: o.momentum, b: o.dampening, first: step === 1 ? 1 : 0 },
    };
  }
}
