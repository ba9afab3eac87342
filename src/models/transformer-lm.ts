/**
 * The paper's text generator: pytorch/examples word_language_model `TransformerModel` (the
 * version with `encoder` / `pos_encoder` / `transformer_encoder` / `decoder`, before the example
 * was rewritten on nn.Transformer), with its state_dict names:
 *
 *   pos_encoder.pe                               [max_len, 1, ninp] sinusoidal table (a persistent
 *                                                buffer, as the example's register_buffer)
 *   transformer_encoder.layers.{i}.*             nn.TransformerEncoderLayer(ninp, nhead, nhid,
 *                                                dropout): self_attn, linear1, linear2, norm1, norm2
 *   encoder.weight                               nn.Embedding(ntoken, ninp)
 *   decoder.weight, decoder.bias                 nn.Linear(ninp, ntoken)
 *
 * forward(src [S, B] i32, sequence first as the example): log_softmax(decoder(
 * transformer_encoder(pos_encoder(encoder(src) * sqrt(ninp)), causal mask))) -> [S, B, ntoken].
 * The example's float mask (-inf above the diagonal) is the causal mask; `mask: false` is its
 * `has_mask=False` (what generate.py passes).
 *
 * Initialisation as the example: encoder and decoder weights U(-0.1, 0.1), decoder bias 0; the
 * encoder layers keep PyTorch's defaults, and, as nn.TransformerEncoder deep-copies one layer,
 * every layer starts with the same weights as layer 0.
 * The paper's generator: ntoken = vocabulary, emsize 200, nhid 200, nlayers 2, nhead 2, dropout 0.2.
 */
import { fromData, keep, type Tensor } from '../engine/api.ts';
import { zeros } from '../engine/api.ts';
import { OpError } from '../engine/api.ts';
import { noGrad } from '../engine/api.ts';
import { mul } from '../engine/api.ts';
import { logSoftmax } from '../engine/api.ts';
import { reshape } from '../engine/api.ts';
import { narrow, select, concat } from '../engine/api.ts';
import { sinusoidalTable, addPositional } from '../engine/api.ts';
import { Module, type UnaryModule } from '../engine/api.ts';
import { Linear, Embedding, Dropout, ModuleList } from '../engine/api.ts';
import { uniform_, zeros_ } from '../engine/api.ts';
import { TransformerEncoderLayer } from '../engine/api.ts';
import { multinomial } from './sampling.ts';

/**
 * The example's PositionalEncoding: x + pe[:S] then dropout, pe a persistent buffer of shape
 * [max_len, 1, d_model] (so it is in the state_dict as `pos_encoder.pe`, as in PyTorch).
 */
export class PositionalEncoding extends Module implements UnaryModule {
  readonly dModel: number;
  readonly maxLen: number;
  readonly dropout: Dropout;
  readonly pe: Tensor;

  constructor(dModel: number, dropout = 0.1, maxLen = 5000) {
    super();
    this.dModel = dModel;
    this.maxLen = maxLen;
    this.dropout = this.registerModule('dropout', new Dropout(dropout));
    const table = sinusoidalTable(maxLen, dModel);
    this.pe = this.registerBuffer('pe', keep(reshape(table, [maxLen, 1, dModel])));
    table.dispose();
  }

  /** x [S, B, d] -> dropout(x + pe[:S]). */
  forward(x: Tensor): Tensor {
    if (x.rank !== 3 || x.shape[2] !== this.dModel) throw new OpError('PositionalEncoding', `input must be [S, B, ${this.dModel}], got [${x.shape.join(', ')}]`);
    if (x.shape[0] > this.maxLen) throw new OpError('PositionalEncoding', `sequence of ${x.shape[0]} positions exceeds max_len ${this.maxLen}`);
    const pe = this.getBuffer('pe')!;
    const table = reshape(pe, [this.maxLen, this.dModel]);
    const y = addPositional(x, table, false);
    table.dispose();
    const d = this.dropout.forward(y);
    if (d !== y) y.dispose();
    return d;
  }
}

/** nn.TransformerEncoder without a final norm: `layers` (ModuleList) applied in order. */
export class TransformerEncoder extends Module {
  readonly layers: ModuleList<TransformerEncoderLayer>;

  constructor(makeLayer: () => TransformerEncoderLayer, numLayers: number) {
    super();
    const layers: TransformerEncoderLayer[] = [];
    for (let i = 0; i < numLayers; i++) layers.push(makeLayer());
    // nn.TransformerEncoder deep-copies the given layer: every layer starts equal
    for (let i = 1; i < numLayers; i++) layers[i].loadStateDict(layers[0].stateDict());
    this.layers = this.registerModule('layers', new ModuleList(layers));
  }

  forward(src: Tensor, call: { causal?: boolean } = {}): Tensor {
    let h = src;
    for (const layer of this.layers) {
      const next = layer.forward(h, { causal: call.causal });
      if (h !== src) h.dispose();
      h = next;
    }
    return h;
  }
}

