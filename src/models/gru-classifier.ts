/**
 * The paper's text classifier: pytorch-ood's `GRUClassifier` (after the Outlier Exposure NLP code),
 * with its parameter names so a PyTorch state_dict maps one-to-one:
 *
 *   embedding   nn.Embedding(n_vocab, 50, padding_idx=1)           embedding.weight
 *   gru         nn.GRU(50, 128, num_layers=2, batch_first=True)   gru.weight_ih_l0, ...
 *   fc          nn.Linear(128, num_classes)                       fc.weight, fc.bias
 *
 * Input: token ids, batch first, [B, T] (i32). Feature = `self.gru(embeds)[1][1]` in pytorch-ood,
 * i.e. h_n of the second (last) layer: the last layer's hidden state after the final time step
 * T - 1. The GRU runs over every position, padding included, exactly as pytorch-ood (no packing):
 * with the paper's left padding (pad id 1 first, tokens last) the final step is always a real
 * token, and the padding steps still update the state (their embedding row is zero, but the GRU's
 * biases act), which we reproduce. Right-padded batches may pass `lengths` instead (PyTorch's
 * pack_padded_sequence semantics: each sequence's state at its own last token); that is not what
 * pytorch-ood does and is off by default.
 *
 * Older pytorch-ood releases named the head `linear` instead of `fc`; `headName: 'linear'`
 * loads such checkpoints. Initialisation is PyTorch's default for each layer (Embedding N(0, 1)
 * with a zero padding row, GRU and Linear U(+-1/sqrt(fan))).
 */
import type { Tensor } from '../engine/api.ts';
import { OpError } from '../engine/api.ts';
import { narrow } from '../engine/api.ts';
import { reshape } from '../engine/api.ts';
import { Module } from '../engine/api.ts';
import { Linear, Embedding } from '../engine/api.ts';
import { GRU } from '../engine/api.ts';

export interface GRUClassifierOptions {
  /** Embedding width (pytorch-ood: 50). */
  embeddingDim?: number;
  /** GRU hidden size (pytorch-ood: 128). */
  hiddenSize?: number;
  /** GRU layers (pytorch-ood: 2). */
  numLayers?: number;
  /** Padding token id (pytorch-ood: 1, torchtext's <pad>). */
  paddingIdx?: number;
  /** Name of the classification head: 'fc' (current pytorch-ood) or 'linear' (older releases). */
  headName?: 'fc' | 'linear';
}

export class GRUClassifier extends Module {
  readonly numClasses: number;
  readonly nVocab: number;
  readonly embedding: Embedding;
  readonly gru: GRU;
  readonly fc: Linear;

  constructor(numClasses: number, nVocab: number, opts: GRUClassifierOptions = {}) {
    super();
    const E = opts.embeddingDim ?? 50;
    const H = opts.hiddenSize ?? 128;
    const L = opts.numLayers ?? 2;
    const head = opts.headName ?? 'fc';
    if (head !== 'fc' && head !== 'linear') throw new OpError('GRUClassifier', `headName must be 'fc' or 'linear', got '${String(head)}'`);
    if (!Number.isInteger(numClasses) || numClasses < 1) throw new OpError('GRUClassifier', `numClasses must be a positive integer, got ${numClasses}`);
    this.numClasses = numClasses;
    this.nVocab = nVocab;
    this.embedding = this.registerModule('embedding', new Embedding(nVocab, E, { paddingIdx: opts.paddingIdx ?? 1 }));
    this.gru = this.registerModule('gru', new GRU(E, H, { numLayers: L, bias: true, batchFirst: true }));
    this.fc = this.registerModule(head, new Linear(H, numClasses));
  }

  /** h_n of the last GRU layer [B, hidden] for token ids [B, T] (pytorch-ood's `features`). */
  features(ids: Tensor, opts: { lengths?: readonly number[] | null } = {}): Tensor {
    if (ids.rank !== 2 || ids.dtype !== 'i32') {
      throw new OpError('GRUClassifier', `input must be i32 token ids [B, T], got ${ids.dtype} [${ids.shape.join(', ')}]`);
    }
    const emb = this.embedding.forward(ids); // [B, T, E]
    const { output, hN } = this.gru.forward(emb, null, { lengths: opts.lengths });
    emb.dispose();
    output.dispose();
    const L = this.gru.numLayers;
    const last = narrow(hN, 0, L - 1, 1); // [1, B, H]
    const f = reshape(last, [hN.shape[1], hN.shape[2]]);
    last.dispose();
    hN.dispose();
    return f;
  }

  /** Logits [B, classes]. */
  forward(ids: Tensor, opts: { lengths?: readonly number[] | null } = {}): Tensor {
    const f = this.features(ids, opts);
    const y = this.fc.forward(f);
    f.dispose();
    return y;
  }
}
