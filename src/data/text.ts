/**
 * Text: the line formats of the GOE text datasets, torchtext's `basic_english` tokenizer, a
 * vocabulary built from the training set, and numericalisation to fixed-length id sequences
 * (left padding by default, as the OE repository's `pad_first=True`).
 *
 * File formats (as the OE repository and pytorch-ood read them):
 *  - 20 Newsgroups (`20ng-{train,test}-no-short.txt`) and Reuters52 (`r52-{train,test}.txt`): one
 *    document per line, `label<TAB>text` (the label is the first whitespace-separated field, e.g.
 *    `comp.graphics` or `earn`).
 *  - Multi30k (`train.txt`, `val.txt`), WMT16 (`wmt16_sentences`): one sentence per line, unlabelled
 *    (some Multi30k lines are CSV-quoted; the quotes disappear in tokenisation).
 *  - WikiText-2 (`wikitext-2/wiki.{train,valid,test}.tokens`): one paragraph or heading per line.
 */
import { readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { DataError } from './errors.ts';
import { sharedInt32 } from './shared.ts';
import type { ArraySource } from './source.ts';

/** Python's str.isspace() characters (what `\s` and str.split() use in Python 3), not JavaScript's `\s`. */
const PY_WS = '\\t\\n\\v\\f\\r\\x1c-\\x1f \\x85\\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000';
const WS_RUN = new RegExp(`[${PY_WS}]+`, 'g');

/** torchtext's basic_english patterns and replacements, applied in this order after lowercasing. */
const BASIC_ENGLISH: [RegExp, string][] = [
  [/'/g, " '  "],
  [/"/g, ''],
  [/\./g, ' . '],
  [/<br \/>/g, ' '],
  [/,/g, ' , '],
  [/\(/g, ' ( '],
  [/\)/g, ' ) '],
  [/!/g, ' ! '],
  [/\?/g, ' ? '],
  [/;/g, ' '],
  [/:/g, ' '],
  [WS_RUN, ' '],
];

/** Characters that become tokens of their own, and those that become spaces. */
const OWN_TOKEN = new Set(["'", '.', ',', '(', ')', '!', '?']);
const TO_SPACE = new Set([';', ':']);
const PY_SPACE = new RegExp(`^[${PY_WS}]$`);
const IS_SPACE = new Uint8Array(0x3001);
for (let c = 0; c < IS_SPACE.length; c++) IS_SPACE[c] = PY_SPACE.test(String.fromCharCode(c)) ? 1 : 0;

/**
 * torchtext `get_tokenizer('basic_english')`: the same tokens on the same input. torchtext lowercases
 * and applies 12 regex replacements in order, then splits on whitespace; this does it in one pass, which
 * is equivalent: removing '"' is the only step that can create or break a '<br />', and every other
 * replacement only puts spaces around a character (or replaces it by a space). `basicEnglishReference`
 * is the literal regex version.
 */
export function basicEnglish(line: string): string[] {
  const s = line.toLowerCase().replaceAll('"', '').replaceAll('<br />', ' ');
  const out: string[] = [];
  let start = -1;
  for (let i = 0; i < s.length; i++) {
    const code = s.charCodeAt(i);
    const space = code < IS_SPACE.length && IS_SPACE[code] === 1;
    if (space || (code < 128 && (OWN_TOKEN.has(s[i]!) || TO_SPACE.has(s[i]!)))) {
      if (start >= 0) out.push(s.slice(start, i));
      start = -1;
      if (!space && OWN_TOKEN.has(s[i]!)) out.push(s[i]!);
    } else if (start < 0) start = i;
  }
  if (start >= 0) out.push(s.slice(start));
  return out;
}

/** The literal torchtext algorithm (lowercase, the 12 regex replacements in order, split); slower, kept for checking. */
export function basicEnglishReference(line: string): string[] {
  let s = line.toLowerCase();
  for (const [re, rep] of BASIC_ENGLISH) s = s.replace(re, rep);
  return splitWhitespace(s);
}

/** Python's str.split() with no arguments. */
export function splitWhitespace(s: string): string[] {
  return s.split(WS_RUN).filter((t) => t !== '');
}

/** Compare by Unicode code points (Python's str ordering), not UTF-16 units. */
function compareCodePoints(a: string, b: string): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const x = a.codePointAt(i)!;
    const y = b.codePointAt(i)!;
    if (x !== y) return x - y;
    if (x > 0xffff) i++;
  }
  return a.length - b.length;
}

export interface VocabOptions {
  /** Most non-special tokens to keep (the legacy torchtext `max_size`, e.g. 10000 in the OE repository). */
  maxSize?: number;
  /** Keep tokens seen at least this often (default 1). */
  minFreq?: number;
  /** Special tokens, first (default ['<unk>', '<pad>']: unk 0, pad 1, as torchtext legacy and the OE GRU's padding_idx=1). */
  specials?: string[];
  /** Token unknown words map to (default '<unk>'; must be among the specials). */
  unk?: string;
  /** Padding token (default '<pad>'; must be among the specials). */
  pad?: string;
}

/** Token vocabulary: specials first, then tokens by decreasing frequency, ties in code-point order (as torchtext). */
export class Vocab {
  readonly tokens: string[];
  readonly unkIndex: number;
  readonly padIndex: number;
  private readonly index: Map<string, number>;

  constructor(tokens: string[], unk = '<unk>', pad = '<pad>') {
    this.tokens = tokens;
    this.index = new Map(tokens.map((t, i) => [t, i]));
    if (this.index.size !== tokens.length) throw new DataError('vocabulary has duplicate tokens');
    const u = this.index.get(unk);
    const p = this.index.get(pad);
    if (u === undefined || p === undefined) throw new DataError(`vocabulary lacks the unknown '${unk}' or padding '${pad}' token`);
    this.unkIndex = u;
    this.padIndex = p;
  }

  /** Build from tokenised training texts. */
  static build(texts: Iterable<readonly string[]>, opts: VocabOptions = {}): Vocab {
    const specials = opts.specials ?? ['<unk>', '<pad>'];
    const counts = new Map<string, number>();
    for (const t of texts) for (const w of t) counts.set(w, (counts.get(w) ?? 0) + 1);
    for (const s of specials) counts.delete(s);
    const minFreq = opts.minFreq ?? 1;
    let words = [...counts].filter(([, c]) => c >= minFreq);
    words.sort((a, b) => b[1] - a[1] || compareCodePoints(a[0], b[0]));
    if (opts.maxSize !== undefined) words = words.slice(0, opts.maxSize);
    return new Vocab([...specials, ...words.map(([w]) => w)], opts.unk, opts.pad);
  }

  get size(): number {
    return this.tokens.length;
  }

  lookup(token: string): number {
    return this.index.get(token) ?? this.unkIndex;
  }

  toJSON(): { tokens: string[]; unk: string; pad: string } {
    return { tokens: this.tokens, unk: this.tokens[this.unkIndex]!, pad: this.tokens[this.padIndex]! };
  }

  static fromJSON(j: { tokens: string[]; unk: string; pad: string }): Vocab {
    return new Vocab(j.tokens, j.unk, j.pad);
  }
}

export interface NumericaliseOptions {
  /**
   * Fixed sequence length (truncating and padding, the OE repository), or 'batch-longest': every
   * sequence whole, left-padded with `padId` to the longest of its batch by the loader (the GOE
   * notebooks' collate_batch; only textSource takes it).
   */
  length: number;
  /** Where padding goes: 'left' (default; torchtext pad_first=True, the OE repository and GOE) or 'right'. */
  pad?: 'left' | 'right';
  /** Which tokens survive truncation: 'first' (default; torchtext fix_length keeps the start) or 'last'. */
  keep?: 'first' | 'last';
}

/** Token ids, N x length, in a shared Int32Array. */
export function numericalise(texts: readonly (readonly string[])[], vocab: Vocab, opts: NumericaliseOptions): Int32Array {
  const L = opts.length;
  if (!(L >= 1) || !Number.isInteger(L)) throw new RangeError(`numericalise: length must be a positive integer, got ${L}`);
  const out = sharedInt32(texts.length * L);
  out.fill(vocab.padIndex);
  const left = (opts.pad ?? 'left') === 'left';
  const keepFirst = (opts.keep ?? 'first') === 'first';
  texts.forEach((t, i) => {
    const n = Math.min(L, t.length);
    const from = keepFirst ? 0 : t.length - n;
    const at = i * L + (left ? L - n : 0);
    for (let k = 0; k < n; k++) out[at + k] = vocab.lookup(t[from + k]!);
  });
  return out;
}

export type TextSourceOptions = Omit<NumericaliseOptions, 'length'> & {
  length: number | 'batch-longest';
  /** Padding id of 'batch-longest' sources (default vocab.padIndex; the notebooks pad with 0, <unk>). */
  padId?: number;
  name?: string;
  classes?: string[];
};

/**
 * A token-sequence source for the DataLoader: int32 ids [length], or with length 'batch-longest'
 * a ragged source (every text whole; the loader pads each batch to its longest text).
 */
export function textSource(tokens: readonly (readonly string[])[], labels: Int32Array | null, vocab: Vocab, opts: TextSourceOptions): ArraySource {
  if (labels !== null && labels.length !== tokens.length) throw new DataError(`${labels.length} labels for ${tokens.length} texts`, opts.name);
  if (opts.length === 'batch-longest') {
    const offsets = sharedInt32(tokens.length + 1);
    tokens.forEach((t, i) => (offsets[i + 1] = offsets[i]! + t.length));
    const data = sharedInt32(offsets[tokens.length]!);
    let at = 0;
    for (const t of tokens) for (const w of t) data[at++] = vocab.lookup(w);
    const longest = tokens.reduce((m, t) => Math.max(m, t.length), 1);
    return {
      kind: 'array', name: opts.name ?? 'text', length: tokens.length, sampleShape: [longest], layout: 'CHW', dtype: 'int32',
      data, offsets, pad: opts.padId ?? vocab.padIndex, labels, classes: opts.classes,
    };
  }
  return {
    kind: 'array',
    name: opts.name ?? 'text',
    length: tokens.length,
    sampleShape: [opts.length],
    layout: 'CHW',
    dtype: 'int32',
    data: numericalise(tokens, vocab, { ...opts, length: opts.length }),
    labels,
    classes: opts.classes,
  };
}

async function readText(file: string): Promise<string> {
  let buf: Buffer;
  try {
    buf = await readFile(file);
  } catch (e) {
    throw new DataError(`cannot read text file: ${(e as Error).message}`, file);
  }
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(buf);
  } catch {
    throw new DataError('text file is not valid UTF-8', file);
  }
}

