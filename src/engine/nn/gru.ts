/**
 * torch.nn.GRU (unidirectional): parameters weight_ih_l{k} [3H, I_k], weight_hh_l{k} [3H, H],
 * bias_ih_l{k}, bias_hh_l{k} [3H] (gate rows r, z, n), initialised U(-1/sqrt(H), 1/sqrt(H)) as
 * PyTorch. Dropout between layers in training, as PyTorch's `dropout`. Variable-length batches
 * take `lengths` (PyTorch's pack_padded_sequence): padded steps leave state and gradients alone,
 * their outputs are zero.
 */
import type { Tensor } from '../tensor.ts';
import { OpError } from '../errors.ts';
import { gru, type GruLayerWeights } from '../ops/gru.ts';
import { narrow, concat } from '../ops/shape.ts';
import { Module } from './module.ts';
import { Parameter } from './parameter.ts';
import { Dropout } from './layers.ts';
import { uniform_ } from './init.ts';

export interface GRUOptions {
  numLayers?: number;
  bias?: boolean;
  batchFirst?: boolean;
  dropout?: number;
  bidirectional?: boolean;
}

export class GRU extends Module {
  readonly inputSize: number;
  readonly hiddenSize: number;
  readonly numLayers: number;
  readonly batchFirst: boolean;
  readonly dropoutP: number;
  private readonly layerWeights: GruLayerWeights[] = [];
  private readonly drop: Dropout;

  constructor(inputSize: number, hiddenSize: number, opts: GRUOptions = {}) {
    super();
    if (opts.bidirectional) throw new OpError('GRU', 'bidirectional GRUs are not supported');
    const L = opts.numLayers ?? 1;
    for (const [n, v] of [['input_size', inputSize], ['hidden_size', hiddenSize], ['num_layers', L]] as const) {
      if (!Number.isInteger(v) || v < 1) throw new OpError('GRU', `${n} must be a positive integer, got ${v}`);
    }
    this.inputSize = inputSize;
    this.hiddenSize = hiddenSize;
    this.numLayers = L;
    this.batchFirst = opts.batchFirst ?? false;
    this.dropoutP = opts.dropout ?? 0;
    const bias = opts.bias ?? true;
    const bound = 1 / Math.sqrt(hiddenSize);
    for (let l = 0; l < L; l++) {
      const inSize = l === 0 ? inputSize : hiddenSize;
      const w: GruLayerWeights = {
        wIh: this.registerParameter(`weight_ih_l${l}`, Parameter.empty([3 * hiddenSize, inSize])),
        wHh: this.registerParameter(`weight_hh_l${l}`, Parameter.empty([3 * hiddenSize, hiddenSize])),
        bIh: bias ? this.registerParameter(`bias_ih_l${l}`, Parameter.empty([3 * hiddenSize])) : null,
        bHh: bias ? this.registerParameter(`bias_hh_l${l}`, Parameter.empty([3 * hiddenSize])) : null,
      };
      for (const t of [w.wIh, w.wHh, w.bIh, w.bHh]) if (t) uniform_(t, -bound, bound);
      this.layerWeights.push(w);
    }
    this.drop = new Dropout(this.dropoutP);
  }

  /**
   * x [T, B, I] ([B, T, I] with batchFirst); h0 [L, B, H] or null. Returns output [T, B, H]
   * ([B, T, H]) and hN [L, B, H].
   */
  forward(x: Tensor, h0: Tensor | null = null, opts: { lengths?: readonly number[] | null } = {}): { output: Tensor; hN: Tensor } {
    if (this.dropoutP === 0 || !this.training || this.numLayers === 1) {
      return gru(x, h0, this.layerWeights, { batchFirst: this.batchFirst, lengths: opts.lengths });
    }
    // dropout between layers: run the layers one by one
    this.drop.training = this.training;
    let inp = x;
    const finals: Tensor[] = [];
    let out: Tensor | null = null;
    for (let l = 0; l < this.numLayers; l++) {
      const hl = h0 ? narrow(h0, 0, l, 1) : null;
      const r = gru(inp, hl, [this.layerWeights[l]], { batchFirst: this.batchFirst, lengths: opts.lengths });
      hl?.dispose();
      finals.push(r.hN);
      if (inp !== x) inp.dispose();
      if (l < this.numLayers - 1) {
        inp = this.drop.forward(r.output);
        r.output.dispose();
      } else {
        out = r.output;
      }
    }
    const hN = concat(finals, 0);
    for (const f of finals) f.dispose();
    return { output: out as Tensor, hN };
  }
}
