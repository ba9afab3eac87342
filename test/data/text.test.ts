import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import {
  basicEnglish,
  basicEnglishReference,
  DataLoader,
  NEWSGROUPS20_CLASSES,
  numericalise,
  readLabelledLines,
  readTextLines,
  REUTERS52_CLASSES,
  textSource,
  Vocab,
} from '../../src/data/index.ts';
import { tempDir } from './helpers.ts';

const tmp = tempDir();
afterAll(tmp.cleanup);

describe('basic_english tokenizer', () => {
  it("gives torchtext's tokens on the reference inputs (Python's whitespace, lowercasing, patterns in order)", () => {
    const cases = JSON.parse(readFileSync(join(import.meta.dirname, 'fixtures', 'basic-english.json'), 'utf8')) as { input: string; tokens: string[] }[];
    for (const c of cases) {
      expect(basicEnglish(c.input), JSON.stringify(c.input)).toEqual(c.tokens);
      expect(basicEnglishReference(c.input), JSON.stringify(c.input)).toEqual(c.tokens);
    }
  });

  it('the one-pass tokenizer equals the literal regex algorithm on random punctuation soup', () => {
    const alphabet = [...'aZ09 .,;:!?()\'"<>/br\t\n', '<br />', '<br "/>', '\u00a0', '\x1c', '\u0085', '\ufeff', 'İ', 'Σ', 'ß'];
    let seed = 12345;
    for (let n = 0; n < 2000; n++) {
      let s = '';
      const len = n % 40;
      for (let k = 0; k < len; k++) {
        seed = (seed * 1103515245 + 12345) >>> 0;
        s += alphabet[seed % alphabet.length];
      }
      expect(basicEnglish(s), JSON.stringify(s)).toEqual(basicEnglishReference(s));
    }
  });

  it('examples', () => {
    expect(basicEnglish("You can't stop (now)!")).toEqual(['you', 'can', "'", 't', 'stop', '(', 'now', ')', '!']);
    expect(basicEnglish('a<br />b; c: "d"')).toEqual(['a', 'b', 'c', 'd']);
  });
});

describe('vocabulary and numericalisation', () => {
  const texts = [['b', 'a', 'c', 'a'], ['c', 'a', 'd'], ['e']];

  it('specials first, then by frequency, ties in code-point order; size and frequency limits', () => {
    const v = Vocab.build(texts);
    expect(v.tokens).toEqual(['<unk>', '<pad>', 'a', 'c', 'b', 'd', 'e']);
    expect([v.unkIndex, v.padIndex]).toEqual([0, 1]);
    expect(v.lookup('zzz')).toBe(0);
    expect(Vocab.build(texts, { maxSize: 2 }).tokens).toEqual(['<unk>', '<pad>', 'a', 'c']);
    expect(Vocab.build(texts, { minFreq: 2 }).tokens).toEqual(['<unk>', '<pad>', 'a', 'c']);
    expect(Vocab.fromJSON(JSON.parse(JSON.stringify(v))).tokens).toEqual(v.tokens);
    expect(() => new Vocab(['a', 'a', '<unk>', '<pad>'])).toThrow(/duplicate/);
  });

  it('left padding (default) and right padding; truncation keeps the first tokens (or the last)', () => {
    const v = Vocab.build(texts);
    expect([...numericalise([['a', 'b'], ['a', 'b', 'c', 'd', 'x']], v, { length: 4 })]).toEqual([1, 1, 2, 4, 2, 4, 3, 5]);
    expect([...numericalise([['a', 'b']], v, { length: 4, pad: 'right' })]).toEqual([2, 4, 1, 1]);
    expect([...numericalise([['a', 'b', 'c', 'd', 'x']], v, { length: 3, keep: 'last' })]).toEqual([3, 5, 0]);
    expect([...numericalise([[]], v, { length: 2 })]).toEqual([1, 1]);
  });

  it('token sources batch as int32 [N, L] with labels', async () => {
    const v = Vocab.build(texts);
    const src = textSource(texts, Int32Array.from([2, 0, 1]), v, { length: 3 });
    const loader = new DataLoader({ source: src, batchSize: 2, shuffle: false, workers: 0 });
    const got: number[][] = [];
    for await (const b of loader.epoch(0)) {
      expect(b.x).toBeInstanceOf(Int32Array);
      expect(b.shape[1]).toBe(3);
      got.push([...b.x, ...b.y]);
    }
    expect(got).toEqual([
      [4, 2, 3, 3, 2, 5, 2, 0],
      [1, 1, 6, 1],
    ]);
    await loader.close();
  });
});

describe('text file formats', () => {
  it('20 Newsgroups / Reuters52 `label<TAB>text` lines', async () => {
    const f = join(tmp.dir, '20ng-train-no-short.txt');
    writeFileSync(f, 'comp.graphics\tI need help with OpenGL.\nsci.space\tThe shuttle, launched (today)!\n\ntalk.religion.misc\tfaith\n');
    const d = await readLabelledLines(f, NEWSGROUPS20_CLASSES);
    expect([...d.labels]).toEqual([1, 14, 19]);
    expect(d.texts[1]).toBe('The shuttle, launched (today)!');
    const r = join(tmp.dir, 'r52-train.txt');
    writeFileSync(r, 'earn\tprofit rose pct \ntrade\tasian exporters fear damage \n');
    expect([...(await readLabelledLines(r, REUTERS52_CLASSES)).labels]).toEqual([12, 48]);
    // without a class list: sorted distinct labels; whitespace-separated lines work too
    const w = join(tmp.dir, 'plain.txt');
    writeFileSync(w, 'b some text\na other text\n');
    const p = await readLabelledLines(w);
    expect(p.classes).toEqual(['a', 'b']);
    expect([...p.labels]).toEqual([1, 0]);
    writeFileSync(w, 'comp.graphics\tok\nnot.a.group\tbad\n');
    await expect(readLabelledLines(w, NEWSGROUPS20_CLASSES)).rejects.toThrow(/plain\.txt: document 2: label 'not\.a\.group' is not one of the 20 classes/);
    writeFileSync(w, Buffer.from([0x61, 0x09, 0xff, 0xfe]));
    await expect(readLabelledLines(w)).rejects.toThrow(/plain\.txt: text file is not valid UTF-8/);
  });

  it('sentence-per-line files (Multi30k, WMT16, WikiText-2)', async () => {
    const f = join(tmp.dir, 'wiki.train.tokens');
    writeFileSync(f, ' \n = Valkyria Chronicles III = \n\n Senjō no Valkyria 3 : <unk> Chronicles\r\n"a quoted , csv line ."\n');
    const lines = await readTextLines(f);
    expect(lines).toHaveLength(3);
    expect(basicEnglish(lines[2]!)).toEqual(['a', 'quoted', ',', 'csv', 'line', '.']);
    expect(await readTextLines(f, { keepEmpty: true })).toHaveLength(5);
  });
});
