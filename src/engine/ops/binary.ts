/**
 * Binary elementwise ops with NumPy broadcasting and strided operands (kernels/elementwise.wgsl),
 * each with its backward beside it. A number operand becomes a 0-d tensor filled on the GPU. A
 * backward computes only the gradients its inputs need (a constant operand costs no dispatch).
 */
import { Tensor } from '../tensor.ts';
import { record } from '../autograd.ts';
import { OpError } from '../errors.ts';
import { full } from './creation.ts';
import { sumToShape } from './reduce.ts';
import { binaryRaw, compareRaw, scaleRaw, type BinaryOp, type CompareOp } from './binary-raw.ts';

export { binaryRaw, compareRaw, scaleRaw, addInto, type BinaryOp, type CompareOp } from './binary-raw.ts';

export type TensorOrNumber = Tensor | number;

function asTensor(op: string, x: TensorOrNumber, like: TensorOrNumber): Tensor {
  if (x instanceof Tensor) return x;
  if (typeof x !== 'number') throw new OpError(op, `expected a Tensor or a number, got ${typeof x}`);
  return full([], x, like instanceof Tensor ? like.dtype : 'f32');
}

/** Runs a binary op with numbers lifted to tensors (and freed after). */
function lifted(op: BinaryOp, a: TensorOrNumber, b: TensorOrNumber, fn: (x: Tensor, y: Tensor) => Tensor): Tensor {
  // Check the tensor operands before a number is lifted onto the GPU (no kernel on bad input).
  if (a instanceof Tensor) a.storageFor(op);
  if (b instanceof Tensor) b.storageFor(op);
  const x = asTensor(op, a, b);
  const y = asTensor(op, b, a);
  try {
    return fn(x, y);
  } finally {
    if (x !== a) x.dispose();
    if (y !== b) y.dispose();
  }
}

export function add(a: TensorOrNumber, b: TensorOrNumber): Tensor {
  return lifted('add', a, b, (x, y) => {
    const out = binaryRaw('add', x, y);
    const [sx, sy] = [x.shape, y.shape];
    return record('add', out, [x, y], [], (g, _s, need) => [need[0] ? sumToShape(g, sx) : null, need[1] ? sumToShape(g, sy) : null]);
  });
}

export function sub(a: TensorOrNumber, b: TensorOrNumber): Tensor {
  return lifted('sub', a, b, (x, y) => {
    const out = binaryRaw('sub', x, y);
    const [sx, sy] = [x.shape, y.shape];
    return record('sub', out, [x, y], [], (g, _s, need) => [need[0] ? sumToShape(g, sx) : null, need[1] ? negSum(g, sy) : null]);
  });
}

export function mul(a: TensorOrNumber, b: TensorOrNumber): Tensor {
  return lifted('mul', a, b, (x, y) => {
    const out = binaryRaw('mul', x, y);
    const [sx, sy] = [x.shape, y.shape];
    // each side's gradient reads the other operand: save only what a needed gradient reads (a
    // constant factor does not keep the other operand, often an activation, alive until backward)
    const [needX, needY] = [x.requiresGrad, y.requiresGrad];
    const saved = [...(needX ? [y] : []), ...(needY ? [x] : [])];
    return record('mul', out, [x, y], saved, (g, s) => [
      needX ? reduced(binaryRaw('mul', g, s[0]), sx) : null,
      needY ? reduced(binaryRaw('mul', g, s[needX ? 1 : 0]), sy) : null,
    ]);
  });
}

export function div(a: TensorOrNumber, b: TensorOrNumber): Tensor {
  return lifted('div', a, b, (x, y) => {
    const out = binaryRaw('div', x, y);
    const [sx, sy] = [x.shape, y.shape];
    // d/dx = g / y ; d/dy = -g * out / y
    return record('div', out, [x, y], [y, out], (g, [ys, outs], need) => {
      const gx = binaryRaw('div', g, ys);
      let gy: Tensor | null = null;
      if (need[1]) {
        const t = binaryRaw('mul', gx, outs);
        gy = negSum(t, sy);
        t.dispose();
      }
      if (!need[0]) {
        gx.dispose();
        return [null, gy];
      }
      return [reduced(gx, sx), gy];
    });
  });
}

/** Elementwise max; the gradient goes to the larger operand, half to each on exact ties (as
 * PyTorch does). */
export function maximum(a: TensorOrNumber, b: TensorOrNumber): Tensor {
  return minmax('maximum', a, b);
}

export function minimum(a: TensorOrNumber, b: TensorOrNumber): Tensor {
  return minmax('minimum', a, b);
}

function minmax(op: 'maximum' | 'minimum', a: TensorOrNumber, b: TensorOrNumber): Tensor {
  return lifted(op, a, b, (x, y) => {
    const out = binaryRaw(op, x, y);
    const [sx, sy] = [x.shape, y.shape];
    return record(op, out, [x, y], [x, y, out], (g, [xs, ys, outs], need) => [
      // mask_x = (x == out) - 0.5 * (x == y): PyTorch gives half the gradient to each on ties.
      need[0] ? reduced(maskedGrad(g, xs, ys, outs), sx) : null,
      need[1] ? reduced(maskedGrad(g, ys, xs, outs), sy) : null,
    ]);
  });
}

function maskedGrad(g: Tensor, self: Tensor, other: Tensor, out: Tensor): Tensor {
  const eqOut = compareRaw('eq', self, out);
  const tie = compareRaw('eq', self, other);
  const half = scaleRaw(tie, 0.5);
  const m = binaryRaw('sub', eqOut, half);
  const r = binaryRaw('mul', g, m);
  for (const t of [eqOut, tie, half, m]) t.dispose();
  return r;
}

function reduced(t: Tensor, shape: readonly number[]): Tensor {
  const r = sumToShape(t, shape);
  if (r !== t) t.dispose();
  return r;
}

function negSum(g: Tensor, shape: readonly number[]): Tensor {
  const n = scaleRaw(g, -1);
  return reduced(n, shape);
}

/** a (op) b as 1/0 with broadcasting; numbers allowed. No gradient flows through a comparison. */
export function compare(op: CompareOp, a: TensorOrNumber, b: TensorOrNumber): Tensor {
  return lifted(op, a, b, (x, y) => binaryRaw(op, x, y));
}
