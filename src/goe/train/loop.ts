/**
 * The training loop shared by supervised pre-training and Outlier Exposure fine-tuning, for image
 * (f32 NCHW) and text (i32 token ids) classifiers.
 *
 * - Loss: 'ce' (cross-entropy on the inliers) or 'oe' (src/goe/losses' outlierExposureLoss on a
 *   batch of inliers and outliers labelled -1: 'mixed' averaging is pytorch-ood's/the GOE
 *   notebooks', 'separate' the OE repo's two means).
 * - Nothing is read back per step except the loss every `logEvery` steps (one item()).
 * - Divergence (the engine's DivergenceGuard): the loss and gradients are scanned on the GPU every
 *   step; the flag, with a scan of the state (BatchNorm statistics included), is read at log steps,
 *   before every checkpoint and at the end. A non-finite one stops the run with a DivergenceError
 *   naming the step and the last good checkpoint; no checkpoint is written from that state.
 * - Checkpoints (model, optimizer, scheduler, the engine's random generator, and the loop's
 *   position: epoch and batch) are written atomically every `checkpointEvery` steps and at the end
 *   of every epoch. With `resume`, the loop restarts exactly where the checkpoint was taken: the
 *   data loader's order is a function of (seed, epoch), so the batches already consumed in that
 *   epoch are skipped, and the run continues bit-identically (same losses, same weights). The last
 *   two checkpoints are kept and carry CRC-32s verified on load: a corrupt newest one is said in one
 *   line and the previous one resumed from, or the phase restarts when neither reads back
 *   (checkpoint-files.ts).
 */
import {
  DivergenceGuard, backward, clipGradNorm, crossEntropy, keep, loadCheckpoint, saveCheckpoint, scope, tensor, trainingState,
  type LRScheduler, type Module, type Optimizer, type Tensor,
} from '../../engine/index.ts';
import type { Batch, DataLoader } from '../../data/index.ts';
import { outlierExposureLoss, type OeAveraging } from '../losses/index.ts';
import { formatDuration, type LogFn } from './log.ts';
import { loadNewestGoodCheckpoint, saveKeepingPrevious } from './checkpoint-files.ts';

export interface Classifier extends Module {
  forward(x: Tensor): Tensor;
}

export interface TrainLoopOptions {
  /** Name in logs and checkpoint metadata ("pretrain", "oe-noise", ...). */
  name: string;
  model: Classifier;
  loader: DataLoader;
  epochs: number;
  optimizer: Optimizer<any>;
  /** Stepped per epoch (default) or per step (`schedulerUnit: 'step'`). */
  scheduler?: LRScheduler;
  schedulerUnit?: 'epoch' | 'step';
  /**
   * Step a per-step scheduler before optimizer.step() instead of after it: the OE repository's
   * order (baseline.py and oe_tune.py call scheduler.step() before the update), so the k-th batch
   * (1-based) is trained at lambda(k) rather than lambda(k - 1). Default false (PyTorch >= 1.1).
   */
  schedulerBeforeUpdate?: boolean;
  /** 'ce': cross-entropy on inliers; 'oe': Outlier Exposure on inliers + outliers (label -1). */
  loss: 'ce' | 'oe';
  lambda?: number;
  averaging?: OeAveraging;
  /**
   * Computes the batch's loss and accumulates its gradients (zeroed before the call) in place of
   * one forward and backward (`loss` and `lambda` are then unused): the ImageNet fine-tuning's
   * micro-batches. Returns the loss, a scalar the loop owns (left in the current scope).
   */
  accumulate?: (batch: Batch) => Tensor;
  /** Clip the gradients' global 2-norm (the word LM's 0.25); off by default. */
  clipNorm?: number;
  /** Read the loss back and log every this many steps (default 20). */
  logEvery?: number;
  /** Checkpoint file (atomic writes); none: no checkpoints. */
  checkpoint?: string;
  /** Also checkpoint every this many steps inside an epoch (0: only at epoch ends). */
  checkpointEvery?: number;
  /** Continue from `checkpoint` if it exists. */
  resume?: boolean;
  log: LogFn;
  /** Stop (after checkpointing) once this many steps have run in this call: for interruption tests. */
  stopAfter?: number;
  /** Caller metadata stored in every checkpoint (config name, seed...). */
  meta?: Record<string, unknown>;
  /** Called after every step with the global step and the phase's total (progress bars; no readback). */
  onStep?: (step: number, total: number) => void;
  /** The divergence guard (default on); off runs exactly the unguarded loop. */
  divergenceGuard?: boolean;
  /**
   * Called after every epoch (after its checkpoint; the phase's last step ends an epoch too) and,
   * with `evalEvery`, every that many steps: the runner's --eval-every-epoch evaluation. The model
   * is handed back in training mode; whatever it reads must not draw from the engine's generator.
   */
  onEval?: (step: number, epoch: number) => Promise<void>;
  evalEvery?: number;
}

