/**
 * ODIN (Liang, Li and Srikant, ICLR 2018): temperature scaling plus an input perturbation.
 *
 *   x' = x - eps * sign(d/dx [ -log softmax_yhat(f(x) / T) ])      yhat = argmax_c f(x)_c
 *   score = -max_c softmax(f(x') / T)_c
 *
 * The step lowers the cross-entropy to the predicted class of the tempered logits, i.e. raises
 * the maximum softmax score; in-distribution inputs gain more than outliers do (the paper's
 * argument). Defaults T = 1000, eps = 0.0014 (the paper's CIFAR-10 DenseNet setting and the
 * smaller value of pytorch-ood's search space). As in the paper's code, the loss is the
 * cross-entropy (pytorch-ood's default criterion is nll_loss on the tempered logits, which
 * differentiates the predicted logit alone: a different direction), and the score uses the
 * same temperature T (pytorch-ood scores x' at T = 1).
 */
import { OpError, Tensor, compare, div, logSoftmax, max, mul, neg, noGrad, scope, sum } from '../../engine/index.ts';
import { asTensorFn, type Detector, type TensorFn, type TensorModel } from './detector.ts';
import { checkLogits, checkTemperature, mspScore } from './logit-scores.ts';
import { checkEps, perturbInput, type PerturbOptions } from './perturb.ts';

export const ODIN_DEFAULT_TEMPERATURE = 1000;
export const ODIN_DEFAULT_EPS = 0.0014;

export interface OdinOptions {
  /** Maps an input batch to logits [N, C]. */
  readonly model: TensorModel;
  /** Temperature T (default 1000). */
  readonly temperature?: number;
  /** Perturbation size eps (default 0.0014; 0 turns the perturbation off). */
  readonly eps?: number;
  /** Per-channel std of the input normalisation: the step becomes eps / std per channel. */
  readonly inputStd?: readonly number[];
  /** Parameters kept out of the perturbation's backward pass (see PerturbOptions.freeze). */
  readonly freeze?: readonly Tensor[];
}

/**
 * ODIN's perturbation loss of one batch: sum over samples of -log softmax(logits / T)[yhat],
 * yhat the argmax of the logits (a sum, so each sample's input gradient is its own loss's).
 * On exact ties for the maximum every tied class counts.
 */
export function odinLoss(logits: Tensor, temperature = ODIN_DEFAULT_TEMPERATURE): Tensor {
  checkLogits('odinLoss', logits);
  checkTemperature('odinLoss', temperature);
  return scope(() => {
    const predicted = noGrad(() => compare('eq', logits, max(logits, -1, true)));
    const logp = logSoftmax(temperature === 1 ? logits : div(logits, temperature), -1);
    return neg(sum(mul(logp, predicted)));
  });
}

function resolve(opts: OdinOptions): { model: TensorFn; temperature: number; eps: number } {
  const model = asTensorFn('odin', 'model', opts?.model);
  const temperature = opts.temperature ?? ODIN_DEFAULT_TEMPERATURE;
  const eps = opts.eps ?? ODIN_DEFAULT_EPS;
  checkTemperature('odin', temperature);
  checkEps('odin', eps);
  return { model, temperature, eps };
}

/** The perturbed input x' of ODIN (a new tensor; x is untouched). */
export function odinPerturb(x: Tensor, opts: OdinOptions): Tensor {
  const { model, temperature, eps } = resolve(opts);
  const p: PerturbOptions = { eps, inputStd: opts.inputStd, freeze: opts.freeze };
  return perturbInput('odin', x, (xl) => odinLoss(model(xl), temperature), p);
}

export function odinDetector(opts: OdinOptions): Detector {
  const { model, temperature, eps } = resolve(opts);
  return {
    name: `ODIN(T=${temperature}, eps=${eps})`,
    score(input: Tensor): Tensor {
      const xp = eps === 0 ? input : odinPerturb(input, opts);
      try {
        return noGrad(() => scope(() => mspScore(model(xp), temperature)));
      } finally {
        if (xp !== input) xp.dispose();
      }
    },
  };
}
