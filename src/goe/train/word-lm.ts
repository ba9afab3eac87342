/**
 * Training the text generator as the paper did: pytorch/examples word_language_model (main.py)
 * with its default hyper-parameters for the Transformer (emsize 200, nhid 200, 2 layers, 2 heads,
 * dropout 0.2, SGD lr 20 divided by 4 whenever the validation loss does not improve, gradient
 * clipping 0.25, bptt 35, batch 20, evaluation batch 10), on the in-distribution training texts.
 *
 * data.py's corpus: every text is split on whitespace and ends with '<eos>'; the dictionary lists
 * words in order of first appearance. batchify makes [nbatch, bsz] columns of consecutive ids;
 * get_batch takes bptt rows as input and the next rows as targets. Logs every `logEvery` batches
 * (one loss read back), checkpoints (model, optimizer, RNG, epoch, lr, best validation loss) after
 * every epoch, resumable at epoch boundaries; keeps the weights of the best validation epoch, as
 * main.py saves them.
 *
 * Divergence (the engine's DivergenceGuard): each batch's loss and gradients are scanned on the
 * GPU; the flag, with a scan of the model and optimizer state, is read at log batches and at every
 * epoch's end before the validation pass and the checkpoints; a non-finite validation loss counts
 * too. Either stops the run with a DivergenceError (no checkpoint written, no model returned).
 */
import { existsSync } from 'node:fs';
import {
  DivergenceGuard, SGD, backward, clipGradNorm, getRngState, keep, loadCheckpoint, manualSeed, nllLoss, noGrad, saveCheckpoint, scope, setRngState, tensor, trainingState, type Tensor,
} from '../../engine/index.ts';
import { TransformerModel } from '../../models/index.ts';
import { formatDuration, type LogFn } from './log.ts';
import { isCorruptCheckpoint, loadNewestGoodCheckpoint, previousCheckpoint, saveKeepingPrevious } from './checkpoint-files.ts';

/** word_language_model's main.py options for the Transformer (its defaults: 40 epochs, emsize/nhid 200, 2 layers, 2 heads, dropout 0.2, lr 20, clip 0.25, bptt 35, batch 20). */
export interface WordLmConfig {
  epochs: number;
  emsize?: number;
  nhid?: number;
  nlayers?: number;
  nhead?: number;
  dropout?: number;
  lr?: number;
  clip?: number;
  bptt?: number;
  batchSize?: number;
}

export interface WordLmOptions extends WordLmConfig {
  texts: readonly string[];
  valTexts: readonly string[];
  evalBatchSize?: number;
  logEvery?: number;
  checkpoint?: string;
  resume?: boolean;
  /** Seeds the engine's generator before the model is built (initial weights, dropout), default 0. */
  seed?: number;
  log: LogFn;
  /** The divergence guard (default on); off runs exactly the unguarded loop. */
  divergenceGuard?: boolean;
}

export interface WordCorpus {
  words: string[];
  ids: Int32Array;
}

/** data.py's Corpus.tokenize over the given texts, with a shared dictionary. */
export function wordCorpus(texts: readonly string[], words: string[] = [], index = new Map<string, number>(words.map((w, i) => [w, i]))): WordCorpus {
  const ids: number[] = [];
  const add = (w: string): void => {
    let k = index.get(w);
    if (k === undefined) {
      k = words.length;
      words.push(w);
      index.set(w, k);
    }
    ids.push(k);
  };
  for (const t of texts) {
    for (const w of t.split(/\s+/)) if (w !== '') add(w);
    add('<eos>');
  }
  return { words, ids: Int32Array.from(ids) };
}

/** main.py's batchify: [nbatch, bsz] row-major, column j holding ids[j * nbatch, (j + 1) * nbatch). */
export function batchify(ids: Int32Array, bsz: number): { data: Int32Array; rows: number } {
  const rows = Math.floor(ids.length / bsz);
  const data = new Int32Array(rows * bsz);
  for (let j = 0; j < bsz; j++) for (let r = 0; r < rows; r++) data[r * bsz + j] = ids[j * rows + r]!;
  return { data, rows };
}

