/**
 * `goe experiment`'s options for the user's data and the fmnist budget, parsed in-process: what
 * they set, and the one-line usage errors (exit 2 in the dispatcher) for bad values, raised before
 * anything runs.
 */
import { describe, expect, it } from 'vitest';
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseExperimentArgs } from '../src/cli/experiment.ts';
import { UsageError } from '../src/cli/subcommand.ts';
import { ExperimentInputError, FMNIST, SMOKE, isInputError, runExperiment } from '../src/goe/index.ts';

describe('goe experiment options', () => {
  it('--ood NAME=PATH (repeatable), --train/--test, --model, --full, --sigma2/--latent-scale/--sample-mode', () => {
    const { name, opts } = parseExperimentArgs([
      'images', '--ood', 'mine=a/b-idx3-ubyte.gz', '--ood', 'faces=x=y.npz', '--train', 'tr', '--test', 'te', '--model', 'wrn-16-2', '--full',
      '--sigma2', '2', '--latent-scale', 'variance', '--sample-mode', 'eval',
    ]);
    expect(name).toBe('images');
    expect(opts.ood).toEqual([{ name: 'mine', path: 'a/b-idx3-ubyte.gz' }, { name: 'faces', path: 'x=y.npz' }]);
    expect([opts.train, opts.test, opts.model, opts.full]).toEqual(['tr', 'te', 'wrn-16-2', true]);
    expect(opts.latent).toEqual({ sigma2: 2, scale: 'variance', mode: 'eval' });
    const auto = parseExperimentArgs(['fmnist', '--sigma2', 'auto', '--select-criterion', 'msp-quantile']).opts;
    expect([auto.auto, auto.latent, auto.selectCriterion]).toEqual(['sigma2', undefined, 'msp-quantile']);
    const plain = parseExperimentArgs(['fmnist']).opts;
    expect([plain.ood, plain.latent, plain.full]).toEqual([undefined, undefined, false]);
  });

  it('bad values are usage errors that say what the option takes', () => {
    const bad: [string[], RegExp][] = [
      [['--ood', 'noequals'], /--ood takes NAME=PATH/],
      [['--ood', '=path'], /--ood takes NAME=PATH/],
      [['--ood', 'a=x', '--ood', 'a=y'], /--ood a is given twice/],
      [['--model', 'wrn-11-2'], /--model takes wrn-D-K with depth D = 6n \+ 4/],
      [['--model', 'resnet'], /--model takes wrn-D-K/],
      [['--sigma2=-1'], /--sigma2 takes a finite number >= 0/],
      [['--sigma2', 'big'], /--sigma2 takes a finite number >= 0/],
      [['--latent-scale', 'var'], /--latent-scale takes std or variance/],
      [['--sample-mode', 'test'], /--sample-mode takes train or eval/],
      [['--select-criterion', 'feature-band'], /--select-criterion applies to --sigma2 auto/],
      [['--sigma2', 'auto', '--select-criterion', 'proxy-ood'], /proxy-ood needs a sweep/],
      [['--sigma2', 'auto', '--select-criterion', 'all'], /--select-criterion takes feature-band or msp-quantile/],
      [['--temperature', 'auto', '--select-criterion', 'feature-band'], /feature-band is for image experiments/],
    ];
    for (const [args, msg] of bad) expect(() => parseExperimentArgs(['fmnist', ...args]), args.join(' ')).toThrow(UsageError);
    for (const [args, msg] of bad) expect(() => parseExperimentArgs(['fmnist', ...args]), args.join(' ')).toThrow(msg);
  });
});

describe('the run folder is checked before anything is written', () => {
  it('--out that is a file, or cannot be written, is an input error (exit 2)', async () => {
    const root = mkdtempSync(join(tmpdir(), 'goe-out-'));
    try {
      writeFileSync(join(root, 'file'), 'x');
      const e1 = await runExperiment(SMOKE, { out: join(root, 'file'), log: () => {} }).catch((e) => e);
      expect(e1).toBeInstanceOf(ExperimentInputError);
      expect(isInputError(e1)).toBe(true);
      expect((e1 as Error).message).toMatch(/--out .*file is a file, not a folder/);
      await expect(runExperiment(SMOKE, { out: '/proc/goe-x', log: () => {} })).rejects.toThrow(/--out \/proc\/goe-x cannot be written/);
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });

  it("--resume on another experiment's folder, or with other settings, is refused and leaves the folder byte-identical", async () => {
    const dir = mkdtempSync(join(tmpdir(), 'goe-resume-'));
    try {
      mkdirSync(join(dir, 'baseline'));
      writeFileSync(join(dir, 'baseline', 'model.safetensors'), 'weights');
      writeFileSync(join(dir, 'config.json'), JSON.stringify({ ...SMOKE, run: {} }));
      const before = () => readdirSync(dir, { recursive: true }).map(String).sort().map((f) => [f, f.includes('.') ? readFileSync(join(dir, f), 'utf8') : '']);
      const snapshot = JSON.stringify(before());
      await expect(runExperiment(FMNIST, { out: dir, resume: true, log: () => {} })).rejects.toThrow(/holds a run of "smoke", not "fmnist"/);
      await expect(runExperiment(SMOKE, { out: dir, resume: true, epochs: 7, log: () => {} })).rejects.toThrow(/other settings \(finetune differ\)/);
      expect(JSON.stringify(before())).toBe(snapshot);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
