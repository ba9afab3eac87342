/**
 * Transformer building blocks with PyTorch's semantics and parameter names:
 *  - LayerNorm (torch.nn.LayerNorm over the last dimension: weight, bias),
 *  - TransformerEncoderLayer (torch.nn.TransformerEncoderLayer: self_attn, linear1, dropout,
 *    linear2, norm1, norm2, dropout1, dropout2; post-norm by default, `normFirst` for pre-norm;
 *    ReLU or GELU),
 *  - positional encodings: sinusoidal (a non-persistent buffer `pe`, as the word language model
 *    example) and learned (a parameter `weight` [maxLen, d]).
 */
import type { Tensor } from '../tensor.ts';
import { OpError } from '../errors.ts';
import { add } from '../ops/binary.ts';
import { relu, gelu } from '../ops/unary.ts';
import { layerNorm } from '../ops/layernorm.ts';
import { sinusoidalTable, addPositional } from '../ops/positional.ts';
import { Module, type UnaryModule } from './module.ts';
import { Parameter } from './parameter.ts';
import { Linear, Dropout } from './layers.ts';
import { ones_, zeros_, normal_ } from './init.ts';
import { MultiheadAttention } from './attention.ts';

export class LayerNorm extends Module implements UnaryModule {
  readonly normalizedShape: number;
  readonly eps: number;
  readonly weight: Parameter | null;
  readonly bias: Parameter | null;

  constructor(normalizedShape: number, eps = 1e-5, elementwiseAffine = true) {
    super();
    if (!Number.isInteger(normalizedShape) || normalizedShape < 1) throw new OpError('LayerNorm', `normalized_shape must be a positive integer, got ${normalizedShape}`);
    this.normalizedShape = normalizedShape;
    this.eps = eps;
    this.weight = this.registerParameter('weight', elementwiseAffine ? Parameter.empty([normalizedShape]) : null);
    this.bias = this.registerParameter('bias', elementwiseAffine ? Parameter.empty([normalizedShape]) : null);
    if (this.weight) ones_(this.weight);
    if (this.bias) zeros_(this.bias);
  }

  forward(x: Tensor): Tensor {
    if (x.shape[x.rank - 1] !== this.normalizedShape) {
      throw new OpError('LayerNorm', `input [${x.shape.join(', ')}] does not end in normalized_shape ${this.normalizedShape}`);
    }
    return layerNorm(x, this.weight, this.bias, this.eps);
  }
}

export interface TransformerEncoderLayerOptions {
  dimFeedforward?: number;
  dropout?: number;
  activation?: 'relu' | 'gelu';
  layerNormEps?: number;
  batchFirst?: boolean;
  normFirst?: boolean;
}

export class TransformerEncoderLayer extends Module {
  readonly self_attn: MultiheadAttention;
  readonly linear1: Linear;
  readonly dropout: Dropout;
  readonly linear2: Linear;
  readonly norm1: LayerNorm;
  readonly norm2: LayerNorm;
  readonly dropout1: Dropout;
  readonly dropout2: Dropout;
  readonly normFirst: boolean;
  readonly activation: 'relu' | 'gelu';

  constructor(dModel: number, nhead: number, opts: TransformerEncoderLayerOptions = {}) {
    super();
    const ff = opts.dimFeedforward ?? 2048;
    const p = opts.dropout ?? 0.1;
    const eps = opts.layerNormEps ?? 1e-5;
    this.activation = opts.activation ?? 'relu';
    if (this.activation !== 'relu' && this.activation !== 'gelu') throw new OpError('TransformerEncoderLayer', `activation must be 'relu' or 'gelu', got '${String(this.activation)}'`);
    this.normFirst = opts.normFirst ?? false;
    this.self_attn = this.registerModule('self_attn', new MultiheadAttention(dModel, nhead, { dropout: p, batchFirst: opts.batchFirst ?? false }));
    this.linear1 = this.registerModule('linear1', new Linear(dModel, ff));
    this.dropout = this.registerModule('dropout', new Dropout(p));
    this.linear2 = this.registerModule('linear2', new Linear(ff, dModel));
    this.norm1 = this.registerModule('norm1', new LayerNorm(dModel, eps));
    this.norm2 = this.registerModule('norm2', new LayerNorm(dModel, eps));
    this.dropout1 = this.registerModule('dropout1', new Dropout(p));
    this.dropout2 = this.registerModule('dropout2', new Dropout(p));
  }

  /** src [S, B, E] ([B, S, E] with batchFirst); masks as MultiheadAttention's. */
  forward(src: Tensor, call: { keyPaddingMask?: Tensor | null; causal?: boolean; seed?: number } = {}): Tensor {
    const sa = (x: Tensor): Tensor => {
      const a = this.self_attn.forward(x, x, x, call);
      const d = this.dropout1.forward(a);
      a.dispose();
      return d;
    };
    const ffn = (x: Tensor): Tensor => {
      const h = this.linear1.forward(x);
      const act = this.activation === 'relu' ? relu(h) : gelu(h);
      h.dispose();
      const dr = this.dropout.forward(act);
      act.dispose();
      const o = this.linear2.forward(dr);
      dr.dispose();
      const d = this.dropout2.forward(o);
      o.dispose();
      return d;
    };
    const residual = (x: Tensor, f: (y: Tensor) => Tensor, norm: LayerNorm, pre: boolean): Tensor => {
      if (pre) {
        const n = norm.forward(x);
        const y = f(n);
        n.dispose();
        const s = add(x, y);
        y.dispose();
        return s;
      }
      const y = f(x);
      const s = add(x, y);
      y.dispose();
      const n = norm.forward(s);
      s.dispose();
      return n;
    };
    const x1 = residual(src, sa, this.norm1, this.normFirst);
    const x2 = residual(x1, ffn, this.norm2, this.normFirst);
    x1.dispose();
    return x2;
  }
}

/** x + sinusoidal table, then dropout (the word language model's PositionalEncoding). */
export class PositionalEncoding extends Module implements UnaryModule {
  readonly pe: Tensor;
  readonly drop: Dropout;
  readonly batchFirst: boolean;

  constructor(dModel: number, opts: { dropout?: number; maxLen?: number; batchFirst?: boolean } = {}) {
    super();
    this.batchFirst = opts.batchFirst ?? false;
    this.pe = this.registerBuffer('pe', sinusoidalTable(opts.maxLen ?? 5000, dModel), false);
    this.drop = this.registerModule('dropout', new Dropout(opts.dropout ?? 0.1));
  }

  forward(x: Tensor): Tensor {
    const y = addPositional(x, this.pe, this.batchFirst);
    const d = this.drop.forward(y);
    y.dispose();
    return d;
  }
}

/** x + a learned table (ViT's pos_embedding role), `weight` [maxLen, d] ~ N(0, std). */
export class LearnedPositionalEmbedding extends Module implements UnaryModule {
  readonly weight: Parameter;
  readonly batchFirst: boolean;

  constructor(maxLen: number, dModel: number, opts: { batchFirst?: boolean; std?: number } = {}) {
    super();
    this.batchFirst = opts.batchFirst ?? true;
    this.weight = this.registerParameter('weight', Parameter.empty([maxLen, dModel]));
    normal_(this.weight, 0, opts.std ?? 0.02);
  }

  forward(x: Tensor): Tensor {
    return addPositional(x, this.weight, this.batchFirst);
  }
}