export interface LossRecord {
  step: number;
  epoch: number;
  loss: number;
}

export interface TrainLoopResult {
  /** Global steps done (over all calls, resumed ones included). */
  steps: number;
  /** Epochs completed. */
  epochs: number;
  /** Losses read back (every logEvery steps), including those of earlier calls when resumed. */
  losses: LossRecord[];
  /** Steps per second of this call (excluding skipped batches). */
  stepsPerSecond: number;
  seconds: number;
  /** Where this call started (epoch, batch), when resumed. */
  resumedFrom: { epoch: number; batch: number; step: number } | null;
  /** True when `stopAfter` ended the call before the last epoch. */
  interrupted: boolean;
}

interface LoopState {
  epoch: number;
  batch: number;
  step: number;
  losses: LossRecord[];
}

export async function trainLoop(o: TrainLoopOptions): Promise<TrainLoopResult> {
  let st: LoopState = { epoch: 0, batch: 0, step: 0, losses: [] };
  let resumedFrom: TrainLoopResult['resumedFrom'] = null;
  if (o.resume && o.checkpoint !== undefined) {
    // the newest good one of the last two kept (a corrupt one is said and skipped: checkpoint-files.ts)
    const found = await loadNewestGoodCheckpoint(o.checkpoint, async (file) => {
      const { meta } = await loadCheckpoint(file, { model: o.model, optimizer: o.optimizer, scheduler: o.scheduler });
      const loop = meta.loop as LoopState | undefined;
      if (loop === undefined || meta.name !== o.name) throw new Error(`${file}: not a checkpoint of the "${o.name}" training loop (it is "${String(meta.name)}")`);
      return loop;
    }, o.log, o.name);
    if (found !== null) {
      st = { ...found.value, losses: [...found.value.losses] };
      resumedFrom = { epoch: st.epoch, batch: st.batch, step: st.step };
      o.log(`[${o.name}] resumed from ${found.file}: epoch ${st.epoch + 1}/${o.epochs}, batch ${st.batch}/${o.loader.numBatches}, step ${st.step}`);
    }
  }
  const guard = o.divergenceGuard === false ? null : new DivergenceGuard({ phase: o.name, checkpoint: o.checkpoint, resumedAt: resumedFrom?.step });
  try {
    return await run(o, st, resumedFrom, guard);
  } finally {
    guard?.dispose();
  }
}

