/**
 * The .npy header dictionary, parsed as numpy reads it (`ast.literal_eval` on a Python literal,
 * then a check of its keys), not by regular expressions: a 'shape' inside another string, a
 * duplicated key, an unknown key, a negative or fractional dimension, or trailing text are all
 * refused. Only the literal subset headers use is accepted: dicts, tuples, lists, strings,
 * integers (with Python 2's `L` suffix), True/False/None. Nesting is depth-limited, so a hostile
 * header cannot overflow the stack. Platform-free (the score-file reader uses it in browsers).
 */

export interface NpyHeaderDict {
  /** The descr string, e.g. '<f4', or the list of a structured dtype. */
  descr: string | unknown[];
  fortranOrder: boolean;
  shape: number[];
}

/** numpy's NPY_MAXDIMS (64 since numpy 2.0). */
export const NPY_MAX_DIMS = 64;
/** Literal nesting deeper than this is refused (real headers nest at most 3 levels: dict, list, tuple). */
const MAX_DEPTH = 32;

class PyTupleLiteral {
  readonly items: unknown[];
  constructor(items: unknown[]) {
    this.items = items;
  }
}

/** Parse the header text; `fail` throws the caller's error type. */
export function parseNpyHeaderText(text: string, fail: (message: string) => never): NpyHeaderDict {
  let pos = 0;
  const shown = (): string => JSON.stringify(text.length > 200 ? `${text.slice(0, 200)}...` : text);
  const bad = (what: string): never => fail(`bad .npy header (${what} at character ${pos}): ${shown()}`);
  const skip = (): void => {
    while (pos < text.length && ' \t\n\r\f\v'.includes(text[pos]!)) pos++;
  };

  const value = (depth: number): unknown => {
    if (depth > MAX_DEPTH) bad(`literal nested deeper than ${MAX_DEPTH} levels`);
    skip();
    const c = text[pos];
    if (c === undefined) return bad('unexpected end');
    if (c === "'" || c === '"') return str();
    if (c === '{') return dict(depth);
    if (c === '(' || c === '[') return sequence(depth);
    if (c === '-' || c === '+' || (c >= '0' && c <= '9')) return int();
    const word = /^[A-Za-z_]\w*/.exec(text.slice(pos, pos + 16))?.[0];
    if (word === 'True' || word === 'False' || word === 'None') {
      pos += word.length;
      return word === 'True' ? true : word === 'False' ? false : null;
    }
    return bad(`unexpected ${JSON.stringify(c)}`);
  };

  const str = (): string => {
    const q = text[pos++]!;
    let out = '';
    for (;;) {
      const c = text[pos++];
      if (c === undefined || c === '\n') return bad('unterminated string');
      if (c === q) return out;
      if (c === '\\') {
        const e = text[pos++];
        if (e === undefined) return bad('unterminated string');
        out += e === 'n' ? '\n' : e === 't' ? '\t' : e === 'r' ? '\r' : e === '0' ? '\0' : e;
      } else out += c;
    }
  };

  const int = (): number => {
    const m = /^[+-]?\d+L?/.exec(text.slice(pos, pos + 40));
    if (m === null) return bad('malformed number');
    pos += m[0].length;
    if (/^\d/.test(text[pos] ?? '')) return bad('integer is too large');
    if (/^[.eEjJxX_]/.test(text[pos] ?? '')) return bad('only integers are allowed');
    const digits = m[0].replace(/L$/, '');
    const v = Number(digits);
    if (!Number.isSafeInteger(v)) return bad(`integer ${digits} is too large`);
    return v;
  };

  const sequence = (depth: number): unknown[] | PyTupleLiteral => {
    const open = text[pos++]!;
    const close = open === '(' ? ')' : ']';
    const items: unknown[] = [];
    let trailingComma = false;
    for (;;) {
      skip();
      if (text[pos] === close) {
        pos++;
        break;
      }
      items.push(value(depth + 1));
      skip();
      if (text[pos] === ',') {
        pos++;
        trailingComma = true;
      } else if (text[pos] === close) {
        pos++;
        trailingComma = false;
        break;
      } else return bad(`expected ',' or '${close}'`);
    }
    if (open === '[') return items;
    // `(x)` is x itself in Python; `(x,)` is a 1-tuple.
    if (items.length === 1 && !trailingComma) return items[0] instanceof PyTupleLiteral ? items[0] : bad('a parenthesised value is not a tuple');
    return new PyTupleLiteral(items);
  };

  const dict = (depth: number): Map<string, unknown> => {
    pos++;
    const out = new Map<string, unknown>();
    for (;;) {
      skip();
      if (text[pos] === '}') {
        pos++;
        return out;
      }
      if (text[pos] !== "'" && text[pos] !== '"') return bad('dict keys must be strings');
      const key = str();
      if (out.has(key)) return bad(`duplicated key '${key}'`);
      skip();
      if (text[pos++] !== ':') return bad("expected ':'");
      out.set(key, value(depth + 1));
      skip();
      if (text[pos] === ',') pos++;
      else if (text[pos] !== '}') return bad("expected ',' or '}'");
    }
  };

  skip();
  if (text[pos] !== '{') bad('the header is not a dict');
  const d = dict(0);
  skip();
  if (pos !== text.length) bad('text after the dict');
  const keys = [...d.keys()].sort().join(', ');
  if (keys !== 'descr, fortran_order, shape') fail(`bad .npy header: keys are (${keys}), numpy needs exactly (descr, fortran_order, shape): ${shown()}`);
  const descr = d.get('descr');
  if (typeof descr !== 'string' && !Array.isArray(descr)) fail(`bad .npy header: 'descr' is not a string: ${shown()}`);
  const fortran = d.get('fortran_order');
  if (typeof fortran !== 'boolean') fail(`bad .npy header: 'fortran_order' is not True or False: ${shown()}`);
  const shape = d.get('shape');
  if (!(shape instanceof PyTupleLiteral)) fail(`bad .npy header: 'shape' is not a tuple: ${shown()}`);
  const dims = (shape as PyTupleLiteral).items;
  if (dims.length > NPY_MAX_DIMS) fail(`bad .npy header: ${dims.length} dimensions (numpy allows ${NPY_MAX_DIMS})`);
  for (const x of dims) {
    if (typeof x !== 'number' || x < 0) fail(`bad .npy header: shape entry ${typeof x === 'number' ? x : JSON.stringify(x)} is not a non-negative integer: ${shown()}`);
  }
  return { descr: descr as string | unknown[], fortranOrder: fortran as boolean, shape: dims as number[] };
}

/** Elements times item size, refused when it is not a safe integer (so no later arithmetic overflows). */
export function npyDataBytes(shape: readonly number[], itemSize: number, fail: (message: string) => never): number {
  let n = itemSize;
  for (const d of shape) n *= d;
  if (!Number.isSafeInteger(n)) fail(`shape (${shape.join(', ')}) declares ${n} bytes of data, more than any file holds`);
  return n;
}