function lines(text: string): string[] {
  const ls = text.split(/\r?\n/);
  if (ls.length > 0 && ls[ls.length - 1] === '') ls.pop();
  return ls;
}

export const NEWSGROUPS20_CLASSES = [
  'alt.atheism', 'comp.graphics', 'comp.os.ms-windows.misc', 'comp.sys.ibm.pc.hardware', 'comp.sys.mac.hardware',
  'comp.windows.x', 'misc.forsale', 'rec.autos', 'rec.motorcycles', 'rec.sport.baseball', 'rec.sport.hockey',
  'sci.crypt', 'sci.electronics', 'sci.med', 'sci.space', 'soc.religion.christian', 'talk.politics.guns',
  'talk.politics.mideast', 'talk.politics.misc', 'talk.religion.misc',
];

export const REUTERS52_CLASSES = [
  'acq', 'alum', 'bop', 'carcass', 'cocoa', 'coffee', 'copper', 'cotton', 'cpi', 'cpu', 'crude', 'dlr', 'earn',
  'fuel', 'gas', 'gnp', 'gold', 'grain', 'heat', 'housing', 'income', 'instal-debt', 'interest', 'ipi',
  'iron-steel', 'jet', 'jobs', 'lead', 'lei', 'livestock', 'lumber', 'meal-feed', 'money-fx', 'money-supply',
  'nat-gas', 'nickel', 'orange', 'pet-chem', 'platinum', 'potato', 'reserves', 'retail', 'rubber', 'ship',
  'strategic-metal', 'sugar', 'tea', 'tin', 'trade', 'veg-oil', 'wpi', 'zinc',
];

