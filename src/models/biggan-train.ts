/**
 * BigGAN-PyTorch's training iteration (train_fns.GAN_training_function + train.py) for the CIFAR
 * script's settings, with checkpoints that resume exactly.
 *
 * One `step(x, y)` is one BigGAN-PyTorch iteration: `itr += 1`, then
 *   - numDSteps (4) D steps, each on its own slice of batchSize (50) real images: D's parameters
 *     require grad and G's do not (toggle_grads); z ~ N(0, zStd^2) (z_var 1, passed as a std as
 *     BigGAN-PyTorch does) and uniform classes; G(z, y) in training mode without gradient (its
 *     batch statistics and SN state move on, as in PyTorch); one D forward of cat([G_z, x]) with
 *     cat([y_fake, y_real]); hinge loss mean relu(1 - D_real) + mean relu(1 + D_fake); Adam step;
 *   - one G step: fresh z and classes, loss -mean D(G(z, y), y) with D frozen, Adam step;
 *   - EMA of G's whole state_dict (parameters and buffers, as utils.ema):
 *     target = target * decay + source * (1 - decay), decay 0 while itr < emaStart (1000).
 * Adam lr 2e-4, betas (0, 0.999), eps 1e-8 for both nets (utils.py defaults, the script's lrs).
 * As the script: num_D_accumulations = num_G_accumulations = 1, G_batch_size = batch_size, no
 * split_D, no ortho regularisation.
 *
 * Real images are NCHW f32 in [-1, 1] (BigGAN's CIFAR loader normalises with mean = std = 0.5);
 * `y` is i32 class ids. A step reads nothing back (losses stay on the GPU until asked for).
 *
 * Checkpoints (one safetensors file, written atomically: a crash never leaves a half-written
 * file): G.*, D.*, G_ema.* (state dicts, BigGAN-PyTorch names), optG.* / optD.* (Adam moments by
 * parameter index), and in the metadata the iteration, configs, Adam step counts, the global GPU
 * random generator's state and the class sampler's state, so a resumed run draws the same z and
 * classes and reproduces the next step bit for bit.
 *
 * Divergence (the engine's DivergenceGuard): with a guard set, every D and G step scans its loss
 * and gradients on the GPU; trainBigGAN reads the flag, with a scan of G, D, G_ema and both Adams,
 * at log iterations, before every checkpoint and at the end, and stops with a DivergenceError
 * instead of writing a non-finite checkpoint.
 */
import { keep, fromData, type Tensor } from '../engine/api.ts';
import { backward, noGrad } from '../engine/api.ts';
import { add, mul } from '../engine/api.ts';
import { concat, narrow } from '../engine/api.ts';
import { randn, getRngState, setRngState } from '../engine/api.ts';
import { OpError } from '../engine/api.ts';
import { Adam } from '../engine/api.ts';
import { DivergenceGuard, trainingState } from '../engine/api.ts';
import type { OptimizerState } from '../engine/api.ts';
import type { HostTensor, Module } from '../engine/api.ts';
import { copyValues } from '../engine/api.ts';
import { serializeSafetensors, parseSafetensors, toFloat32, type WritableTensor } from '../engine/api.ts';
import { writeFileAtomic, readFileBytes } from '../engine/index.ts';
import { Generator, Discriminator, hingeLossD, hingeLossG, ClassSampler, type GeneratorOptions, type DiscriminatorOptions } from './biggan.ts';

export const BIGGAN_CHECKPOINT_FORMAT = 'goe-biggan-checkpoint/1';

export interface BigGANTrainConfig {
  batchSize: number;
  numDSteps: number;
  gLr: number;
  dLr: number;
  gBetas: [number, number];
  dBetas: [number, number];
  adamEps: number;
  /** Keep an EMA copy of G (--ema). */
  ema: boolean;
  emaDecay: number;
  /** Iteration from which the EMA decays (before it, G_ema is pegged to G). */
  emaStart: number;
  /** Standard deviation of the training z (BigGAN-PyTorch's z_var, which it uses as a std). */
  zStd: number;
  /** Seed of the class sampler for fake classes. */
  seed: number;
}

/** launch_cifar_ema.sh. */
export const CIFAR_TRAIN_CONFIG: BigGANTrainConfig = {
  batchSize: 50, numDSteps: 4, gLr: 2e-4, dLr: 2e-4, gBetas: [0, 0.999], dBetas: [0, 0.999], adamEps: 1e-8,
  ema: true, emaDecay: 0.9999, emaStart: 1000, zStd: 1, seed: 0,
};

/** Losses of one iteration (GPU scalars, owned by the caller): the last D step's and the G step's. */
export interface BigGANStepLosses {
  dReal: Tensor;
  dFake: Tensor;
  g: Tensor;
}