function lossOn(model: TransformerModel, src: { data: Int32Array; rows: number }, bsz: number, i: number, bptt: number): Tensor {
  const S = Math.min(bptt, src.rows - 1 - i);
  const x = tensor(src.data.subarray(i * bsz, (i + S) * bsz), [S, bsz], 'i32');
  const y = tensor(src.data.subarray((i + 1) * bsz, (i + 1 + S) * bsz), [S * bsz], 'i32');
  const out = model.forward(x, { mask: true });
  return nllLoss(out.reshape([S * bsz, model.ntoken]), y);
}

/** main.py's evaluate(): the mean loss per target over the whole source. */
async function evaluate(model: TransformerModel, src: { data: Int32Array; rows: number }, bsz: number, bptt: number): Promise<number> {
  model.eval();
  let total = 0;
  for (let i = 0; i < src.rows - 1; i += bptt) {
    const S = Math.min(bptt, src.rows - 1 - i);
    const l = noGrad(() => scope(() => lossOn(model, src, bsz, i, bptt)));
    total += S * (await l.item());
    l.dispose();
  }
  return total / (src.rows - 1);
}

export async function trainWordLm(o: WordLmOptions): Promise<{ model: TransformerModel; words: string[]; valLoss: number }> {
  const bptt = o.bptt ?? 35;
  const bsz = o.batchSize ?? 20;
  const evalBsz = o.evalBatchSize ?? 10;
  const train = wordCorpus(o.texts);
  const index = new Map(train.words.map((w, i) => [w, i]));
  const val = wordCorpus(o.valTexts, train.words, index); // the dictionary grows over both, as data.py's
  const words = train.words;
  const trainData = batchify(train.ids, bsz);
  const valData = batchify(val.ids, evalBsz);
  if (trainData.rows < 2 || valData.rows < 2) throw new Error(`trainWordLm: corpus too small (${train.ids.length} training, ${val.ids.length} validation words)`);
  manualSeed(o.seed ?? 0); // the run does not depend on what the process did before
  const model = new TransformerModel(words.length, { ninp: o.emsize ?? 200, nhid: o.nhid ?? 200, nlayers: o.nlayers ?? 2, nhead: o.nhead ?? 2, dropout: o.dropout ?? 0.2 });
  const opt = new SGD(model.parameters(), { lr: o.lr ?? 20 });
  let epoch = 0;
  let resumed = false;
  let best = Infinity;
  let bestState: Map<string, { shape: number[]; data: Float32Array }> | null = null;
  const snapshot = async () => {
    const m = new Map<string, { shape: number[]; data: Float32Array }>();
    for (const [k, t] of model.stateDict()) m.set(k, { shape: [...t.shape], data: Float32Array.from((await t.data()) as Float32Array) });
    return m;
  };
  // the last two checkpoints (and best models) are kept; a corrupt newest one is said and skipped
  const found = o.resume && o.checkpoint !== undefined ? await loadNewestGoodCheckpoint(o.checkpoint, (file) => loadCheckpoint(file, { model, optimizer: opt }), o.log, 'word-lm') : null;
  if (found !== null) {
    const { meta } = found.value;
    epoch = meta.epoch as number;
    resumed = true;
    best = (meta.best as number | null) ?? Infinity;
    // the best model as of the resumed epoch: the newer of the two kept that is not past it. Building
    // its holder draws initial weights from the generator the checkpoint just restored: put it back
    // after (else the resumed epochs' dropout masks shift and the run is no longer bit-identical)
    const restored = getRngState();
    for (const file of [`${o.checkpoint}.best`, previousCheckpoint(`${o.checkpoint}.best`)]) {
      if (bestState !== null || !existsSync(file)) continue;
      const b = new TransformerModel(words.length, { ninp: o.emsize ?? 200, nhid: o.nhid ?? 200, nlayers: o.nlayers ?? 2, nhead: o.nhead ?? 2, dropout: o.dropout ?? 0.2 });
      try {
        const { meta: bm } = await loadCheckpoint(file, { model: b, restoreRng: false });
        if ((bm.epoch as number) <= epoch) {
          const m = new Map<string, { shape: number[]; data: Float32Array }>();
          for (const [k, t] of b.stateDict()) m.set(k, { shape: [...t.shape], data: Float32Array.from((await t.data()) as Float32Array) });
          bestState = m;
        }
      } catch (e) {
        if (!isCorruptCheckpoint(e)) throw e;
        o.log(`[word-lm] ${file} is corrupt (${(e as Error).message.split('\n')[0]}); skipped`);
      } finally {
        b.dispose();
      }
    }
    setRngState(restored);
    o.log(`[word-lm] resumed from ${found.file} after epoch ${epoch}, lr ${opt.paramGroups[0]!.options.lr}, best validation loss ${best.toFixed(3)}`);
  }
  o.log(`[word-lm] ${words.length} words in the dictionary, ${train.ids.length} training / ${val.ids.length} validation tokens, ${model.numParameters()} parameters`);
  const clip = o.clip ?? 0.25;
  const logEvery = o.logEvery ?? 200;
  const nb = Math.ceil((trainData.rows - 1) / bptt);
  const guard = o.divergenceGuard === false ? null : new DivergenceGuard({
    phase: 'word-lm', checkpoint: o.checkpoint, resumedAt: resumed ? epoch * nb : undefined,
    where: (s) => `step ${s} (epoch ${Math.max(Math.ceil(s / nb), 1)}, batch ${s === 0 ? 0 : ((s - 1) % nb) + 1})`,
  });
  const state = () => trainingState({ '': model, optimizer: opt });
  try {
    for (; epoch < o.epochs; epoch++) {
      const t0 = performance.now();
      model.train();
      let b = 0;
      for (let i = 0; i < trainData.rows - 1; i += bptt, b++) {
        const want = (b + 1) % logEvery === 0;
        const l = scope(() => {
          opt.zeroGrad();
          const loss = lossOn(model, trainData, bsz, i, bptt);
          backward(loss);
          guard?.step(epoch * nb + b + 1, loss, model.parameters());
          clipGradNorm(model.parameters(), clip).dispose();
          opt.step();
          return want ? keep(loss) : null;
        });
        if (l !== null) {
          const v = await l.item();
          l.dispose();
          await guard?.check(epoch * nb + b + 1, state());
          const rate = (b + 1) / ((performance.now() - t0) / 1000);
          o.log(`[word-lm] epoch ${epoch + 1}/${o.epochs} batch ${b + 1}/${nb} loss ${v.toFixed(3)} ppl ${Math.exp(v).toFixed(1)} lr ${opt.paramGroups[0]!.options.lr} ${rate.toFixed(2)} batches/s`);
        }
      }
      await guard?.check((epoch + 1) * nb, state());
      const v = await evaluate(model, valData, evalBsz, bptt);
      if (guard && !Number.isFinite(v)) await guard.fail((epoch + 1) * nb, `validation loss (${v})`, state());
      o.log(`[word-lm] end of epoch ${epoch + 1}: validation loss ${v.toFixed(3)} ppl ${Math.exp(v).toFixed(1)} (${formatDuration((performance.now() - t0) / 1000)})`);
      if (v < best) {
        best = v;
        bestState = await snapshot();
        if (o.checkpoint !== undefined) await saveKeepingPrevious(`${o.checkpoint}.best`, (file) => saveCheckpoint(file, { model, meta: { epoch: epoch + 1, val: v } }));
      } else {
        opt.paramGroups[0]!.options.lr /= 4; // main.py: anneal when the validation loss did not improve
      }
      if (o.checkpoint !== undefined) {
        await saveKeepingPrevious(o.checkpoint, (file) => saveCheckpoint(file, { model, optimizer: opt, meta: { epoch: epoch + 1, best } }));
        guard?.saved(o.checkpoint, (epoch + 1) * nb);
      }
    }
  } catch (e) {
    opt.dispose();
    model.dispose(); // a diverged model is never returned
    throw e;
  } finally {
    guard?.dispose();
  }
  opt.dispose();
  if (bestState !== null) model.loadStateDict(bestState);
  return { model, words, valLoss: best };
}
