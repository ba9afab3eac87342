// Saved scores: scores.npz read back by the data layer's .npz reader gives the same arrays, the
// metrics recomputed from it (in process, through readScoreFile's FILE.npz:KEY, and through
// `goe metrics`) equal the report's, and NumPy-written archives (stored and deflated) read too.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { NpzFile } from '../../src/data/index.ts';
import { computeOodMetrics } from '../../src/goe/metrics/index.ts';
import { readScoreFile, splitNpzKey } from '../../src/goe/metrics/read-score-file.ts';
import { readScoresNpz, scoreKey, scoresNpzArrays, setSlug, writeScoresNpz, type ScoresIndex } from '../../src/goe/report/index.ts';
import { evaluateScores, type RunScores } from '../../src/goe/train/evaluate.ts';

const GOE = join(import.meta.dirname, '..', '..', 'src', 'cli', 'goe.ts');
const NPZ_FIXTURES = join(import.meta.dirname, '..', 'fixtures', 'metrics', 'npz');

function scores(n: number, shift: number, seed: number, ties = false): Float64Array {
  let s = seed;
  return Float64Array.from({ length: n }, () => {
    s = (s * 16807) % 2147483647;
    const u = s / 2147483647;
    return Math.fround(ties ? Math.round(u * 8) / 8 + shift : u + shift);
  });
}

function run(): RunScores {
  return {
    detectors: ['MSP', 'Energy'],
    in: {
      name: 'in-distribution test',
      scores: { MSP: scores(500, 0, 1, true), Energy: scores(500, 0, 2) },
      labels: Int32Array.from({ length: 500 }, (_, i) => i % 10),
      predictions: Int32Array.from({ length: 500 }, (_, i) => (i % 3 === 0 ? (i + 1) % 10 : i % 10)),
    },
    ood: [
      { name: 'SVHN', scores: { MSP: scores(300, 0.3, 3, true), Energy: scores(300, 0.2, 4) } },
      { name: 'LSUN (resize)', scores: { MSP: scores(200, 0.1, 5, true), Energy: scores(200, 0.5, 6) } },
    ],
  };
}