/** Fixed latents for a step (tests): z [B, dimZ] and classes i32 [B] for each D step and the G step. */
export interface StepLatents {
  d: { z: Tensor; y: Tensor }[];
  g: { z: Tensor; y: Tensor };
}

export class BigGANTrainer {
  readonly G: Generator;
  readonly D: Discriminator;
  readonly Gema: Generator | null;
  readonly optG: Adam;
  readonly optD: Adam;
  readonly config: BigGANTrainConfig;
  readonly classSampler: ClassSampler;
  /** BigGAN-PyTorch's state_dict['itr']: iterations done. */
  itr = 0;
  /** Scans each step's losses and gradients when set (trainBigGAN sets it). */
  guard: DivergenceGuard | null = null;

  constructor(G: Generator, D: Discriminator, config: Partial<BigGANTrainConfig> = {}) {
    this.config = { ...CIFAR_TRAIN_CONFIG, ...config };
    const c = this.config;
    if (!Number.isInteger(c.batchSize) || c.batchSize < 1) throw new OpError('BigGANTrainer', `batchSize must be a positive integer, got ${c.batchSize}`);
    if (!Number.isInteger(c.numDSteps) || c.numDSteps < 1) throw new OpError('BigGANTrainer', `numDSteps must be a positive integer, got ${c.numDSteps}`);
    if (G.nClasses !== D.nClasses) throw new OpError('BigGANTrainer', `G has ${G.nClasses} classes, D ${D.nClasses}`);
    this.G = G;
    this.D = D;
    this.optG = new Adam(G.parameters(), { lr: c.gLr, betas: c.gBetas, eps: c.adamEps, weightDecay: 0 });
    this.optD = new Adam(D.parameters(), { lr: c.dLr, betas: c.dBetas, eps: c.adamEps, weightDecay: 0 });
    this.classSampler = new ClassSampler(c.seed);
    if (c.ema) {
      // train.py builds G_ema with skip_init and ema() copies G's state into it
      this.Gema = new Generator({ ...G.options, init: 'none' });
      this.Gema.loadStateDict(G.stateDict());
    } else {
      this.Gema = null;
    }
  }

  /** A trainer with fresh G and D (N02 init); D's ch and classes default to G's. */
  static create(g: GeneratorOptions, d: DiscriminatorOptions = {}, config: Partial<BigGANTrainConfig> = {}): BigGANTrainer {
    return new BigGANTrainer(new Generator(g), new Discriminator({ ch: g.ch, nClasses: g.nClasses, inChannels: g.outChannels ?? 3, ...d }), config);
  }

  private latents(): { z: Tensor; y: Tensor } {
    const B = this.config.batchSize;
    const z = randn([B, this.G.dimZ], { std: this.config.zStd });
    const y = fromData(this.classSampler.classes(B, this.G.nClasses), [B]);
    return { z, y };
  }

  /**
   * One iteration on numDSteps * batchSize real images x [.., C, H, W] with classes y (i32).
   * `fixed` replaces the random latents (tests against PyTorch).
   */
  step(x: Tensor, y: Tensor, fixed?: StepLatents): BigGANStepLosses {
    const c = this.config;
    const B = c.batchSize;
    const need = B * c.numDSteps;
    if (x.rank !== 4 || x.shape[0] !== need || x.shape[1] !== this.D.inChannels) throw new OpError('BigGANTrainer.step', `x must be [${need}, ${this.D.inChannels}, H, W] (numDSteps * batchSize real images), got [${x.shape.join(', ')}]`);
    if (y.rank !== 1 || y.shape[0] !== need || y.dtype !== 'i32') throw new OpError('BigGANTrainer.step', `y must be i32 [${need}], got ${y.dtype} [${y.shape.join(', ')}]`);
    this.itr += 1;
    this.G.train();
    this.D.train();
    this.Gema?.train();
    const { G, D } = this;
    const gParams = G.parameters();
    const dParams = D.parameters();
    let dReal: Tensor | null = null;
    let dFake: Tensor | null = null;

    for (const p of dParams) p.requiresGrad = true;
    for (const p of gParams) p.requiresGrad = false;
    for (let s = 0; s < c.numDSteps; s++) {
      this.optD.zeroGrad();
      const lat = fixed ? fixed.d[s] : this.latents();
      const xs = narrow(x, 0, s * B, B);
      const ys = narrow(y, 0, s * B, B);
      const gz = noGrad(() => G.forward(lat.z, lat.y));
      const dIn = concat([gz, xs], 0);
      const yIn = concat([lat.y, ys], 0);
      const out = D.forward(dIn, yIn);
      const fakeOut = narrow(out, 0, 0, B);
      const realOut = narrow(out, 0, B, B);
      const l = hingeLossD(fakeOut, realOut);
      const loss = add(l.real, l.fake);
      backward(loss);
      this.guard?.step(this.itr, loss, dParams);
      this.optD.step();
      dReal?.dispose();
      dFake?.dispose();
      dReal = keep(l.real);
      dFake = keep(l.fake);
      for (const t of [xs, ys, gz, dIn, yIn, out, fakeOut, realOut, loss]) t.dispose();
      if (!fixed) {
        lat.z.dispose();
        lat.y.dispose();
      }
    }

    for (const p of dParams) p.requiresGrad = false;
    for (const p of gParams) p.requiresGrad = true;
    this.optG.zeroGrad();
    const lat = fixed ? fixed.g : this.latents();
    const gz = G.forward(lat.z, lat.y);
    const out = D.forward(gz, lat.y);
    const g = hingeLossG(out);
    backward(g);
    this.guard?.step(this.itr, g, gParams);
    this.optG.step();
    for (const t of [gz, out]) t.dispose();
    if (!fixed) {
      lat.z.dispose();
      lat.y.dispose();
    }
    for (const p of dParams) p.requiresGrad = true;
    this.updateEma();
    return { dReal: dReal!, dFake: dFake!, g: keep(g) };
  }

