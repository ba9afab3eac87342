/**
 * Batch normalisation of NCHW feature maps (kernels/norm.wgsl): a fused forward (statistics,
 * running estimates, normalise and scale in one dispatch) and a fused backward. The affine
 * transform is per channel ([C], BatchNorm2d) or per sample ([N, C]): the conditional batch norm
 * of BigGAN, whose gain and bias are rows of class embedding tables (`classEmbedding`). An
 * activation can be fused into the output (WRN's relu(bn(x)): bench/NOTES.md, issue 19).
 */
import { Tensor, empty } from '../tensor.ts';
import { record } from '../autograd.ts';
import { OpError } from '../errors.ts';
import { dispatch, kernel, f32Bits } from './launch.ts';
import { contiguous } from './movement.ts';
import { ACTIVATION_CODES } from './activation.ts';

/** Activations bn_bwd can differentiate from the output alone (kernels/norm.wgsl). */
export type BatchNormActivation = 'none' | 'relu' | 'leaky_relu' | 'tanh' | 'sigmoid';

export interface BatchNormOptions {
  /** Batch statistics and running-estimate updates (true), or the running estimates (false). */
  training?: boolean;
  /** Running estimates [C] (updated in place while training); required in evaluation. */
  runningMean?: Tensor | null;
  runningVar?: Tensor | null;
  /** PyTorch's convention: running = (1 - momentum) * running + momentum * batch. Default 0.1. */
  momentum?: number;
  eps?: number;
  /** Applied to the output in the same dispatch (the unary op's bits). Default 'none'. */
  activation?: BatchNormActivation;
  /** leaky_relu's slope; must be positive (the backward reads the sign of the output). Default 0.01. */
  negativeSlope?: number;
}

const fmt = (s: readonly number[]): string => `[${s.join(', ')}]`;

interface NormParams {
  n: number;
  c: number;
  offA?: number;
  offB?: number;
  eps?: number;
  momentum?: number;
  shift?: number;
  k?: number;
  offGamma?: number;
  offBeta?: number;
  offY?: number;
  alpha?: number;
}

function params(v: NormParams): Uint32Array {
  const buf = new Uint32Array(12);
  buf[0] = v.n;
  buf[1] = v.c;
  buf[2] = v.offA ?? 0;
  buf[3] = v.offB ?? 0;
  buf[4] = f32Bits(v.eps ?? 0);
  buf[5] = f32Bits(v.momentum ?? 0);
  buf[6] = f32Bits(v.shift ?? 0);
  buf[7] = v.k ?? 0;
  buf[8] = v.offGamma ?? 0;
  buf[9] = v.offBeta ?? 0;
  buf[10] = v.offY ?? 0;
  buf[11] = f32Bits(v.alpha ?? 0);
  return buf;
}

function checkAffine(op: string, t: Tensor | null, what: string, x: readonly number[]): number {
  if (!t) return 0;
  t.storageFor(op);
  if (t.dtype !== 'f32') throw new OpError(op, `${what} must be f32, got ${t.dtype}`);
  if (t.rank === 1 && t.shape[0] === x[1]) return 1;
  if (t.rank === 2 && t.shape[0] === x[0] && t.shape[1] === x[1]) return 2;
  throw new OpError(op, `${what} must have shape [${x[1]}] (per channel) or [${x[0]}, ${x[1]}] (per sample) for input ${fmt(x)}, got ${fmt(t.shape)}`);
}

function checkRunning(op: string, t: Tensor | null | undefined, what: string, c: number): void {
  if (!t) return;
  t.storageFor(op);
  if (t.dtype !== 'f32' || t.rank !== 1 || t.shape[0] !== c || !t.isContiguous || t.offset !== 0) {
    throw new OpError(op, `${what} must be a contiguous f32 tensor of shape [${c}] with its own storage, got ${t.dtype} ${fmt(t.shape)}`);
  }
}

/**
 * y = (x - mean) / sqrt(var + eps) * weight + bias over NCHW input, statistics per channel.
 * `weight` and `bias` are [C], [N, C] (per sample) or null. Differentiable in x, weight, bias.
 */
