// Reading score files: one number per line, JSON arrays, and 1-D float32/float64 .npy files
// (checked on real np.save output committed by scripts/fixtures/sklearn_metrics.py).
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseNpyScores } from '../../src/goe/metrics/npy.ts';
import { readScoreFile } from '../../src/goe/metrics/read-score-file.ts';
import { ScoreFileError } from '../../src/goe/metrics/score-file-error.ts';
import { parseScoreJson, parseScoreLines } from '../../src/goe/metrics/score-text.ts';

const NPY_DIR = join(import.meta.dirname, '..', 'fixtures', 'metrics', 'npy');
const npyExpected = JSON.parse(readFileSync(join(NPY_DIR, 'expected.json'), 'utf8')) as Record<string, number[]>;

describe('parseScoreLines', () => {
  it('reads one number per line, skipping blank lines, with CRLF and any decimal notation', () => {
    const scores = parseScoreLines('0.5\n\n-1.25\r\n  3e-7  \n+2\n.5\n1.\n-4.5E+2\n\n', 's.txt');
    expect([...scores]).toEqual([0.5, -1.25, 3e-7, 2, 0.5, 1, -450]);
  });

  it('names the file and line of a non-numeric entry', () => {
    expect(() => parseScoreLines('0.1\n\nabc\n', 's.txt')).toThrow('s.txt:3: "abc" is not a number; expected one score per line');
    expect(() => parseScoreLines('0.1 0.2\n', 's.txt')).toThrow(/s\.txt:1: "0\.1 0\.2" is not a number/);
    expect(() => parseScoreLines('0x10\n', 's.txt')).toThrow(/s\.txt:1: .*not a number/);
  });

  it('names the file and line of NaN and infinite scores', () => {
    expect(() => parseScoreLines('1\n2\nnan\n', 's.txt')).toThrow('s.txt:3: score "nan" is NaN; scores must be finite numbers');
    expect(() => parseScoreLines('1\n-inf\n', 's.txt')).toThrow(/s\.txt:2: score "-inf" is infinite/);
    expect(() => parseScoreLines('Infinity\n', 's.txt')).toThrow(/s\.txt:1: score "Infinity" is infinite/);
    expect(() => parseScoreLines('1\n1e999\n', 's.txt')).toThrow(/s\.txt:2: score "1e999" overflows to infinity/);
  });

  it('rejects a file without scores', () => {
    expect(() => parseScoreLines('', 'e.txt')).toThrow('e.txt: no scores: the file is empty or has only blank lines');
    expect(() => parseScoreLines('\n  \n\r\n', 'e.txt')).toThrow(/e\.txt: no scores/);
  });

  it('throws ScoreFileError carrying the source and line', () => {
    try {
      parseScoreLines('1\nx\n', 'f.txt');
      expect.unreachable();
    } catch (error) {
      expect(error).toBeInstanceOf(ScoreFileError);
      expect(error).toMatchObject({ source: 'f.txt', line: 2 });
    }
  });
});

describe('parseScoreJson', () => {
  it('reads an array of numbers', () => {
    expect([...parseScoreJson('[0.5, -1, 2e3]', 'a.json')]).toEqual([0.5, -1, 2000]);
  });

  it('rejects invalid JSON, non-arrays, empty arrays and non-numbers', () => {
    expect(() => parseScoreJson('[1, 2', 'a.json')).toThrow(/a\.json: invalid JSON/);
    expect(() => parseScoreJson('{"a": 1}', 'a.json')).toThrow('a.json: expected a JSON array of numbers');
    expect(() => parseScoreJson('[]', 'a.json')).toThrow('a.json: no scores: the JSON array is empty');
    expect(() => parseScoreJson('[1, null]', 'a.json')).toThrow(/a\.json: element 1 is null, not a number/);
    expect(() => parseScoreJson('[1, "2"]', 'a.json')).toThrow(/element 1 is "2"/);
    expect(() => parseScoreJson('[1e999]', 'a.json')).toThrow(/element 0 overflows to infinity/);
  });
});

