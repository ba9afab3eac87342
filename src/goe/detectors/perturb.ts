/**
 * The input perturbation of ODIN (Liang et al. 2018) and of the Mahalanobis detector (Lee et al.
 * 2018): one fast-gradient-sign step that moves each input so as to *decrease* a per-sample loss
 * (ODIN: the cross-entropy to the predicted class of the tempered logits, i.e. increase the max
 * softmax score; Mahalanobis: the distance to the closest class mean):
 *
 *   x' = x - eps * sign(d loss / dx) / std
 *
 * where std (optional, per channel = dimension 1) is the normalisation the inputs went through,
 * so the step is eps in the unnormalised pixel space, as in both papers' code.
 */
import {
  OpError,
  Tensor,
  backward,
  compare,
  detach,
  div,
  enableGrad,
  mul,
  noGrad,
  scope,
  sub,
  tensor,
} from '../../engine/index.ts';

export interface PerturbOptions {
  /** Step size (in the unnormalised input space when `inputStd` is given). */
  readonly eps: number;
  /** Per-channel standard deviations the inputs were normalised with (dimension 1 of x). */
  readonly inputStd?: readonly number[];
  /**
   * Tensors (the model's parameters) that must not receive a gradient from this backward pass:
   * their `requiresGrad` is switched off during the pass and restored after. Without it, the
   * parameters' `.grad` accumulate the perturbation's gradient, as they do in PyTorch.
   */
  readonly freeze?: readonly Tensor[];
}

export function checkEps(op: string, eps: number): void {
  if (!(Number.isFinite(eps) && eps >= 0)) throw new OpError(op, `eps must be a finite number >= 0, got ${eps}`);
}

function checkStd(op: string, x: Tensor, std: readonly number[] | undefined): void {
  if (!std) return;
  if (x.rank < 2 || x.shape[1] !== std.length) {
    throw new OpError(op, `inputStd has ${std.length} values, but the input of shape [${x.shape.join(', ')}] has ${x.rank < 2 ? 'no' : x.shape[1]} channels (dimension 1)`);
  }
  for (const s of std) if (!(Number.isFinite(s) && s > 0)) throw new OpError(op, `inputStd values must be positive, got ${s}`);
}

/** sign(g) in {-1, 0, 1} (0 where g is exactly 0), without autograd. */
export function signOf(g: Tensor): Tensor {
  return noGrad(() => scope(() => sub(compare('gt', g, 0), compare('lt', g, 0))));
}

/**
 * The gradient of the scalar `loss(x)` with respect to the input x, taken on a detached leaf
 * (x itself is left untouched, its own `.grad` included). Records the graph even under noGrad.
 */
export function inputGradient(op: string, x: Tensor, loss: (x: Tensor) => Tensor, freeze: readonly Tensor[] = []): Tensor {
  const frozen = freeze.filter((p) => p.requiresGrad);
  for (const p of frozen) p.requiresGrad = false;
  const leaf = detach(x);
  leaf.requiresGrad = true;
  try {
    enableGrad(() =>
      scope(() => {
        const l = loss(leaf);
        if (l.size !== 1) throw new OpError(op, `the perturbation loss must be a scalar, got shape [${l.shape.join(', ')}]`);
        if (!l.requiresGrad) throw new OpError(op, 'the model output does not depend on its input (no gradient flows to x)');
        backward(l);
      }),
    );
    const g = leaf.grad;
    if (!g) throw new OpError(op, 'no gradient reached the input');
    leaf.grad = null;
    return g;
  } finally {
    for (const p of frozen) p.requiresGrad = true;
    leaf.grad?.dispose();
    leaf.dispose();
  }
}

/** x' = x - eps * sign(d loss / dx) / std: one gradient-sign step that decreases `loss`. */
export function perturbInput(op: string, x: Tensor, loss: (x: Tensor) => Tensor, opts: PerturbOptions): Tensor {
  checkEps(op, opts.eps);
  checkStd(op, x, opts.inputStd);
  if (x.dtype !== 'f32') throw new OpError(op, `expects an f32 input, got ${x.dtype} of shape [${x.shape.join(', ')}]`);
  const g = inputGradient(op, x, loss, opts.freeze);
  try {
    return noGrad(() =>
      scope(() => {
        let step = mul(signOf(g), opts.eps);
        if (opts.inputStd) {
          const shape = x.shape.map((d, i) => (i === 1 ? d : 1));
          step = div(step, tensor(Float32Array.from(opts.inputStd), shape));
        }
        return sub(x, step);
      }),
    );
  } finally {
    g.dispose();
  }
}
