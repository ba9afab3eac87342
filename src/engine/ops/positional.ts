/**
 * Positional encodings: the sinusoidal table of "Attention Is All You Need" (as PyTorch's word
 * language model example builds it) and the addition of a table's first T rows to a sequence.
 * Learned encodings are a parameter table added the same way (nn/transformer.ts).
 */
import { Tensor, fromData } from '../tensor.ts';
import { OpError } from '../errors.ts';
import { add } from './binary.ts';
import { narrow } from './shape.ts';
import { reshape } from './movement.ts';

/**
 * pe[pos, 2i] = sin(pos / 10000^(2i/d)), pe[pos, 2i+1] = cos(pos / 10000^(2i/d)): [maxLen, d],
 * computed in float64 on the host (as PyTorch computes div_term = exp(arange(0, d, 2) *
 * -ln(10000)/d), then rounded to f32).
 */
export function sinusoidalTable(maxLen: number, d: number): Tensor {
  if (!Number.isInteger(maxLen) || maxLen < 1 || !Number.isInteger(d) || d < 1) {
    throw new OpError('sinusoidalTable', `maxLen and d must be positive integers, got ${maxLen} and ${d}`);
  }
  const pe = new Float32Array(maxLen * d);
  for (let pos = 0; pos < maxLen; pos++) {
    for (let i = 0; 2 * i < d; i++) {
      const div = Math.exp(2 * i * (-Math.log(10000) / d));
      pe[pos * d + 2 * i] = Math.sin(pos * div);
      if (2 * i + 1 < d) pe[pos * d + 2 * i + 1] = Math.cos(pos * div);
    }
  }
  return fromData(pe, [maxLen, d]);
}

/**
 * x + table[:T], for x [T, B, d] (sequence first) or [B, T, d] (batchFirst); table [maxLen, d]
 * with maxLen >= T. Differentiable in x and in the table (a learned encoding).
 */
export function addPositional(x: Tensor, table: Tensor, batchFirst = false): Tensor {
  const op = 'addPositional';
  x.storageFor(op);
  table.storageFor(op);
  if (x.rank !== 3) throw new OpError(op, `x must be ${batchFirst ? '[B, T, d]' : '[T, B, d]'}, got [${x.shape.join(', ')}]`);
  const T = batchFirst ? x.shape[1] : x.shape[0];
  const d = x.shape[2];
  if (table.rank !== 2 || table.shape[1] !== d || table.shape[0] < T) {
    throw new OpError(op, `table [${table.shape.join(', ')}] cannot encode ${T} positions of width ${d}`);
  }
  const rows = narrow(table, 0, 0, T);
  const shaped = reshape(rows, batchFirst ? [1, T, d] : [T, 1, d]);
  const out = add(x, shaped);
  shaped.dispose();
  rows.dispose();
  return out;
}