export function batchNorm2d(x: Tensor, weight: Tensor | null = null, bias: Tensor | null = null, opts: BatchNormOptions = {}): Tensor {
  const op = 'batchNorm2d';
  x.storageFor(op);
  if (x.rank !== 4) throw new OpError(op, `input must be 4-D (N, C, H, W), got shape ${fmt(x.shape)}`);
  if (x.dtype !== 'f32') throw new OpError(op, `input must be f32, got ${x.dtype}`);
  const [n, c, h, w] = x.shape;
  const hw = h * w;
  const ma = checkAffine(op, weight, 'weight', x.shape);
  const mb = checkAffine(op, bias, 'bias', x.shape);
  if ((weight === null) !== (bias === null) || ma !== mb) {
    throw new OpError(op, `weight ${weight ? fmt(weight.shape) : 'null'} and bias ${bias ? fmt(bias.shape) : 'null'} must both be given with the same shape, or both be null`);
  }
  const training = opts.training ?? true;
  const rm = opts.runningMean ?? null;
  const rv = opts.runningVar ?? null;
  if ((rm === null) !== (rv === null)) throw new OpError(op, 'runningMean and runningVar must be given together');
  checkRunning(op, rm, 'runningMean', c);
  checkRunning(op, rv, 'runningVar', c);
  if (!training && !rm) throw new OpError(op, 'evaluation mode needs runningMean and runningVar');
  if (training && n * hw <= 1) throw new OpError(op, `expected more than 1 value per channel when training, got input ${fmt(x.shape)}`);
  const eps = opts.eps ?? 1e-5;
  const momentum = opts.momentum ?? 0.1;
  const act = activationCode(op, opts);

  const out = empty(x.shape);
  const stats = empty([2, c]);
  if (out.size === 0) return out;
  const xc = contiguous(x);
  // gamma and beta are read at their offsets (parameters sit inside an arena): no copies
  const wc = weight ? contiguous(weight) : null;
  const bc = bias ? contiguous(bias) : null;
  // Unused running-estimate slots still need buffers of their own (they are bound writable).
  const rmb = rm ?? empty([c]);
  const rvb = rv ?? empty([c]);
  dispatch(
    kernel('norm', 'bn_fwd', { constants: { HW: hw, AFFINE: ma, TRAIN: training ? 1 : 0, UPDATE_RUNNING: training && rm ? 1 : 0, ACT: act.code } }),
    [out.bufferFor(op), stats.bufferFor(op), rmb.bufferFor(op), rvb.bufferFor(op), xc.bufferFor(op), (wc ?? xc).bufferFor(op), (bc ?? xc).bufferFor(op)],
    params({ n, c, offA: xc.offset, eps, momentum, offGamma: wc?.offset, offBeta: bc?.offset, alpha: act.alpha }),
    [c, 1, 1],
  );
  if (!rm) rmb.dispose();
  if (!rv) rvb.dispose();
  if (xc !== x) xc.dispose();
  if (bc && bc !== bias) bc.dispose();

  const inputs = weight && bias ? [x, weight, bias] : [x];
  const needW = weight?.requiresGrad || bias?.requiresGrad;
  // [x, stats, gamma (stats without affine), and the output when an activation is fused]
  const saved = [x, stats, wc ?? stats];
  if (act.code !== 0) saved.push(out);
  // per-channel dweight and dbias go straight into parameters' gradient slots when autograd
  // offers them (BackwardFn's `into`: no copy dispatch per parameter)
  const result = record(op, out, inputs, saved, (g, s, _needs, into) => {
    const slots = ma === 1 ? { weight: into[1] ?? null, bias: into[2] ?? null } : undefined;
    const [dx, dg, db] = batchNorm2dBackwardRaw(g, s[0], s[1], ma !== 0 ? s[2] : null, ma, training, !!needW, act, s[3] ?? null, slots);
    return weight ? [dx, dg, db] : [dx];
  });
  stats.dispose();
  if (wc && wc !== weight) wc.dispose();
  return result;
}

interface FusedActivation {
  code: number;
  alpha: number;
}

