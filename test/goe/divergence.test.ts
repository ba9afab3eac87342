/**
 * The divergence guard in every trainer (classifier loop, BigGAN, word LM): each is made to
 * diverge on purpose (an infinite or huge learning rate from a known step, or a BatchNorm
 * running_var set to Inf while the loss stays finite) and must stop with a DivergenceError that
 * names the phase, the step and the last good checkpoint, leaving only finite values in every
 * checkpoint file; a finite run gives the same losses, bit for bit, with the guard on and off.
 */
import { describe, it, expect, beforeAll } from 'vitest';
import { existsSync, mkdtempSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { engine } from '../helpers/gpu.ts';
import {
  DivergenceError, SGD, loadSafetensorsFile, manualSeed, readFileBytes, parseSafetensors, serializeSafetensors, toFloat32, runtime, tensor,
  type Tensor, type WritableTensor,
} from '../../src/engine/index.ts';
import { DataLoader } from '../../src/data/index.ts';
import { WideResNet, BigGANTrainer, trainBigGAN } from '../../src/models/index.ts';
import { trainLoop } from '../../src/goe/train/loop.ts';
import { trainWordLm } from '../../src/goe/train/word-lm.ts';
import { syntheticImages, syntheticTexts } from '../../src/goe/experiments/synthetic.ts';

beforeAll(async () => {
  await engine();
});

const dir = mkdtempSync(join(tmpdir(), 'goe-divergence-'));

/** Every float tensor of every checkpoint file under `dir` whose name starts with `stem` is finite. */
async function expectFiniteCheckpoints(stem: string): Promise<string[]> {
  const files = readdirSync(dir).filter((f) => f.startsWith(stem));
  for (const f of files) {
    const file = await loadSafetensorsFile(join(dir, f));
    for (const [name, t] of file.tensors) {
      if (t.dtype !== 'F32') continue;
      expect(toFloat32(t).every(Number.isFinite), `${f}: ${name} is finite`).toBe(true);
    }
  }
  return files;
}

async function rejection(p: Promise<unknown>): Promise<DivergenceError> {
  const e = await p.then(
    () => null,
    (err: unknown) => err,
  );
  expect(e, 'the run stopped with a DivergenceError').toBeInstanceOf(DivergenceError);
  return e as DivergenceError;
}

/** WRN-10-1 on 16 synthetic 8x8 images, batches of 4 (4 steps per epoch). */
function classifier(seed = 1) {
  const source = syntheticImages({ classes: 3, n: 16, seed, size: 8 });
  const loader = new DataLoader({ source, batchSize: 4, seed: 2, workers: 0 });
  const model = new WideResNet(3, { depth: 10, widenFactor: 1, pooling: 'global' });
  const opt = new SGD(model.parameters(), { lr: 0.05, momentum: 0.9 });
  return { loader, model, opt };
}

describe('the classifier loop stops on divergence', () => {
  it('an infinite learning rate after step 5: the loss at step 7 is named, the step-4 checkpoint kept', async () => {
    const { loader, model, opt } = classifier();
    const path = join(dir, 'cls-lr.safetensors');
    const err = await rejection(
      trainLoop({
        name: 'pretrain', model, loader, epochs: 3, optimizer: opt, loss: 'ce', logEvery: 100, checkpoint: path, log: () => {},
        onStep: (step) => {
          if (step === 5) opt.paramGroups[0]!.options.lr = Infinity; // step 6 makes every weight non-finite
        },
      }),
    );
    // the weights go bad in step 6's update; step 7's loss and gradients are the first non-finite values
    expect(err.step).toBe(7);
    expect(err.phase).toBe('pretrain');
    expect(err.sources).toEqual(['loss', 'gradients', 'state']);
    expect(err.checkpoint).toEqual({ path, step: 4 });
    expect(err.message).toContain('[pretrain] training diverged: the loss, the gradients and the model or optimizer state became non-finite at step 7 (the check at step 4 found everything finite).');
    expect(err.message).toContain(`the last good checkpoint is ${path} (written at step 4). Lower the learning rate, or resume from that checkpoint (--resume).`);
    expect(err.tensors).toContain('conv1.weight');
    expect(await expectFiniteCheckpoints('cls-lr')).toEqual(['cls-lr.safetensors']);
    const meta = JSON.parse((await loadSafetensorsFile(path)).metadata.meta!) as { loop: { step: number } };
    expect(meta.loop.step).toBe(4);
    await loader.close();
    opt.dispose();
    model.dispose();
  }, 120_000);

  it('a BatchNorm running_var at Inf with a finite loss: found at the next checkpoint, which is not written', async () => {
    const { loader, model, opt } = classifier();
    const path = join(dir, 'cls-bn.safetensors');
    const bn = [...model.stateDict()].find(([k]) => k.endsWith('running_var'))!;
    const err = await rejection(
      trainLoop({
        name: 'pretrain', model, loader, epochs: 3, optimizer: opt, loss: 'ce', logEvery: 100, checkpoint: path, checkpointEvery: 2, log: () => {},
        onStep: (step) => {
          const [, t] = bn;
          if (step === 3) runtime().device.upload(t.bufferFor('test'), t.offset * 4, new Float32Array(t.size).fill(Infinity));
        },
      }),
    );
    // step 4 normalises with batch statistics: its loss and gradients stay finite, only the state is not
    expect(err.sources).toEqual(['state']);
    expect(err.step).toBe(4);
    expect(err.tensors).toEqual([bn[0]]);
    expect(err.checkpoint).toEqual({ path, step: 2 });
    expect(err.message).toContain(`the model or optimizer state became non-finite between step 2 and step 4. Non-finite values are now in ${bn[0]}.`);
    await expectFiniteCheckpoints('cls-bn');
    const meta = JSON.parse((await loadSafetensorsFile(path)).metadata.meta!) as { loop: { step: number } };
    expect(meta.loop.step).toBe(2);
    await loader.close();
    opt.dispose();
    model.dispose();
  }, 120_000);

  it('a finite run gives the same losses, bit for bit, with the guard on and off', async () => {
    const runs: number[][] = [];
    for (const divergenceGuard of [true, false]) {
      manualSeed(7); // the same initial weights
      const { loader, model, opt } = classifier(4);
      const r = await trainLoop({ name: 'same', model, loader, epochs: 2, optimizer: opt, loss: 'ce', logEvery: 1, log: () => {}, divergenceGuard });
      runs.push(r.losses.map((l) => l.loss));
      await loader.close();
      opt.dispose();
      model.dispose();
    }
    expect(runs[0]!.length).toBe(8);
    expect(runs[0]).toEqual(runs[1]);
  }, 120_000);
});

describe('BigGAN stops on divergence', () => {
  const make = () => BigGANTrainer.create({ ch: 4, dimZ: 8, nClasses: 3, outChannels: 1, bottomWidth: 4, upsamples: 1 }, {}, { batchSize: 2, numDSteps: 2 });
  const x = () => tensor(Float32Array.from({ length: 4 * 8 * 8 }, (_, i) => Math.sin(i * 0.37)), [4, 1, 8, 8]);
  const y = () => tensor(Int32Array.from([0, 2, 1, 1]), [4], 'i32');

  it("D's learning rate infinite from iteration 4: stops at iteration 4, the iteration-2 checkpoint kept", async () => {
    const trainer = make();
    const xs = x();
    const ys = y();
    const path = join(dir, 'gan.safetensors');
    function* batches(): Generator<{ x: Tensor; y: Tensor }> {
      for (;;) {
        if (trainer.itr === 3) trainer.optD.paramGroups[0]!.options.lr = Infinity; // iteration 4's first D step ruins D
        yield { x: xs, y: ys };
      }
    }
    const err = await rejection(trainBigGAN(trainer, batches(), { iterations: 10, checkpointPath: path, checkpointEvery: 2, logEvery: 100 }));
    expect(err.phase).toBe('biggan');
    expect(err.step).toBe(4);
    expect(err.sources).toContain('loss');
    expect(err.checkpoint).toEqual({ path, step: 2 });
    expect(err.message).toContain('became non-finite at iteration 4 (the check at iteration 2 found everything finite)');
    expect(err.message).toContain(`the last good checkpoint is ${path} (written at iteration 2).`);
    expect(err.tensors.some((t) => t.startsWith('D.'))).toBe(true);
    await expectFiniteCheckpoints('gan');
    expect((await loadSafetensorsFile(path)).metadata.itr).toBe('2');
    trainer.dispose();
    xs.dispose();
    ys.dispose();
  }, 120_000);

  it('a finite run gives the same losses, bit for bit, with the guard on and off', async () => {
    const runs: number[][] = [];
    for (const divergenceGuard of [true, false]) {
      manualSeed(7); // the same initial weights and latents
      const trainer = make();
      const xs = x();
      const ys = y();
      const ls: number[] = [];
      const batches = function* (): Generator<{ x: Tensor; y: Tensor }> {
        for (;;) yield { x: xs, y: ys };
      };
      await trainBigGAN(trainer, batches(), { iterations: 4, logEvery: 1, divergenceGuard, onLog: (_i, l) => ls.push(l.dReal, l.dFake, l.g) });
      runs.push(ls);
      trainer.dispose();
      xs.dispose();
      ys.dispose();
    }
    expect(runs[0]!.length).toBe(12);
    expect(runs[0]).toEqual(runs[1]);
  }, 120_000);
});

describe('the word LM stops on divergence', () => {
  const texts = syntheticTexts({ classes: 2, n: 24, seed: 3 }).texts;
  const base = { texts, valTexts: texts.slice(0, 6), emsize: 8, nhid: 8, nlayers: 1, nhead: 2, dropout: 0.2, bptt: 6, batchSize: 4, evalBatchSize: 2, logEvery: 100, seed: 1, log: () => {} };
  const NB = 15; // batches per epoch of this corpus

  it('an infinite learning rate: stops at step 2 and returns no model; no checkpoint is written', async () => {
    const path = join(dir, 'lm-inf.safetensors');
    const err = await rejection(trainWordLm({ ...base, epochs: 2, lr: Infinity, checkpoint: path }));
    expect(err.phase).toBe('word-lm');
    expect(err.step).toBe(2);
    expect(err.checkpoint).toBeNull();
    expect(err.message).toContain('became non-finite at step 2 (epoch 1, batch 2)');
    expect(err.message).toContain(`no good checkpoint had been written yet (${path} was not written). Lower the learning rate.`);
    expect(existsSync(path)).toBe(false);
    expect(existsSync(`${path}.best`)).toBe(false);
  }, 120_000);

  it('resumed with a huge learning rate: stops in epoch 2 and keeps the epoch-1 checkpoints', async () => {
    const path = join(dir, 'lm-huge.safetensors');
    const first = await trainWordLm({ ...base, epochs: 1, checkpoint: path });
    first.model.dispose();
    // the resumed run takes the learning rate from the checkpoint: raise it there
    const file = parseSafetensors(await readFileBytes(path));
    const optim = JSON.parse(file.metadata.optimizer!) as { groups: { lr: number }[] };
    optim.groups[0]!.lr = 1e38;
    const tensors = new Map<string, WritableTensor>([...file.tensors].map(([k, t]) => [k, { shape: t.shape, data: toFloat32(t) }]));
    const { writeFileAtomic } = await import('../../src/engine/index.ts');
    await writeFileAtomic(path, serializeSafetensors(tensors, { ...file.metadata, optimizer: JSON.stringify(optim) }));

    const err = await rejection(trainWordLm({ ...base, epochs: 3, checkpoint: path, resume: true }));
    expect(err.step).toBeGreaterThan(NB);
    expect(err.step).toBeLessThanOrEqual(2 * NB);
    expect(err.checkpoint).toEqual({ path, step: NB });
    expect(err.message).toContain(`at step ${err.step} (epoch 2, batch ${err.step - NB})`);
    expect(err.message).toContain(`the last good checkpoint is ${path} (written at step ${NB} (epoch 1, batch ${NB})).`);
    expect(await expectFiniteCheckpoints('lm-huge')).toEqual(['lm-huge.safetensors', 'lm-huge.safetensors.best']);
    const meta = JSON.parse((await loadSafetensorsFile(path)).metadata.meta!) as { epoch: number };
    expect(meta.epoch).toBe(1);
  }, 120_000);

  it('a finite run gives the same validation loss, bit for bit, with the guard on and off', async () => {
    const v: number[] = [];
    for (const divergenceGuard of [true, false]) {
      const r = await trainWordLm({ ...base, epochs: 2, divergenceGuard });
      v.push(r.valLoss);
      r.model.dispose();
    }
    expect(Number.isFinite(v[0])).toBe(true);
    expect(v[0]).toBe(v[1]);
  }, 120_000);
});