describe('scores.npz', () => {
  const dir = mkdtempSync(join(tmpdir(), 'goe-scores-'));
  const path = join(dir, 'scores.npz');
  const original = run();
  const report = evaluateScores(original);

  it('names members <set>__<Detector> with slugged set names and "in" for the in-distribution set', () => {
    expect(setSlug('LSUN (resize)')).toBe('lsun-resize');
    expect(setSlug('Textures')).toBe('textures');
    expect(scoreKey('svhn', 'MSP')).toBe('svhn__MSP');
    const { arrays, index } = scoresNpzArrays(original);
    expect(Object.keys(arrays)).toEqual(['in__MSP', 'in__Energy', 'svhn__MSP', 'svhn__Energy', 'lsun-resize__MSP', 'lsun-resize__Energy', 'in__label', 'in__prediction']);
    expect(index.ood).toEqual([{ name: 'SVHN', key: 'svhn' }, { name: 'LSUN (resize)', key: 'lsun-resize' }]);
    const clash: RunScores = { ...original, ood: [...original.ood, { ...original.ood[0]!, name: 'svhn' }] };
    expect(() => scoresNpzArrays(clash)).toThrow(/"svhn" and "SVHN" both map to the member prefix "svhn"/);
  });

  it('reads back (data layer .npz reader) as the same float32 arrays, labels and predictions', async () => {
    const index = await writeScoresNpz(path, original);
    expect(JSON.parse(readFileSync(`${path}.json`, 'utf8'))).toEqual(index);
    const npz = await NpzFile.open(path);
    for (const set of [{ key: 'in', s: original.in }, { key: 'svhn', s: original.ood[0]! }, { key: 'lsun-resize', s: original.ood[1]! }]) {
      for (const d of original.detectors) {
        const a = await npz.array(scoreKey(set.key, d));
        expect(a.header.descr).toBe('<f4');
        expect(a.shape).toEqual([set.s.scores[d]!.length]);
        expect([...a.data]).toEqual(Array.from(set.s.scores[d]!));
      }
    }
    expect([...(await npz.array('in__label')).data]).toEqual([...original.in.labels!]);
    expect((await npz.array('in__prediction')).header.descr).toBe('<i4');
  });

  it('keeps float64 when float32 would merge distinct scores', () => {
    const precise: RunScores = { detectors: ['MSP'], in: { name: 'in', scores: { MSP: [0.1, 1 + 1e-12] } }, ood: [{ name: 'o', scores: { MSP: [1] } }] };
    const { arrays } = scoresNpzArrays(precise);
    expect(arrays['in__MSP']!.data).toBeInstanceOf(Float64Array);
    expect(arrays['o__MSP']!.data).toBeInstanceOf(Float32Array);
  });

  it('recomputed metrics equal the report: readScoresNpz + evaluateScores, and FILE.npz:KEY per set', async () => {
    await writeScoresNpz(path, original);
    const back = await readScoresNpz(path);
    expect(back.in.name).toBe('in-distribution test');
    expect(back.ood.map((s) => s.name)).toEqual(['SVHN', 'LSUN (resize)']);
    expect(evaluateScores(back)).toEqual(report);
    const index = JSON.parse(readFileSync(`${path}.json`, 'utf8')) as ScoresIndex;
    for (const d of original.detectors) {
      const inScores = readScoreFile(`${path}:${scoreKey('in', d)}`);
      index.ood.forEach((s, i) => {
        const m = computeOodMetrics(inScores, readScoreFile(`${path}:${scoreKey(s.key, d)}`));
        const row = report.reports[d]!.rows[i]!;
        expect(row.outlierSet).toBe(s.name);
        expect([m.auroc, m.auprIn, m.auprOut, m.fpr95tpr]).toEqual([row.auroc, row.auprIn, row.auprOut, row.fpr95tpr]);
      });
    }
  });

  it('`goe metrics --in scores.npz:in__MSP --out scores.npz:svhn__MSP --json` prints the report\'s numbers', async () => {
    await writeScoresNpz(path, original);
    const r = spawnSync(process.execPath, [GOE, 'metrics', '--in', `${path}:in__MSP`, '--out', `${path}:svhn__MSP`, '--json'], { encoding: 'utf8', timeout: 60_000 });
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    const row = report.reports['MSP']!.rows[0]!;
    expect(JSON.parse(r.stdout)).toEqual({ AUROC: row.auroc, 'AUPR-IN': row.auprIn, 'AUPR-OUT': row.auprOut, FPR95TPR: row.fpr95tpr, n_in: 500, n_out: 300 });
    const missing = spawnSync(process.execPath, [GOE, 'metrics', '--in', `${path}:in__Nope`, '--out', `${path}:svhn__MSP`], { encoding: 'utf8', timeout: 60_000 });
    expect(missing.status).toBe(2);
    expect(missing.stderr).toMatch(/no array 'in__Nope' in the \.npz \(has: in__MSP, in__Energy, /);
  });
});

describe('readScoreFile on NumPy-written .npz (scripts/fixtures/npz_scores.py)', () => {
  it('splits FILE.npz:KEY only after an .npz name', () => {
    expect(splitNpzKey('a/scores.npz:in__MSP')).toEqual({ file: 'a/scores.npz', key: 'in__MSP' });
    expect(splitNpzKey('C:/x.txt')).toEqual({ file: 'C:/x.txt', key: undefined });
    expect(splitNpzKey('x.npz')).toEqual({ file: 'x.npz', key: undefined });
  });

  it('reads float32 and float64 members of np.savez and np.savez_compressed archives', () => {
    for (const f of ['stored.npz', 'compressed.npz']) {
      expect([...readScoreFile(join(NPZ_FIXTURES, `${f}:in__MSP`))]).toEqual([0.2, 0.5, 0.5, 0.1].map(Math.fround));
      expect([...readScoreFile(join(NPZ_FIXTURES, `${f}:svhn__MSP`))]).toEqual([0.5, 0.9, 0.3]);
    }
  });

  it('takes a one-array .npz without a key and asks for one when there are several', () => {
    expect([...readScoreFile(join(NPZ_FIXTURES, 'single.npz'))]).toEqual([0.5, 0.9, 0.3]);
    expect(() => readScoreFile(join(NPZ_FIXTURES, 'stored.npz'))).toThrow(/holds 2 arrays; name one as .*stored\.npz:KEY \(has: in__MSP, svhn__MSP\)/);
  });
});