describe('parseNpyScores on files written by np.save', () => {
  const read = (name: string) => parseNpyScores(readFileSync(join(NPY_DIR, name)), name);

  it('reads 1-D little-endian float64, float32 and Fortran-order arrays', () => {
    expect([...read('scores_f8.npy')]).toEqual(npyExpected['scores_f8.npy']);
    expect([...read('scores_f4.npy')]).toEqual(npyExpected['scores_f4.npy']);
    expect([...read('scores_f8_fortran.npy')]).toEqual(npyExpected['scores_f8.npy']);
  });

  it('explains what it cannot read', () => {
    expect(() => read('scores_2d.npy')).toThrow("scores_2d.npy: .npy array has shape (2, 3); expected a 1-D array of scores");
    expect(() => read('scores_be.npy')).toThrow(/scores_be\.npy: \.npy dtype '>f8' is not supported/);
    expect(() => read('scores_int.npy')).toThrow(/dtype '<i8' is not supported/);
    expect(() => read('scores_empty.npy')).toThrow('scores_empty.npy: no scores: the .npy array is empty');
    expect(() => read('scores_nan.npy')).toThrow('scores_nan.npy: element 2 is NaN; scores must be finite numbers');
  });

  it('rejects non-npy and truncated data', () => {
    expect(() => parseNpyScores(new TextEncoder().encode('0.1\n0.2\n'), 'x.npy')).toThrow(/x\.npy: not a \.npy file/);
    const whole = readFileSync(join(NPY_DIR, 'scores_f8.npy'));
    expect(() => parseNpyScores(whole.subarray(0, whole.length - 3), 'cut.npy')).toThrow(/cut\.npy: truncated \.npy data/);
    expect(() => parseNpyScores(whole.subarray(0, 20), 'cut.npy')).toThrow(/cut\.npy: truncated \.npy header/);
  });

  it('reads format version 2.0 headers and data at an unaligned byte offset', () => {
    const scores = [1.5, -2.25, 1e-300];
    const bytes = npyV2(scores);
    const unaligned = new Uint8Array(bytes.length + 3);
    unaligned.set(bytes, 3);
    expect([...parseNpyScores(unaligned.subarray(3), 'v2.npy')]).toEqual(scores);
  });
});

describe('readScoreFile', () => {
  const dir = mkdtempSync(join(tmpdir(), 'goe-scores-'));

  it('picks the format from the content and extension', () => {
    writeFileSync(join(dir, 'a.txt'), '1\n2\n');
    writeFileSync(join(dir, 'b.json'), '[3, 4]');
    writeFileSync(join(dir, 'c.npy'), npyV2([5, 6]));
    writeFileSync(join(dir, 'd.scores'), npyV2([7])); // .npy content under another name
    expect([...readScoreFile(join(dir, 'a.txt'))]).toEqual([1, 2]);
    expect([...readScoreFile(join(dir, 'b.json'))]).toEqual([3, 4]);
    expect([...readScoreFile(join(dir, 'c.npy'))]).toEqual([5, 6]);
    expect([...readScoreFile(join(dir, 'd.scores'))]).toEqual([7]);
  });

  it('names a missing file', () => {
    const missing = join(dir, 'missing.txt');
    expect(() => readScoreFile(missing)).toThrow(new RegExp(`^${missing.replace(/[.]/g, '\\.')}: cannot read file: .*ENOENT`));
  });
});

/** A version 2.0 .npy of little-endian float64 (a 4-byte header length, unlike np.save's usual 1.0). */
function npyV2(values: number[]): Uint8Array {
  let header = `{'descr': '<f8', 'fortran_order': False, 'shape': (${values.length},), }`;
  while ((12 + header.length + 1) % 64 !== 0) header += ' ';
  header += '\n';
  const bytes = new Uint8Array(12 + header.length + values.length * 8);
  bytes.set([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, 2, 0]);
  const view = new DataView(bytes.buffer);
  view.setUint32(8, header.length, true);
  bytes.set(new TextEncoder().encode(header), 12);
  values.forEach((v, i) => view.setFloat64(12 + header.length + i * 8, v, true));
  return bytes;
}
