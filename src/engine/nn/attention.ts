/**
 * torch.nn.MultiheadAttention (self- and cross-attention, kdim = vdim = embed_dim) over the fused
 * attention kernel. Parameter names as PyTorch's: in_proj_weight [3E, E], in_proj_bias [3E],
 * out_proj.weight [E, E], out_proj.bias [E]; the same initialisation (xavier_uniform on the
 * packed projection, zero biases).
 *
 * Masks: `keyPaddingMask` [B, S] (nonzero = ignore, PyTorch's boolean key_padding_mask) and
 * `causal` (PyTorch's is_causal / a square subsequent mask). Additive float masks are not
 * supported. The attention weights are never materialised, so need_weights is not offered.
 * A query row with every key masked gives zeros (PyTorch gives NaN).
 */
import type { Tensor } from '../tensor.ts';
import { OpError } from '../errors.ts';
import { linear } from '../ops/matmul.ts';
import { reshape, permute } from '../ops/movement.ts';
import { narrow, select } from '../ops/shape.ts';
import { attention } from '../ops/attention.ts';
import { Module } from './module.ts';
import { Parameter } from './parameter.ts';
import { Linear } from './layers.ts';
import { xavierUniform_, zeros_ } from './init.ts';

export interface MultiheadAttentionCall {
  keyPaddingMask?: Tensor | null;
  causal?: boolean;
  /** Dropout seed (tests); drawn per call otherwise. */
  seed?: number;
}

export class MultiheadAttention extends Module {
  readonly embedDim: number;
  readonly numHeads: number;
  readonly headDim: number;
  readonly dropout: number;
  readonly batchFirst: boolean;
  readonly in_proj_weight: Parameter;
  readonly in_proj_bias: Parameter | null;
  readonly out_proj: Linear;

  constructor(embedDim: number, numHeads: number, opts: { dropout?: number; bias?: boolean; batchFirst?: boolean } = {}) {
    super();
    if (!Number.isInteger(embedDim) || !Number.isInteger(numHeads) || numHeads < 1 || embedDim < 1 || embedDim % numHeads !== 0) {
      throw new OpError('MultiheadAttention', `embed_dim ${embedDim} must be a positive multiple of num_heads ${numHeads}`);
    }
    this.embedDim = embedDim;
    this.numHeads = numHeads;
    this.headDim = embedDim / numHeads;
    this.dropout = opts.dropout ?? 0;
    this.batchFirst = opts.batchFirst ?? false;
    const bias = opts.bias ?? true;
    this.in_proj_weight = this.registerParameter('in_proj_weight', Parameter.empty([3 * embedDim, embedDim]));
    this.in_proj_bias = this.registerParameter('in_proj_bias', bias ? Parameter.empty([3 * embedDim]) : null);
    this.out_proj = this.registerModule('out_proj', new Linear(embedDim, embedDim, bias));
    xavierUniform_(this.in_proj_weight);
    if (this.in_proj_bias) zeros_(this.in_proj_bias);
    if (this.out_proj.bias) zeros_(this.out_proj.bias);
  }

  /**
   * query [L, B, E], key/value [S, B, E] ([B, L, E] / [B, S, E] with batchFirst). Returns the
   * attention output of the query's shape. Passing the same tensor as query, key and value uses
   * one packed projection.
   */
  forward(query: Tensor, key: Tensor, value: Tensor, call: MultiheadAttentionCall = {}): Tensor {
    const E = this.embedDim;
    const H = this.numHeads;
    const Dh = this.headDim;
    for (const [n, t] of [['query', query], ['key', key], ['value', value]] as const) {
      if (t.rank !== 3 || t.shape[2] !== E) throw new OpError('MultiheadAttention', `${n} must be [${this.batchFirst ? 'B, T' : 'T, B'}, ${E}], got [${t.shape.join(', ')}]`);
    }
    const bf = this.batchFirst;
    const [L, B] = bf ? [query.shape[1], query.shape[0]] : [query.shape[0], query.shape[1]];
    const S = bf ? key.shape[1] : key.shape[0];
    const kB = bf ? key.shape[0] : key.shape[1];
    if (kB !== B || value.shape[0] !== key.shape[0] || value.shape[1] !== key.shape[1]) {
      throw new OpError('MultiheadAttention', `key [${key.shape.join(', ')}] / value [${value.shape.join(', ')}] do not match query [${query.shape.join(', ')}]`);
    }
    const temps: Tensor[] = [];
    const t = <X extends Tensor>(x: X): X => {
      temps.push(x);
      return x;
    };
    // [T, B, H, Dh] or [B, T, H, Dh] -> [B, H, T, Dh] view
    const heads = (x: Tensor, T: number): Tensor => {
      const r = t(reshape(x, bf ? [B, T, H, Dh] : [T, B, H, Dh]));
      return t(permute(r, bf ? [0, 2, 1, 3] : [1, 2, 0, 3]));
    };
    let q: Tensor;
    let k: Tensor;
    let v: Tensor;
    const bias = this.in_proj_bias;
    if (query === key && key === value) {
      const qkv = t(linear(query, this.in_proj_weight, bias ?? undefined)); // [.., .., 3E]
      const r = t(reshape(qkv, bf ? [B, L, 3, H, Dh] : [L, B, 3, H, Dh]));
      const p = t(permute(r, bf ? [2, 0, 3, 1, 4] : [2, 1, 3, 0, 4])); // [3, B, H, L, Dh]
      q = t(select(p, 0, 0));
      k = t(select(p, 0, 1));
      v = t(select(p, 0, 2));
    } else {
      const proj = (x: Tensor, i: number, T: number) => {
        const w = t(narrow(this.in_proj_weight, 0, i * E, E));
        const b = bias ? t(narrow(bias, 0, i * E, E)) : undefined;
        return heads(t(linear(x, w, b)), T);
      };
      q = proj(query, 0, L);
      k = proj(key, 1, S);
      v = proj(value, 2, S);
    }
    const o = t(
      attention(q, k, v, {
        causal: call.causal,
        keyPaddingMask: call.keyPaddingMask ?? null,
        dropout: this.training ? this.dropout : 0,
        seed: call.seed,
      }),
    ); // [B, H, L, Dh]
    const back = t(permute(o, bf ? [0, 2, 1, 3] : [2, 0, 1, 3]));
    const merged = t(reshape(back, bf ? [B, L, E] : [L, B, E]));
    const out = this.out_proj.forward(merged);
    for (const x of temps) x.dispose();
    return out;
  }
}