function activationCode(op: string, opts: BatchNormOptions): FusedActivation {
  const name = opts.activation ?? 'none';
  const alpha = opts.negativeSlope ?? 0.01;
  if (!['none', 'relu', 'leaky_relu', 'tanh', 'sigmoid'].includes(name)) {
    throw new OpError(op, `activation must be 'none', 'relu', 'leaky_relu', 'tanh' or 'sigmoid' (the backward reads the derivative from the output), got '${name}'`);
  }
  if (name === 'leaky_relu' && !(alpha > 0)) throw new OpError(op, `leaky_relu's negativeSlope must be positive when fused (the backward reads the sign of the output), got ${alpha}`);
  return { code: ACTIVATION_CODES[name], alpha };
}

const NO_ACTIVATION: FusedActivation = { code: 0, alpha: 0 };

/** Destinations for the per-channel affine gradients (autograd's `into`: parameters' gradient
 * slots); either may be null. */
export interface BatchNormGradSlots {
  weight: Tensor | null;
  bias: Tensor | null;
}

/** Whether bn_bwd can write a per-channel gradient straight into `t` through a buffer range: an
 * f32 contiguous [c] whose byte offset is a storage-offset multiple (256: WebGPU's largest
 * minStorageBufferOffsetAlignment; parameters' slots are placed so). */
function slotFits(t: Tensor | null, c: number): t is Tensor {
  return !!t && !t.disposed && t.dtype === 'f32' && t.rank === 1 && t.shape[0] === c && t.isContiguous && (t.offset * 4) % 256 === 0;
}

/**
 * The fused backward: [dx, dweight, dbias] (the last two null without affine or when unneeded).
 * With a fused activation, `y` is the forward's output (g is multiplied by act'(y) first).
 * `into` (per-channel affine only): tensors to write dweight / dbias into and return, used where
 * `slotFits` (else new tensors, as without).
 */
export function batchNorm2dBackwardRaw(
  g: Tensor, x: Tensor, stats: Tensor, weight: Tensor | null, affine: number, training: boolean, needAffine: boolean,
  act: FusedActivation = NO_ACTIVATION, y: Tensor | null = null, into?: BatchNormGradSlots,
): [Tensor, Tensor | null, Tensor | null] {
  const op = 'batchNorm2d backward';
  const [n, c, h, w] = x.shape;
  const hw = h * w;
  if (act.code !== 0 && !y) throw new OpError(op, 'a fused activation needs the forward output');
  const gc = contiguous(g);
  const xc = contiguous(x);
  const wc = weight ? contiguous(weight) : null;
  const yb = y ?? gc;
  const dx = empty(x.shape);
  // dgamma and dbeta: the callers' destinations (parameters' gradient slots, both in one arena
  // buffer) where they fit, else buffers of their own at offset 0. The kernel writes
  // b_dgamma[ch] / b_dbeta[ch] from 0, so a destination binds as a buffer range at its offset;
  // ranges also keep two writable bindings of one buffer from overlapping (Dawn rejects that).
  const perChannel = needAffine && affine === 1;
  const gSlot = perChannel && slotFits(into?.weight ?? null, c) ? into!.weight : null;
  const bSlot = perChannel && slotFits(into?.bias ?? null, c) ? into!.bias : null;
  const dgamma = gSlot ?? empty([c]);
  const dbeta = bSlot ?? empty([c]);
  const range = (t: Tensor) => ({ buffer: t.bufferFor(op), offset: t.offset * 4, size: c * 4 });
  dispatch(
    kernel('norm', 'bn_bwd', { constants: { HW: hw, AFFINE: affine, TRAIN: training ? 1 : 0, ACT: act.code } }),
    [dx.bufferFor(op), gSlot ? range(gSlot) : dgamma.bufferFor(op), bSlot ? range(bSlot) : dbeta.bufferFor(op), gc.bufferFor(op), xc.bufferFor(op), stats.bufferFor(op), (wc ?? stats).bufferFor(op), yb.bufferFor(op)],
    params({ n, c, offA: gc.offset, offB: xc.offset, offGamma: wc?.offset, offY: yb.offset, alpha: act.alpha }),
    [c, 1, 1],
  );
  let dw: Tensor | null = null;
  let db: Tensor | null = null;
  if (needAffine && affine === 1) {
    dw = dgamma;
    db = dbeta;
  } else if (needAffine && affine === 2) {
    const nc = n * c;
    const per = empty([2, n, c]);
    const gx = Math.min(nc, 32768);
    dispatch(
      kernel('norm', 'bn_affine_grad_ns', { constants: { HW: hw, ACT: act.code } }),
      [per.bufferFor(op), gc.bufferFor(op), xc.bufferFor(op), stats.bufferFor(op), yb.bufferFor(op)],
      params({ n, c, offA: gc.offset, offB: xc.offset, offY: yb.offset, alpha: act.alpha }),
      [gx, Math.ceil(nc / gx), 1],
    );
    dw = per.view([n, c], [c, 1], 0);
    db = per.view([n, c], [c, 1], nc);
    per.dispose();
  }
  if (dw !== dgamma) dgamma.dispose();
  if (db !== dbeta) dbeta.dispose();
  if (gc !== g) gc.dispose();
  if (xc !== x) xc.dispose();
  if (wc && wc !== weight) wc.dispose();
  return [dx, dw, db];
}