export interface TransformerModelOptions {
  /** Embedding size (emsize). Default 200. */
  ninp?: number;
  nhead?: number;
  /** Feed-forward width (nhid). Default 200. */
  nhid?: number;
  nlayers?: number;
  dropout?: number;
  /** Positional table length (the example: 5000). */
  maxLen?: number;
}

export class TransformerModel extends Module {
  readonly ntoken: number;
  readonly ninp: number;
  readonly pos_encoder: PositionalEncoding;
  readonly transformer_encoder: TransformerEncoder;
  readonly encoder: Embedding;
  readonly decoder: Linear;

  constructor(ntoken: number, opts: TransformerModelOptions = {}) {
    super();
    const ninp = opts.ninp ?? 200;
    const nhead = opts.nhead ?? 2;
    const nhid = opts.nhid ?? 200;
    const nlayers = opts.nlayers ?? 2;
    const p = opts.dropout ?? 0.2;
    for (const [n, v] of [['ntoken', ntoken], ['ninp', ninp], ['nhead', nhead], ['nhid', nhid], ['nlayers', nlayers]] as const) {
      if (!Number.isInteger(v) || v < 1) throw new OpError('TransformerModel', `${n} must be a positive integer, got ${v}`);
    }
    this.ntoken = ntoken;
    this.ninp = ninp;
    // registration order = PyTorch's state_dict order
    this.pos_encoder = this.registerModule('pos_encoder', new PositionalEncoding(ninp, p, opts.maxLen ?? 5000));
    this.transformer_encoder = this.registerModule(
      'transformer_encoder',
      new TransformerEncoder(() => new TransformerEncoderLayer(ninp, nhead, { dimFeedforward: nhid, dropout: p }), nlayers),
    );
    this.encoder = this.registerModule('encoder', new Embedding(ntoken, ninp));
    this.decoder = this.registerModule('decoder', new Linear(ninp, ntoken));
    this.initWeights();
  }

  /** The example's init_weights: encoder/decoder weights U(-0.1, 0.1), decoder bias 0. */
  initWeights(): void {
    uniform_(this.encoder.weight, -0.1, 0.1);
    if (this.decoder.bias) zeros_(this.decoder.bias);
    uniform_(this.decoder.weight, -0.1, 0.1);
  }

  /** The encoder stack's output [S, B, ninp] for token ids [S, B]. */
  hidden(src: Tensor, opts: { mask?: boolean } = {}): Tensor {
    if (src.rank !== 2 || src.dtype !== 'i32') {
      throw new OpError('TransformerModel', `input must be i32 token ids [S, B] (sequence first), got ${src.dtype} [${src.shape.join(', ')}]`);
    }
    const e = this.encoder.forward(src);
    const scaled = mul(e, Math.sqrt(this.ninp));
    e.dispose();
    const x = this.pos_encoder.forward(scaled);
    scaled.dispose();
    const h = this.transformer_encoder.forward(x, { causal: opts.mask ?? true });
    x.dispose();
    return h;
  }

  /** Log-probabilities [S, B, ntoken]; `mask` (default true) is the example's has_mask. */
  forward(src: Tensor, opts: { mask?: boolean } = {}): Tensor {
    const h = this.hidden(src, opts);
    const logits = this.decoder.forward(h);
    h.dispose();
    const out = logSoftmax(logits, -1);
    logits.dispose();
    return out;
  }

  /** forward(src)[-1] without decoding the other positions: log-probabilities [B, ntoken]. */
  forwardLast(src: Tensor, opts: { mask?: boolean } = {}): Tensor {
    const h = this.hidden(src, opts);
    const last = select(h, 0, h.shape[0] - 1);
    h.dispose();
    const logits = this.decoder.forward(last);
    last.dispose();
    const out = logSoftmax(logits, -1);
    logits.dispose();
    return out;
  }
}

export interface SampleWordsOptions {
  numWords: number;
  /** generate.py's --temperature (default 1.0; the paper: 2). */
  temperature?: number;
  /** Seed of the sampler's private random stream; default: the global generator. */
  seed?: number | bigint;
  /** First token; default a uniformly random one (generate.py's torch.randint(ntokens)). */
  start?: number;
  /**
   * At most this many most recent tokens are fed to the model. generate.py feeds the whole
   * history (and fails past the positional table's max_len), so the default is max_len.
   */
  maxContext?: number;
  /** The causal mask while generating; generate.py calls model(input, False): default false. */
  mask?: boolean;
  /** Words generated between readbacks (default 256). */
  chunk?: number;
  /** Called after each chunk with the words done so far (per stream). */
  onProgress?: (done: number, total: number) => void;
  /**
   * Independent generate.py runs side by side (a batch of B contexts, one start token each):
   * the result holds numWords words of each, stream after stream. Default 1. Many streams keep
   * the GPU busy (the decoder becomes a [B, ninp] x [ninp, ntoken] product instead of a vector).
   */
  streams?: number;
}

