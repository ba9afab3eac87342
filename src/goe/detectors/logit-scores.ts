/**
 * Outlier scores from logits [N, C] (higher = more OOD), as differentiable tensor functions, and
 * the detectors built on them. Every score is computed on the GPU in the numerically stable
 * forms of the engine's softmax/logSoftmax/logsumexp (the row maximum is subtracted first), so
 * large logits and large temperatures neither overflow nor lose the answer.
 */
import { OpError, Tensor, div, logSoftmax, logsumexp, max, mul, neg, noGrad, scope, softmax, sum } from '../../engine/index.ts';
import { asTensorFn, type Detector, type TensorModel } from './detector.ts';

export function checkLogits(op: string, logits: Tensor): void {
  if (!(logits instanceof Tensor)) throw new OpError(op, 'expected a Tensor of logits');
  logits.storageFor(op);
  if (logits.rank !== 2) throw new OpError(op, `expects logits of shape [N, C], got [${logits.shape.join(', ')}]`);
  if (logits.dtype !== 'f32') throw new OpError(op, `expects f32 logits, got ${logits.dtype} of shape [${logits.shape.join(', ')}]`);
  if (logits.shape[1] < 1) throw new OpError(op, `logits of shape [${logits.shape.join(', ')}] have no classes`);
}

export function checkTemperature(op: string, temperature: number): void {
  if (!(Number.isFinite(temperature) && temperature > 0)) throw new OpError(op, `temperature must be a positive finite number, got ${temperature}`);
}

/** logits / T (the logits themselves when T = 1). */
function scaled(logits: Tensor, temperature: number): Tensor {
  return temperature === 1 ? logits : div(logits, temperature);
}

/** MSP (Hendrycks and Gimpel): -max_c softmax(logits / T)_c, in [-1, -1/C]. */
export function mspScore(logits: Tensor, temperature = 1): Tensor {
  checkLogits('mspScore', logits);
  checkTemperature('mspScore', temperature);
  return scope(() => neg(max(softmax(scaled(logits, temperature), -1), -1)));
}

/** Energy (Liu et al.): -T logsumexp_c(logits / T). */
export function energyScore(logits: Tensor, temperature = 1): Tensor {
  checkLogits('energyScore', logits);
  checkTemperature('energyScore', temperature);
  return scope(() => {
    const lse = logsumexp(scaled(logits, temperature), -1);
    return mul(lse, -temperature);
  });
}

/** MaxLogit (Hendrycks et al. 2022): -max_c logits_c. */
export function maxLogitScore(logits: Tensor): Tensor {
  checkLogits('maxLogitScore', logits);
  return scope(() => neg(max(logits, -1)));
}

/** Entropy of softmax(logits / T): -sum_c p_c log p_c, in [0, log C]. */
export function entropyScore(logits: Tensor, temperature = 1): Tensor {
  checkLogits('entropyScore', logits);
  checkTemperature('entropyScore', temperature);
  return scope(() => {
    const z = scaled(logits, temperature);
    // p * log p with log p from logSoftmax: where p underflows to 0, log p stays finite and the
    // term is exactly 0 (log(softmax) would give 0 * -inf = NaN).
    const plogp = mul(softmax(z, -1), logSoftmax(z, -1));
    return neg(sum(plogp, -1));
  });
}

export interface LogitDetectorOptions {
  /** Maps an input batch to logits [N, C] (a function or a module such as a WideResNet); without
   * one, `score` takes the logits themselves. */
  readonly model?: TensorModel;
  /** Softmax / energy temperature T (default 1). */
  readonly temperature?: number;
}

function logitDetector(name: string, fn: (logits: Tensor) => Tensor, opts: LogitDetectorOptions): Detector {
  const model = opts.model === undefined ? undefined : asTensorFn(name, 'model', opts.model);
  return {
    name,
    score(input: Tensor): Tensor {
      return noGrad(() =>
        scope(() => {
          const logits = model ? model(input) : input;
          const s = fn(logits);
          if (s.rank !== 1) throw new OpError(name, `scores have shape [${s.shape.join(', ')}], expected [N]`);
          return s;
        }),
      );
    },
  };
}

/** Maximum softmax probability detector: score = -max softmax(logits / T). */
export function mspDetector(opts: LogitDetectorOptions = {}): Detector {
  const t = opts.temperature ?? 1;
  checkTemperature('mspDetector', t);
  return logitDetector(t === 1 ? 'MSP' : `MSP(T=${t})`, (z) => mspScore(z, t), opts);
}

/** Energy detector: score = -T logsumexp(logits / T). */
export function energyDetector(opts: LogitDetectorOptions = {}): Detector {
  const t = opts.temperature ?? 1;
  checkTemperature('energyDetector', t);
  return logitDetector(t === 1 ? 'Energy' : `Energy(T=${t})`, (z) => energyScore(z, t), opts);
}

/** MaxLogit detector: score = -max logits (no temperature). */
export function maxLogitDetector(opts: Omit<LogitDetectorOptions, 'temperature'> = {}): Detector {
  return logitDetector('MaxLogit', (z) => maxLogitScore(z), opts);
}

/** Entropy detector: score = entropy of softmax(logits / T). */
export function entropyDetector(opts: LogitDetectorOptions = {}): Detector {
  const t = opts.temperature ?? 1;
  checkTemperature('entropyDetector', t);
  return logitDetector(t === 1 ? 'Entropy' : `Entropy(T=${t})`, (z) => entropyScore(z, t), opts);
}