/**
 * Rows of a class table: out[n, :] = table[classes[n], :] + shift (BigGAN's conditional gain is
 * 1 + embedding, its bias the embedding itself). `classes` is an i32 tensor [N] of indices.
 * Differentiable in `table` (the gradient sums the rows of samples of the same class).
 */
export function classEmbedding(table: Tensor, classes: Tensor, shift = 0): Tensor {
  const op = 'classEmbedding';
  table.storageFor(op);
  classes.storageFor(op);
  if (table.rank !== 2 || table.dtype !== 'f32') throw new OpError(op, `table must be a 2-D f32 tensor [classes, features], got ${table.dtype} ${fmt(table.shape)}`);
  if (classes.rank !== 1 || classes.dtype !== 'i32') throw new OpError(op, `classes must be a 1-D i32 tensor of indices, got ${classes.dtype} ${fmt(classes.shape)}`);
  const [k, c] = table.shape;
  const n = classes.shape[0];
  const out = empty([n, c]);
  if (out.size === 0) return out;
  const tc = contiguous(table);
  const cc = contiguous(classes);
  dispatch(
    kernel('norm', 'class_gather'),
    [out.bufferFor(op), tc.bufferFor(op), cc.bufferFor(op)],
    params({ n, c, offA: tc.offset, offB: cc.offset, shift }),
    [Math.ceil((n * c) / 256), 1, 1],
  );
  if (tc !== table) tc.dispose();
  const result = record(op, out, [table], [cc], (g, [cls]) => {
    const gc = contiguous(g);
    const dt = empty([k, c]);
    dispatch(
      kernel('norm', 'class_scatter'),
      [dt.bufferFor(op), gc.bufferFor(op), cls.bufferFor(op)],
      params({ n, c, offA: gc.offset, offB: cls.offset, k }),
      [Math.ceil((k * c) / 256), 1, 1],
    );
    if (gc !== g) gc.dispose();
    return [dt];
  });
  if (cc !== classes) cc.dispose();
  return result;
}

/**
 * BigGAN's conditional batch norm (ccbn): batch statistics without affine parameters, then a
 * per-sample gain 1 + gainTable[class] and bias biasTable[class].
 */
export function conditionalBatchNorm2d(x: Tensor, classes: Tensor, gainTable: Tensor, biasTable: Tensor, opts: BatchNormOptions = {}): Tensor {
  const op = 'conditionalBatchNorm2d';
  if (x.rank !== 4) throw new OpError(op, `input must be 4-D (N, C, H, W), got shape ${fmt(x.shape)}`);
  if (classes.rank !== 1 || classes.shape[0] !== x.shape[0]) throw new OpError(op, `classes must have shape [${x.shape[0]}] for input ${fmt(x.shape)}, got ${fmt(classes.shape)}`);
  for (const [t, what] of [[gainTable, 'gain table'], [biasTable, 'bias table']] as const) {
    if (t.rank !== 2 || t.shape[1] !== x.shape[1]) throw new OpError(op, `${what} must be [classes, ${x.shape[1]}] for input ${fmt(x.shape)}, got ${fmt(t.shape)}`);
  }
  const gain = classEmbedding(gainTable, classes, 1);
  const bias = classEmbedding(biasTable, classes, 0);
  const y = batchNorm2d(x, gain, bias, opts);
  gain.dispose();
  bias.dispose();
  return y;
}