/**
 * word_language_model/generate.py for the Transformer: starting from one token, repeatedly run
 * the model on the sequence so far, take the last position's log-probabilities `output`, and
 * append multinomial(exp(output / T)) (Gumbel-max on the GPU: argmax(output / T + G), exact; see
 * sampling.ts). The model is put in eval mode and run without gradients. Returns the numWords
 * sampled token ids (the random start token is not included, as generate.py does not write it),
 * or numWords * streams ids, stream-major, with `streams`.
 * Everything stays on the GPU; the ids are read back once per `chunk` words.
 * Random numbers: with a seed, draw i (0: the start tokens, i >= 1: word i - 1) takes the Gumbel
 * noise [streams, ntoken] from counter block i * ceil(streams * ntoken / 4) of that seed.
 */
export async function sampleWords(model: TransformerModel, opts: SampleWordsOptions): Promise<Int32Array> {
  const op = 'sampleWords';
  const n = opts.numWords;
  if (!Number.isInteger(n) || n < 0) throw new OpError(op, `numWords must be a non-negative integer, got ${n}`);
  const T = opts.temperature ?? 1;
  if (!(T > 0) || !Number.isFinite(T)) throw new OpError(op, `temperature must be a positive finite number, got ${T}`);
  const maxCtx = opts.maxContext ?? model.pos_encoder.maxLen;
  if (!Number.isInteger(maxCtx) || maxCtx < 1 || maxCtx > model.pos_encoder.maxLen) {
    throw new OpError(op, `maxContext must be an integer in [1, ${model.pos_encoder.maxLen}], got ${maxCtx}`);
  }
  if (opts.start !== undefined && (!Number.isInteger(opts.start) || opts.start < 0 || opts.start >= model.ntoken)) {
    throw new OpError(op, `start token ${opts.start} out of range [0, ${model.ntoken})`);
  }
  const B = opts.streams ?? 1;
  if (!Number.isInteger(B) || B < 1) throw new OpError(op, `streams must be a positive integer, got ${B}`);
  if (n === 0) return new Int32Array(0);
  const V = model.ntoken;
  const blocksPerDraw = Math.ceil((B * V) / 4);
  // with a seed, draw i reads the counter blocks [i * blocksPerDraw, (i + 1) * blocksPerDraw)
  const rng = (i: number) => (opts.seed === undefined ? {} : { seed: opts.seed, offset: i * blocksPerDraw });
  const chunk = opts.chunk ?? 256;
  if (!Number.isInteger(chunk) || chunk < 1) throw new OpError(op, `chunk must be a positive integer, got ${chunk}`);
  const wasTraining = model.training;
  model.eval();
  let seq: Tensor | null = null; // the contexts [S, B], at most maxCtx tokens
  try {
    seq = noGrad(() => {
      let first: Tensor;
      if (opts.start !== undefined) {
        first = fromData(new Int32Array(B).fill(opts.start), [B]);
      } else {
        const z = zeros([B, V]);
        first = multinomial(z, { logits: true, ...rng(0) }); // uniform over the vocabulary, [B]
        z.dispose();
      }
      const s0 = reshape(first, [1, B]);
      first.dispose();
      return s0;
    });
    const result = new Int32Array(n * B);
    // chunks: the queue stays bounded and each chunk's ids come back in one read
    for (let done = 0; done < n; ) {
      const m = Math.min(chunk, n - done);
      const ids = noGrad(() => {
        const out: Tensor[] = [];
        for (let j = 0; j < m; j++) {
          const i = done + j;
          const cur = seq as Tensor;
          const S = cur.shape[0];
          const logp = model.forwardLast(cur, { mask: opts.mask ?? false }); // [B, V]
          const w = multinomial(logp, { logits: true, temperature: T, ...rng(i + 1) }); // [B]
          logp.dispose();
          const w2 = reshape(w, [1, B]);
          w.dispose();
          out.push(w2);
          // keep at most maxCtx tokens: the history beyond the window is never fed again
          let grown: Tensor;
          if (maxCtx === 1) {
            grown = reshape(w2, [1, B]); // a view of the new tokens alone
          } else {
            const kept = S >= maxCtx ? narrow(cur, 0, S - maxCtx + 1, maxCtx - 1) : cur;
            grown = concat([kept, w2], 0);
            if (kept !== cur) kept.dispose();
          }
          cur.dispose();
          seq = grown;
        }
        const all = out.length === 1 ? reshape(out[0], [1, B]) : concat(out, 0); // [m, B]
        for (const t of out) t.dispose();
        return all;
      });
      const data = (await ids.data()) as Int32Array;
      ids.dispose();
      for (let j = 0; j < m; j++) for (let b = 0; b < B; b++) result[b * n + done + j] = data[j * B + b];
      done += m;
      opts.onProgress?.(done, n);
    }
    return result;
  } finally {
    (seq as Tensor | null)?.dispose();
    model.train(wasTraining);
  }
}
