// scoreRun keeps every per-sample score, label and argmax prediction in the set's order, across
// batches; evaluateDetectors' result is evaluateScores of those scores (so a saved scores.npz
// recomputes the report), with accuracy from the saved labels and predictions.
import { beforeAll, describe, expect, it } from 'vitest';
import { Module, reshape, type Tensor } from '../../src/engine/index.ts';
import type { ArraySource } from '../../src/data/index.ts';
import { evaluateDetectors, evaluateScores, scoreRun } from '../../src/goe/train/evaluate.ts';
import { engine } from '../helpers/gpu.ts';

beforeAll(async () => {
  await engine();
});

/** Logits are the input's values: sample i of [N, 1, 1, K] scores K classes. */
class Identity extends Module {
  forward(x: Tensor): Tensor {
    return reshape(x, [x.shape[0]!, -1]);
  }
}

const K = 4;
function source(name: string, n: number, seed: number, labelled: boolean): ArraySource {
  let s = seed;
  const data = Float32Array.from({ length: n * K }, () => ((s = (s * 16807) % 2147483647) / 2147483647) * 6 - 3);
  const labels = labelled ? Int32Array.from({ length: n }, (_, i) => i % K) : null;
  return { kind: 'array', name, length: n, sampleShape: [1, 1, K], layout: 'CHW', dtype: 'float32', data, labels };
}

function reference(src: ArraySource): { msp: number[]; energy: number[]; pred: number[] } {
  const out = { msp: [] as number[], energy: [] as number[], pred: [] as number[] };
  for (let i = 0; i < src.length; i++) {
    const z = Array.from(src.data.subarray(i * K, (i + 1) * K) as Float32Array);
    const m = Math.max(...z);
    const lse = m + Math.log(z.reduce((a, v) => a + Math.exp(v - m), 0));
    out.msp.push(-Math.exp(m - lse));
    out.energy.push(-lse);
    out.pred.push(z.indexOf(m));
  }
  return out;
}

describe('scoreRun / evaluateScores', () => {
  const inSet = { name: 'in-distribution test', source: source('in', 23, 1, true) };
  const ood = [{ name: 'A', source: source('a', 17, 2, false) }, { name: 'B', source: source('b', 9, 3, false) }];
  const opts = { detectors: ['MSP', 'Energy'] as const, batchSize: 5, workers: 0 };

  it('keeps per-sample scores, labels and predictions in order across batches', async () => {
    const run = await scoreRun(new Identity(), inSet, ood, { ...opts, detectors: [...opts.detectors] });
    const ref = reference(inSet.source);
    expect(Array.from(run.in.scores['MSP']!)).toEqual(ref.msp.map((v) => expect.closeTo(v, 5)));
    expect(Array.from(run.in.scores['Energy']!)).toEqual(ref.energy.map((v) => expect.closeTo(v, 4)));
    expect([...run.in.labels!]).toEqual([...inSet.source.labels!]);
    expect([...run.in.predictions!]).toEqual(ref.pred);
    expect(run.ood.map((s) => [s.name, s.scores['MSP']!.length, s.labels])).toEqual([['A', 17, undefined], ['B', 9, undefined]]);
    expect(Array.from(run.ood[1]!.scores['Energy']!)).toEqual(reference(ood[1]!.source).energy.map((v) => expect.closeTo(v, 4)));

    const evaluation = await evaluateDetectors(new Identity(), inSet, ood, { ...opts, detectors: [...opts.detectors] });
    expect(evaluateScores(run)).toEqual(evaluation);
    const correct = ref.pred.filter((p, i) => p === i % K).length;
    expect(evaluation.accuracy).toBe(correct / 23);
  });
});
