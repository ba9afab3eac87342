/**
 * bench/train_step.ts's model list (issue 16, item 5): the names are checked before the adapter
 * starts, so an unknown one exits 2 at once and the opt-in vit, resnet101 and biggan128 are
 * accepted beside the default five (no model is built or run here).
 */
import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';

function trainStep(models: string) {
  return spawnSync(process.execPath, ['bench/train_step.ts', '--no-torch', '--models', models], { encoding: 'utf8', timeout: 60_000 });
}

describe('bench/train_step.ts --models', () => {
  it('exits 2 on an unknown model, naming it and every known one', () => {
    const r = trainStep('wrn40,vitt');
    expect(r.status).toBe(2);
    expect(r.stderr).toContain(`unknown model 'vitt'`);
    for (const name of ['wrn40', 'wrn10', 'biggan', 'gru', 'lm', 'vit', 'resnet101', 'biggan128']) expect(r.stderr).toContain(name);
  });

  it('accepts vit, resnet101 and biggan128: only the unknown name after them is refused', () => {
    const r = trainStep('vit,resnet101,biggan128,wrn10,gru,lm,biggan,nope');
    expect(r.status).toBe(2);
    expect(r.stderr).toContain(`unknown model 'nope'`);
    expect(r.stderr.match(/unknown model/g)).toHaveLength(1);
  });
});