export interface LabelledText {
  texts: string[];
  labels: Int32Array;
  classes: string[];
}

/**
 * `label<TAB>text` lines (20 Newsgroups, Reuters52). The label is the text before the first tab, or
 * before the first whitespace when a line has no tab. With `classes`, labels must be among them
 * (their index is the label); without, the classes are the sorted distinct labels.
 */
export async function readLabelledLines(file: string, classes?: readonly string[]): Promise<LabelledText> {
  const ls = lines(await readText(file));
  const raw: string[] = [];
  const texts: string[] = [];
  ls.forEach((line, i) => {
    if (line.trim() === '') return;
    const tab = line.indexOf('\t');
    let label: string;
    let text: string;
    if (tab >= 0) {
      label = line.slice(0, tab).trim();
      text = line.slice(tab + 1);
    } else {
      const m = /^\s*(\S+)\s*(.*)$/s.exec(line)!;
      label = m[1]!;
      text = m[2]!;
    }
    if (label === '') throw new DataError(`line ${i + 1}: no label before the text`, file);
    raw.push(label);
    texts.push(text);
  });
  const cls = classes ? [...classes] : [...new Set(raw)].sort(compareCodePoints);
  const index = new Map(cls.map((c, i) => [c, i]));
  const labels = sharedInt32(raw.length);
  raw.forEach((l, i) => {
    const k = index.get(l);
    if (k === undefined) throw new DataError(`document ${i + 1}: label '${l}' is not one of the ${cls.length} classes (${cls.slice(0, 4).join(', ')}, ...)`, file);
    labels[i] = k;
  });
  if (texts.length === 0) throw new DataError('no documents in the file', file);
  return { texts, labels, classes: cls };
}

