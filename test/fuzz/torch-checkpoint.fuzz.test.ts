/**
 * Fuzzing the PyTorch checkpoint reader (src/data/torch-checkpoint.ts, used by goe convert and
 * --pretrained): mutated torch.save files of both layouts (zip and legacy) end in a DataError or a
 * state dict whose every tensor holds exactly shape x element-size bytes, within the harness's time
 * and memory bounds; no generic exception, no unbounded allocation.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { afterAll, describe, expect, it } from 'vitest';
import { readTorchStateDict } from '../../src/data/torch-checkpoint.ts';
import { fuzz, mutated, outcome, scratch, type Stats } from './harness.ts';

const fixture = (name: string): Uint8Array => new Uint8Array(readFileSync(new URL(`../fixtures/vit_resnet/${name}`, import.meta.url)));
const seeds = ['views_dtypes.pth', 'views_dtypes_legacy.pth', 'not_a_state_dict.pth', 'big_endian.pth', 'expanded_view.pth'].map(fixture);

const stats: Record<string, Stats> = {};
afterAll(() => console.log(JSON.stringify(stats)));

describe('fuzz: torch checkpoints', () => {
  const tmp = scratch('goe-fuzz-torch-');
  afterAll(tmp.cleanup);

  it('mutated zip and legacy files: a DataError naming the file, or tensors of consistent sizes', async () => {
    const f = tmp.file('model.pth');
    stats.torchCheckpoint = await fuzz('torch checkpoint', 1000, mutated(seeds), async (b, s) => {
      writeFileSync(f, b);
      const o = await outcome(() => readTorchStateDict(f), s, b.length);
      if (o.error) expect(o.error.message).toContain(f);
      else {
        for (const [k, t] of o.value!.tensors) {
          expect(t.data.length, k).toBe(t.shape.reduce((a, d) => a * d, 1));
        }
      }
    });
  });
});