  /** utils.ema.update(itr) over G's whole state dict. */
  updateEma(): void {
    if (!this.Gema) return;
    const decay = this.itr && this.itr < this.config.emaStart ? 0 : this.config.emaDecay;
    const src = this.G.stateDict();
    const dst = this.Gema.stateDict();
    noGrad(() => {
      for (const [k, s] of src) {
        const t = dst.get(k)!;
        if (decay === 0) {
          copyValues(t, s); // G's and G_ema's parameters may share an arena buffer
          continue;
        }
        const a = mul(t, decay);
        const b = mul(s, 1 - decay);
        const v = add(a, b);
        copyValues(t, v);
        for (const u of [a, b, v]) u.dispose();
      }
    });
  }

  // ------------------------------------------------------------------ checkpoints

  /** The whole training state as safetensors bytes (reads the GPU back). */
  async checkpointBytes(meta: Record<string, unknown> = {}): Promise<Uint8Array> {
    const tensors = new Map<string, WritableTensor>();
    const put = async (prefix: string, m: Module): Promise<void> => {
      for (const [k, t] of m.stateDict()) tensors.set(`${prefix}.${k}`, { shape: [...t.shape], data: (await t.data()) as Float32Array });
    };
    await put('G', this.G);
    await put('D', this.D);
    if (this.Gema) await put('G_ema', this.Gema);
    const og = await this.optG.stateDict();
    const od = await this.optD.stateDict();
    for (const [k, v] of og.tensors) tensors.set(`optG.${k}`, v);
    for (const [k, v] of od.tensors) tensors.set(`optD.${k}`, v);
    const rng = getRngState();
    return serializeSafetensors(tensors, {
      format: BIGGAN_CHECKPOINT_FORMAT,
      itr: String(this.itr),
      config: JSON.stringify(this.config),
      G: JSON.stringify(this.G.options),
      D: JSON.stringify({ ch: this.D.ch, nClasses: this.D.nClasses }),
      optG: JSON.stringify(og.meta),
      optD: JSON.stringify(od.meta),
      rng: JSON.stringify({ seed: rng.seed.toString(), offset: rng.offset }),
      classSampler: String(this.classSampler.state),
      meta: JSON.stringify(meta),
    });
  }