/** One text per line (Multi30k, WMT16, WikiText, generated samples). Empty lines are dropped unless keepEmpty. */
export async function readTextLines(file: string, opts: { keepEmpty?: boolean } = {}): Promise<string[]> {
  const ls = lines(await readText(file));
  return opts.keepEmpty ? ls : ls.filter((l) => l.trim() !== '');
}

/** NLTK's English stop words as pytorch-ood@415df13 ships them (text-data/nltk-english-stop-words.json says where from). */
let stopWords: ReadonlySet<string> | undefined;
export function nltkEnglishStopWords(): ReadonlySet<string> {
  stopWords ??= new Set((JSON.parse(readFileSync(new URL('./text-data/nltk-english-stop-words.json', import.meta.url), 'utf8')) as { words: string[] }).words);
  return stopWords;
}

/**
 * pytorch-ood@415df13's NewsGroup20 / Reuters52 text: it splits each line on whitespace, takes the
 * first two fields as the label and keeps `words[2:]` without stop words, so the first word of
 * every text is lost (the paper's pipeline; `text` here is the line after its label). Stop words
 * are compared before lowercasing, as there.
 */
export function pytorchOodText(text: string): string {
  const stop = nltkEnglishStopWords();
  return splitWhitespace(text).slice(1).filter((w) => !stop.has(w)).join(' ');
}