async function run(o: TrainLoopOptions, st: LoopState, resumedFrom: TrainLoopResult['resumedFrom'], guard: DivergenceGuard | null): Promise<TrainLoopResult> {
  const logEvery = o.logEvery ?? 20;
  const unit = o.schedulerUnit ?? 'epoch';
  const check = async (): Promise<void> => guard?.check(st.step, trainingState({ '': o.model, optimizer: o.optimizer }));
  const save = async (): Promise<void> => {
    if (o.checkpoint === undefined) return;
    await check();
    await saveKeepingPrevious(o.checkpoint, (file) => saveCheckpoint(file, { model: o.model, optimizer: o.optimizer, scheduler: o.scheduler, meta: { ...o.meta, name: o.name, loop: st } }));
    guard?.saved(o.checkpoint, st.step);
  };
  // a fractional number of epochs (a budget of 2.5) ends the phase inside its last epoch
  const epochs = Math.ceil(o.epochs);
  const total = Math.round(o.epochs * o.loader.numBatches);
  const t0 = performance.now();
  let ran = 0;
  let tLog = t0;
  let ranAtLog = 0;
  let interrupted = false;
  o.model.train();
  const reached = (): boolean => o.stopAfter !== undefined && ran >= o.stopAfter;
  while (st.epoch < epochs) {
    const skip = st.batch;
    let b = 0;
    for await (const batch of o.loader.epoch(st.epoch)) {
      if (b++ < skip) continue; // consumed before the checkpoint this run resumed from
      const wantLoss = (st.step + 1) % logEvery === 0 || st.step + 1 === total;
      const loss = scope(() => {
        o.optimizer.zeroGrad();
        const l = o.accumulate !== undefined ? o.accumulate(batch) : lossAndGradients(o, batch);
        guard?.step(st.step + 1, l, o.model.parameters());
        if (o.clipNorm !== undefined) clipGradNorm(o.model.parameters(), o.clipNorm).dispose();
        if (o.scheduler && unit === 'step' && o.schedulerBeforeUpdate === true) o.scheduler.step();
        o.optimizer.step();
        if (o.scheduler && unit === 'step' && o.schedulerBeforeUpdate !== true) o.scheduler.step();
        return wantLoss ? keep(l) : null;
      });
      st.step++;
      st.batch++;
      ran++;
      o.onStep?.(st.step, total);
      if (loss !== null) {
        const v = await loss.item();
        loss.dispose();
        await check();
        st.losses.push({ step: st.step, epoch: st.epoch, loss: v });
        const now = performance.now();
        const rate = (ran - ranAtLog) / Math.max((now - tLog) / 1000, 1e-9);
        const eta = (total - st.step) / Math.max(rate, 1e-9);
        const lr = o.optimizer.paramGroups[0]!.options.lr;
        o.log(`[${o.name}] epoch ${st.epoch + 1}/${epochs} step ${st.step}/${total} loss ${v.toFixed(4)} lr ${lr.toPrecision(3)} ${rate.toFixed(2)} steps/s eta ${formatDuration(eta)}`);
        if (!Number.isFinite(v)) throw new Error(`[${o.name}] the loss is ${v} at step ${st.step}: training diverged`);
        tLog = now;
        ranAtLog = ran;
      }
      if (st.step >= total) break; // the phase's last step: ends like an epoch
      if (st.batch < o.loader.numBatches) {
        const every = o.checkpointEvery ?? 0;
        if (reached()) {
          await save();
          interrupted = true;
          break;
        }
        if (every > 0 && st.step % every === 0) await save();
        if (o.onEval !== undefined && (o.evalEvery ?? 0) > 0 && st.step % o.evalEvery! === 0) {
          await o.onEval(st.step, st.epoch);
          o.model.train();
        }
      }
    }
    if (interrupted) break;
    if (o.scheduler && unit === 'epoch') o.scheduler.step();
    st.epoch++;
    st.batch = 0;
    await save();
    if (o.onEval !== undefined) {
      await o.onEval(st.step, st.epoch);
      o.model.train();
    }
    if (reached() && st.epoch < epochs) {
      interrupted = true;
      break;
    }
  }
  await check(); // a diverged model is never returned
  const seconds = (performance.now() - t0) / 1000;
  return { steps: st.step, epochs: st.epoch, losses: st.losses, stepsPerSecond: ran / Math.max(seconds, 1e-9), seconds, resumedFrom, interrupted };
}

/** One forward and backward of the whole batch; returns the loss. */
function lossAndGradients(o: TrainLoopOptions, batch: Batch): Tensor {
  const x = tensor(batch.x, batch.shape);
  const y = tensor(batch.y, [batch.y.length], 'i32');
  const logits = o.model.forward(x);
  const l =
    o.loss === 'ce'
      ? crossEntropy(logits, y, batch.nOut > 0 ? { ignoreIndex: -1 } : {})
      : outlierExposureLoss(logits, y, { lambda: o.lambda, averaging: o.averaging });
  backward(l);
  return l;
}