  /** Restores a checkpoint of a trainer with the same architecture; returns the caller's meta. */
  loadCheckpointBytes(bytes: Uint8Array, source = 'checkpoint'): Record<string, unknown> {
    const file = parseSafetensors(bytes, { source });
    const md = file.metadata;
    if (md.format !== BIGGAN_CHECKPOINT_FORMAT) throw new Error(`${source}: not a BigGAN checkpoint (format ${JSON.stringify(md.format)}, expected "${BIGGAN_CHECKPOINT_FORMAT}")`);
    const groups = new Map<string, Map<string, HostTensor>>();
    const optT = { optG: new Map<string, { shape: number[]; data: Float32Array }>(), optD: new Map<string, { shape: number[]; data: Float32Array }>() };
    for (const [k, t] of file.tensors) {
      const dot = k.indexOf('.');
      const head = k.slice(0, dot);
      const rest = k.slice(dot + 1);
      if (head === 'optG' || head === 'optD') {
        optT[head].set(rest, { shape: t.shape, data: toFloat32(t) });
      } else {
        if (!groups.has(head)) groups.set(head, new Map());
        groups.get(head)!.set(rest, { shape: t.shape, data: t.data as Float32Array });
      }
    }
    if (this.Gema && !groups.has('G_ema')) throw new Error(`${source}: the checkpoint has no G_ema but this trainer keeps an EMA`);
    this.G.loadStateDict(groups.get('G') ?? new Map());
    this.D.loadStateDict(groups.get('D') ?? new Map());
    if (this.Gema) this.Gema.loadStateDict(groups.get('G_ema')!);
    this.optG.loadStateDict({ tensors: optT.optG, meta: JSON.parse(md.optG) as OptimizerState['meta'] });
    this.optD.loadStateDict({ tensors: optT.optD, meta: JSON.parse(md.optD) as OptimizerState['meta'] });
    this.itr = Number(md.itr);
    this.classSampler.state = Number(md.classSampler) >>> 0;
    const rng = JSON.parse(md.rng) as { seed: string; offset: number };
    setRngState({ seed: BigInt(rng.seed), offset: rng.offset });
    return JSON.parse(md.meta) as Record<string, unknown>;
  }

  /** Writes the checkpoint atomically (temporary file + rename). */
  async save(path: string, meta: Record<string, unknown> = {}): Promise<void> {
    await writeFileAtomic(path, await this.checkpointBytes(meta));
  }

  async load(path: string): Promise<Record<string, unknown>> {
    return this.loadCheckpointBytes(await readFileBytes(path), path);
  }

  /** Every tensor a checkpoint holds, by name (divergence checks). */
  stateTensors(): [string, Tensor][] {
    return trainingState({ G: this.G, D: this.D, ...(this.Gema ? { G_ema: this.Gema } : {}), optG: this.optG, optD: this.optD });
  }

  dispose(): void {
    this.optG.dispose();
    this.optD.dispose();
    this.G.dispose();
    this.D.dispose();
    this.Gema?.dispose();
  }
}

export interface TrainLoopOptions {
  /** Stop after this many iterations in total (the trainer's itr). */
  iterations: number;
  /** Checkpoint path; written every `checkpointEvery` iterations (BigGAN's save_every, 2000) and at the end. */
  checkpointPath?: string;
  checkpointEvery?: number;
  /** Called every `logEvery` iterations with the losses read back. */
  onLog?: (itr: number, losses: { dReal: number; dFake: number; g: number }) => void;
  logEvery?: number;
  /** The divergence guard (default on); off runs exactly the unguarded loop. */
  divergenceGuard?: boolean;
  /** The trainer was restored from `checkpointPath` (that file is the last good checkpoint until the next save). */
  resumed?: boolean;
}

/**
 * Runs iterations from `batches` (each numDSteps * batchSize real images and their classes,
 * owned by the caller) until `iterations`, resuming from the trainer's itr; checkpoints
 * periodically and at the end.
 */
export async function trainBigGAN(trainer: BigGANTrainer, batches: AsyncIterable<{ x: Tensor; y: Tensor }> | Iterable<{ x: Tensor; y: Tensor }>, opts: TrainLoopOptions): Promise<void> {
  const every = opts.checkpointEvery ?? 2000;
  const logEvery = opts.logEvery ?? 100;
  const path = opts.checkpointPath;
  const guard = opts.divergenceGuard === false ? null : new DivergenceGuard({ phase: 'biggan', checkpoint: path, resumedAt: opts.resumed && path ? trainer.itr : undefined, where: (i) => `iteration ${i}` });
  const check = async (): Promise<void> => guard?.check(trainer.itr, trainer.stateTensors());
  const save = async (p: string): Promise<void> => {
    await check();
    await trainer.save(p);
    guard?.saved(p, trainer.itr);
  };
  trainer.guard = guard;
  try {
    let lastSaved = trainer.itr;
    for await (const { x, y } of batches) {
      if (trainer.itr >= opts.iterations) break;
      const l = trainer.step(x, y);
      try {
        if (opts.onLog && trainer.itr % logEvery === 0) {
          const v = { dReal: await l.dReal.item(), dFake: await l.dFake.item(), g: await l.g.item() };
          await check();
          opts.onLog(trainer.itr, v);
        }
      } finally {
        l.dReal.dispose();
        l.dFake.dispose();
        l.g.dispose();
      }
      if (path && trainer.itr % every === 0) {
        await save(path);
        lastSaved = trainer.itr;
      }
    }
    if (path && trainer.itr !== lastSaved) await save(path);
    await check(); // a diverged generator is never returned
  } finally {
    trainer.guard = null;
    guard?.dispose();
  }
}
