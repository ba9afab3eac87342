/**
 * Gradient clipping by global norm, as torch.nn.utils.clip_grad_norm_: norm = ||all grads||_2,
 * every gradient *= min(1, maxNorm / (norm + 1e-6)). Entirely on the GPU (no readback): partial
 * sums of squares per block, one workgroup folds them into the norm and the factor, then the
 * gradients are scaled by the factor read from GPU memory. Gradients that share a buffer (nn's
 * gradient arena) are handled by one dispatch per stage.
 */
import { Tensor, empty } from '../tensor.ts';
import { OpError } from '../errors.ts';
import { zeros } from '../ops/creation.ts';
import { dispatch, kernel } from '../ops/launch.ts';
import { TableCache, dispatchRows, packParams, type Segment } from './blocks.ts';

const tables = new TableCache(64);

/**
 * Clips the gradients of `params` in place so their global 2-norm is at most `maxNorm`; returns
 * the norm before clipping as a 0-d tensor (read it with `await norm.item()` only if needed).
 */
export function clipGradNorm(params: Iterable<Tensor>, maxNorm: number, normType = 2): Tensor {
  if (normType !== 2) throw new OpError('clipGradNorm', `only the 2-norm is implemented, got normType ${normType}`);
  if (!(maxNorm >= 0)) throw new OpError('clipGradNorm', `maxNorm must be a non-negative number, got ${maxNorm}`);
  const groups = new Map<GPUBuffer, Segment[]>();
  for (const p of params) {
    const g = p.grad;
    if (!g || g.size === 0) continue;
    if (!g.isContiguous) throw new OpError('clipGradNorm', `gradient of shape [${g.shape.join(', ')}] is not contiguous`);
    const buf = g.bufferFor('clipGradNorm');
    let segs = groups.get(buf);
    if (!segs) groups.set(buf, (segs = []));
    segs.push({ p: 0, g: g.offset, s: 0, n: g.size });
  }
  if (groups.size === 0) return zeros([]);
  const plan = [...groups].map(([buf, segs]) => ({ buf, table: tables.get(segs) }));
  const nPartials = plan.reduce((a, x) => a + x.table.rows, 0);
  const partials = empty([nPartials]);
  const info = empty([2]);
  let base = 0;
  for (const { buf, table } of plan) {
    dispatchRows('sumsq', {}, [table.buffer, partials.bufferFor('clipGradNorm'), buf], { rows: table.rows, partBase: base });
    base += table.rows;
  }
  dispatch(kernel('optimizers', 'clip_finish'), [partials.bufferFor('clipGradNorm'), info.bufferFor('clipGradNorm')], packParams({ rows: 1, nPartials, maxNorm }), [1]);
  for (const { buf, table } of plan) {
    dispatchRows('scale', {}, [table.buffer, buf, info.bufferFor('clipGradNorm')], { rows: table.rows });
  }
  partials.dispose();
  const norm = info.view([], [], 0);
  info.dispose();
  return norm;
}
