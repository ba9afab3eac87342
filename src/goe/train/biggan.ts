/**
 * Training the image generator as the paper did: a class-conditional BigGAN on the in-distribution
 * training images (BigGAN-PyTorch's launch_cifar_ema.sh settings, src/models' BigGANTrainer: 4 D
 * steps of batch 50 per G step, Adam 2e-4 betas (0, 0.999), hinge loss, EMA of G). Images are
 * scaled to [-1, 1] (Normalize(0.5, 0.5), as BigGAN-PyTorch's loaders). Batches of numDSteps x
 * batchSize images come from the data loader, epoch after epoch (dropLast), so a resumed run
 * (trainer checkpoint: G, D, G_ema, both Adams, RNG, class sampler, iteration) continues with the
 * batch it would have seen. Returns the generator to sample from (G_ema when kept). The last two
 * checkpoints are kept; a corrupt newest one is said and the previous one resumed from
 * (checkpoint-files.ts).
 */
import { manualSeed, tensor, type Tensor } from '../../engine/index.ts';
import { DataLoader, type Source } from '../../data/index.ts';
import { BigGANTrainer, trainBigGAN, type BigGANGenerator, type BigGANGeneratorOptions, type BigGANTrainConfig } from '../../models/index.ts';
import { formatDuration, type LogFn } from './log.ts';
import { loadNewestGoodCheckpoint, saveKeepingPrevious } from './checkpoint-files.ts';

export interface BigGANTrainOptions {
  train: Source;
  numClasses: number;
  iterations: number;
  generator?: BigGANGeneratorOptions;
  config?: Partial<BigGANTrainConfig>;
  checkpoint?: string;
  checkpointEvery?: number;
  resume?: boolean;
  logEvery?: number;
  seed?: number;
  workers?: number;
  log: LogFn;
  /** Called as each iteration starts, with the iteration count reached and the total (progress bars). */
  onIteration?: (itr: number, total: number) => void;
}

export async function trainBigGANOn(o: BigGANTrainOptions): Promise<{ trainer: BigGANTrainer; G: BigGANGenerator }> {
  manualSeed(o.seed ?? 0); // initial weights and latents do not depend on what the process did before
  const channels = o.train.sampleShape[0]!;
  const trainer = BigGANTrainer.create({ nClasses: o.numClasses, outChannels: channels, ...o.generator }, {}, { seed: o.seed ?? 0, ...o.config });
  let resumed = false;
  if (o.checkpoint !== undefined) {
    // every save keeps the one it replaces (trainer.load validates a whole file before restoring)
    const save = trainer.save.bind(trainer);
    trainer.save = (path, meta) => saveKeepingPrevious(path, (file) => save(file, meta));
  }
  if (o.resume && o.checkpoint !== undefined) {
    const found = await loadNewestGoodCheckpoint(o.checkpoint, (file) => trainer.load(file), o.log, 'biggan');
    resumed = found !== null;
    if (found !== null) o.log(`[biggan] resumed from ${found.file} at iteration ${trainer.itr}`);
  }
  const c = trainer.config;
  const loader = new DataLoader({
    source: o.train, batchSize: c.batchSize * c.numDSteps, dropLast: true, seed: o.seed ?? 0, workers: o.workers,
    transform: { mean: new Array<number>(channels).fill(0.5), std: new Array<number>(channels).fill(0.5) },
  });
  o.log(`[biggan] G ${trainer.G.numParameters()} / D ${trainer.D.numParameters()} parameters, ${o.iterations} iterations of ${c.numDSteps} x ${c.batchSize} images (${loader.numBatches} per epoch)`);
  const start = trainer.itr;
  const t0 = performance.now();
  async function* batches(): AsyncGenerator<{ x: Tensor; y: Tensor }> {
    let prev: Tensor[] = [];
    try {
      for (let epoch = Math.floor(start / loader.numBatches); ; epoch++) {
        let b = 0;
        for await (const batch of loader.epoch(epoch)) {
          if (epoch * loader.numBatches + b++ < start) continue;
          for (const t of prev) t.dispose();
          const x = tensor(batch.x, batch.shape);
          const y = tensor(batch.y, [batch.y.length], 'i32');
          prev = [x, y];
          o.onIteration?.(epoch * loader.numBatches + b, o.iterations);
          yield { x, y };
        }
      }
    } finally {
      for (const t of prev) t.dispose();
    }
  }
  try {
    await trainBigGAN(trainer, batches(), {
      iterations: o.iterations,
      checkpointPath: o.checkpoint,
      checkpointEvery: o.checkpointEvery,
      logEvery: o.logEvery,
      resumed,
      onLog: (itr, l) => {
        const rate = (itr - start) / ((performance.now() - t0) / 1000);
        o.log(`[biggan] iteration ${itr}/${o.iterations} D real ${l.dReal.toFixed(4)} D fake ${l.dFake.toFixed(4)} G ${l.g.toFixed(4)} ${rate.toFixed(2)} it/s eta ${formatDuration((o.iterations - itr) / Math.max(rate, 1e-9))}`);
      },
    });
  } finally {
    await loader.close();
  }
  return { trainer, G: trainer.Gema ?? trainer.G };
}
