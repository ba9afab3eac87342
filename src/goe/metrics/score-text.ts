/**
 * Parsing scores from text: one number per line, or a JSON array of numbers. Errors name the
 * file and the 1-based line (text) or 0-based element (JSON), so a broken score dump can be
 * fixed where it broke.
 */
import { ScoreFileError } from './score-file-error.ts';

/** A decimal number as Python, NumPy and C print them (no hex, no `Infinity`, no `1_000`). */
const DECIMAL_NUMBER = /^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/;
/** Spellings of NaN / infinity that score dumps contain (NumPy `nan`, `inf`; JS `Infinity`). */
const NON_FINITE = /^[+-]?(nan|inf|infinity)$/i;

/**
 * Scores from text with one number per line. Blank (or whitespace-only) lines are skipped; any
 * other line must be a single finite decimal number. Throws a ScoreFileError naming `source` and
 * the line of the first bad entry, or saying the file holds no scores.
 */
export function parseScoreLines(text: string, source: string): Float64Array {
  const lines = text.split('\n');
  const scores = new Float64Array(lines.length);
  let count = 0;
  for (let i = 0; i < lines.length; i++) {
    const entry = lines[i]!.trim();
    if (entry === '') continue;
    const lineNumber = i + 1;
    if (NON_FINITE.test(entry)) {
      const kind = entry.toLowerCase().replace(/^[+-]/, '') === 'nan' ? 'NaN' : 'infinite';
      throw new ScoreFileError(source, `score "${entry}" is ${kind}; scores must be finite numbers`, lineNumber);
    }
    if (!DECIMAL_NUMBER.test(entry)) {
      throw new ScoreFileError(source, `"${truncate(entry)}" is not a number; expected one score per line`, lineNumber);
    }
    const value = Number(entry);
    if (!Number.isFinite(value)) {
      throw new ScoreFileError(source, `score "${entry}" overflows to infinity; scores must be finite numbers`, lineNumber);
    }
    scores[count++] = value;
  }
  if (count === 0) throw new ScoreFileError(source, 'no scores: the file is empty or has only blank lines');
  return scores.slice(0, count);
}

/**
 * Scores from a JSON array of finite numbers. Throws a ScoreFileError naming `source` on invalid
 * JSON (with the parser's position), a non-array, an empty array, or a non-number element.
 */
export function parseScoreJson(text: string, source: string): Float64Array {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (error) {
    throw new ScoreFileError(source, `invalid JSON: ${(error as Error).message}`);
  }
  if (!Array.isArray(parsed)) throw new ScoreFileError(source, 'expected a JSON array of numbers');
  if (parsed.length === 0) throw new ScoreFileError(source, 'no scores: the JSON array is empty');
  const scores = new Float64Array(parsed.length);
  parsed.forEach((value: unknown, i) => {
    if (typeof value !== 'number') {
      throw new ScoreFileError(source, `element ${i} is ${describeJson(value)}, not a number (NaN is often written as null)`);
    }
    // JSON has no NaN or Infinity literals, but an overflowing literal such as 1e999 parses to Infinity.
    if (!Number.isFinite(value)) throw new ScoreFileError(source, `element ${i} overflows to infinity; scores must be finite numbers`);
    scores[i] = value;
  });
  return scores;
}

/** A JSON value in a few words: never serialised whole (a value nested 10^5 deep would overflow the stack). */
function describeJson(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return `an array of ${value.length}`;
  if (typeof value === 'object') return 'an object';
  if (typeof value === 'string') return JSON.stringify(truncate(value));
  return String(value);
}

function truncate(text: string): string {
  return text.length > 40 ? `${text.slice(0, 40)}...` : text;
}
