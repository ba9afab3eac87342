/**
 * Learning-rate schedules, as torch.optim.lr_scheduler: a scheduler sets `lr` in its optimizer's
 * groups (read by the next step's uniform block, so no pipeline is rebuilt). Constructing one
 * sets epoch 0's rate (PyTorch's constructor does the same); call `step()` once per epoch (or per
 * iteration, if the schedule is written in iterations). Rates use PyTorch's closed forms.
 */
import { OpError } from '../errors.ts';

/** What a scheduler needs of an optimizer: its groups' options and initial rates. */
export interface Schedulable {
  paramGroups: { options: { lr: number }; initialLr: number }[];
}

export abstract class LRScheduler {
  readonly optimizer: Schedulable;
  readonly baseLrs: number[];
  /** The epoch (or iteration) whose rate is set now; 0 after construction. */
  lastEpoch = 0;

  constructor(optimizer: Schedulable) {
    this.optimizer = optimizer;
    this.baseLrs = optimizer.paramGroups.map((g) => g.initialLr);
  }

  /** The rate of group `i` at `epoch`. */
  abstract lrAt(epoch: number, i: number): number;

  /** Advances one epoch (or jumps to `epoch`) and sets the groups' rates. */
  step(epoch?: number): void {
    this.lastEpoch = epoch ?? this.lastEpoch + 1;
    this.apply();
  }

  getLastLr(): number[] {
    return this.optimizer.paramGroups.map((g) => g.options.lr);
  }

  protected apply(): void {
    this.optimizer.paramGroups.forEach((g, i) => (g.options.lr = this.lrAt(this.lastEpoch, i)));
  }

  stateDict(): { lastEpoch: number; baseLrs: number[] } {
    return { lastEpoch: this.lastEpoch, baseLrs: [...this.baseLrs] };
  }

  loadStateDict(s: { lastEpoch: number; baseLrs?: number[] }): void {
    this.lastEpoch = s.lastEpoch;
    if (s.baseLrs) s.baseLrs.forEach((v, i) => (this.baseLrs[i] = v));
    this.apply();
  }
}

/** lr = base * gamma^floor(epoch / stepSize). */
export class StepLR extends LRScheduler {
  readonly stepSize: number;
  readonly gamma: number;
  constructor(optimizer: Schedulable, stepSize: number, gamma = 0.1) {
    super(optimizer);
    if (!Number.isInteger(stepSize) || stepSize < 1) throw new OpError('StepLR', `stepSize must be a positive integer, got ${stepSize}`);
    this.stepSize = stepSize;
    this.gamma = gamma;
    this.apply();
  }
  lrAt(epoch: number, i: number): number {
    return this.baseLrs[i] * this.gamma ** Math.floor(epoch / this.stepSize);
  }
}

/** lr = base * gamma^(number of milestones <= epoch). */
export class MultiStepLR extends LRScheduler {
  readonly milestones: number[];
  readonly gamma: number;
  constructor(optimizer: Schedulable, milestones: readonly number[], gamma = 0.1) {
    super(optimizer);
    this.milestones = [...milestones].sort((a, b) => a - b);
    this.gamma = gamma;
    this.apply();
  }
  lrAt(epoch: number, i: number): number {
    const passed = this.milestones.filter((m) => m <= epoch).length; // bisect_right
    return this.baseLrs[i] * this.gamma ** passed;
  }
}

/** lr = etaMin + (base - etaMin) * (1 + cos(pi * epoch / tMax)) / 2 (SGDR without restarts). */
export class CosineAnnealingLR extends LRScheduler {
  readonly tMax: number;
  readonly etaMin: number;
  constructor(optimizer: Schedulable, tMax: number, etaMin = 0) {
    super(optimizer);
    if (!(tMax > 0)) throw new OpError('CosineAnnealingLR', `tMax must be positive, got ${tMax}`);
    this.tMax = tMax;
    this.etaMin = etaMin;
    this.apply();
  }
  lrAt(epoch: number, i: number): number {
    return this.etaMin + ((this.baseLrs[i] - this.etaMin) * (1 + Math.cos((Math.PI * epoch) / this.tMax))) / 2;
  }
}

