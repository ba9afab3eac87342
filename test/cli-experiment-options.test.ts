/**
 * `goe experiment`'s options for the user's data and the fmnist budget, parsed in-process: what
 * they set, and the one-line usage errors (exit 2 in the dispatcher) for bad values, raised before
 * anything runs.
 */
import { describe, expect, it } from 'vitest';
import { parseExperimentArgs } from '../src/cli/experiment.ts';
import { UsageError } from '../src/cli/subcommand.ts';

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
    ];
    for (const [args, msg] of bad) expect(() => parseExperimentArgs(['fmnist', ...args]), args.join(' ')).toThrow(UsageError);
    for (const [args, msg] of bad) expect(() => parseExperimentArgs(['fmnist', ...args]), args.join(' ')).toThrow(msg);
  });
});