/** lr = base * lambda(epoch) (one function for all groups, or one per group). */
export class LambdaLR extends LRScheduler {
  readonly lambdas: ((epoch: number) => number)[];
  constructor(optimizer: Schedulable, lambda: ((epoch: number) => number) | readonly ((epoch: number) => number)[]) {
    super(optimizer);
    const n = optimizer.paramGroups.length;
    if (Array.isArray(lambda)) {
      if (lambda.length !== n) throw new OpError('LambdaLR', `${lambda.length} functions for ${n} parameter groups`);
      this.lambdas = [...lambda];
    } else {
      this.lambdas = new Array(n).fill(lambda);
    }
    this.apply();
  }
  lrAt(epoch: number, i: number): number {
    return this.baseLrs[i] * this.lambdas[i](epoch);
  }
}

export interface PlateauOptions {
  mode: 'min' | 'max';
  factor: number;
  patience: number;
  threshold: number;
  thresholdMode: 'rel' | 'abs';
  cooldown: number;
  minLr: number | readonly number[];
  eps: number;
}

/**
 * Divides the rate by 1/factor when a metric has not improved for `patience` epochs
 * (torch.optim.lr_scheduler.ReduceLROnPlateau, same defaults). The word LM uses factor 0.25.
 */
export class ReduceLROnPlateau {
  readonly optimizer: Schedulable;
  readonly opts: PlateauOptions;
  best: number;
  numBadEpochs = 0;
  cooldownCounter = 0;
  lastEpoch = 0;
  private readonly minLrs: number[];

  constructor(optimizer: Schedulable, opts: Partial<PlateauOptions> = {}) {
    this.optimizer = optimizer;
    this.opts = { mode: 'min', factor: 0.1, patience: 10, threshold: 1e-4, thresholdMode: 'rel', cooldown: 0, minLr: 0, eps: 1e-8, ...opts };
    if (!(this.opts.factor < 1)) throw new OpError('ReduceLROnPlateau', `factor must be < 1, got ${this.opts.factor}`);
    const n = optimizer.paramGroups.length;
    const m = this.opts.minLr;
    if (Array.isArray(m) && m.length !== n) throw new OpError('ReduceLROnPlateau', `${m.length} minLr values for ${n} groups`);
    this.minLrs = Array.isArray(m) ? [...m] : new Array(n).fill(m);
    this.best = this.opts.mode === 'min' ? Infinity : -Infinity;
  }

  /** Records the epoch's metric (e.g. validation loss) and reduces the rate if it plateaued. */
  step(metric: number): void {
    this.lastEpoch++;
    if (this.isBetter(metric)) {
      this.best = metric;
      this.numBadEpochs = 0;
    } else {
      this.numBadEpochs++;
    }
    if (this.cooldownCounter > 0) {
      this.cooldownCounter--;
      this.numBadEpochs = 0;
    }
    if (this.numBadEpochs > this.opts.patience) {
      this.optimizer.paramGroups.forEach((g, i) => {
        const old = g.options.lr;
        const next = Math.max(old * this.opts.factor, this.minLrs[i]);
        if (old - next > this.opts.eps) g.options.lr = next;
      });
      this.cooldownCounter = this.opts.cooldown;
      this.numBadEpochs = 0;
    }
  }

  private isBetter(a: number): boolean {
    const { mode, thresholdMode, threshold } = this.opts;
    const best = this.best;
    if (mode === 'min' && thresholdMode === 'rel') return a < best * (1 - threshold);
    if (mode === 'min') return a < best - threshold;
    if (thresholdMode === 'rel') return a > best * (threshold + 1);
    return a > best + threshold;
  }

  getLastLr(): number[] {
    return this.optimizer.paramGroups.map((g) => g.options.lr);
  }

  /** JSON-safe state (an infinite `best` is written as a string: JSON has no Infinity). */
  stateDict(): { best: number | string; numBadEpochs: number; cooldownCounter: number; lastEpoch: number } {
    const best = Number.isFinite(this.best) ? this.best : String(this.best);
    return { best, numBadEpochs: this.numBadEpochs, cooldownCounter: this.cooldownCounter, lastEpoch: this.lastEpoch };
  }

  loadStateDict(s: { best: number | string; numBadEpochs: number; cooldownCounter: number; lastEpoch: number }): void {
    this.best = Number(s.best);
    this.numBadEpochs = s.numBadEpochs;
    this.cooldownCounter = s.cooldownCounter;
    this.lastEpoch = s.lastEpoch;
  }
}
