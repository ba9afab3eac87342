/**
 * Checkpoints for resumable training, platform-free (bytes in, bytes out; io/node-files.ts
 * writes them to disk atomically). One safetensors file holds:
 *   model.<name>                   the module's state dict (PyTorch's names)
 *   optimizer.state.<i>.<name>     optimizer state per parameter index (exp_avg, momentum_buffer...)
 *   __metadata__: format, the optimizer's hyper-parameters and step counts, the scheduler's
 *                 state, the global random generator's state, and the caller's JSON (epoch, step...).
 * A model alone can also be written as a plain state dict (`modelToSafetensors`), which
 * safetensors.torch.load_file + load_state_dict read in PyTorch unchanged.
 * Both carry CRC-32s of every tensor and of the metadata (safetensors.ts), checked when read: a
 * corrupt file is a ChecksumError naming it, raised before anything is restored. Files written
 * before checksums existed load unverified.
 */
import type { Tensor } from '../tensor.ts';
import type { Module, HostTensor, LoadResult } from '../nn/module.ts';
import type { Optimizer, OptimizerState } from '../optim/optimizer.ts';
import { getRngState, setRngState } from '../ops/random.ts';
import { parseSafetensors, serializeSafetensors, toFloat32, SafetensorsError, type WritableTensor, type SafeTensor } from './safetensors.ts';

export const CHECKPOINT_FORMAT = 'goe-checkpoint/1';

/** Anything with a JSON-able state (the LR schedulers). */
export interface Stateful {
  stateDict(): unknown;
  loadStateDict(state: never): void;
}

export interface CheckpointParts {
  model: Module;
  optimizer?: Optimizer<any>;
  scheduler?: Stateful;
  /** Caller's JSON (epoch, step, best metric, config...). */
  meta?: Record<string, unknown>;
}

async function hostTensor(t: Tensor): Promise<WritableTensor> {
  const data = await t.data();
  return { shape: [...t.shape], data: data as Float32Array | Int32Array | Uint32Array };
}

/** The module's state dict as a safetensors file (values read back from the GPU). */
export async function modelToSafetensors(model: Module, metadata: Record<string, string> = {}): Promise<Uint8Array> {
  const tensors = new Map<string, WritableTensor>();
  for (const [k, t] of model.stateDict()) tensors.set(k, await hostTensor(t));
  return serializeSafetensors(tensors, metadata);
}

function toHost(t: SafeTensor): HostTensor {
  if (t.dtype === 'F16' || t.dtype === 'BF16') return { shape: t.shape, data: toFloat32(t) };
  return { shape: t.shape, data: t.data as HostTensor['data'] };
}

/** Loads a plain state-dict file into `model` (strict by default: see Module.loadStateDict). */
export function loadModelFromSafetensors(model: Module, bytes: ArrayBuffer | Uint8Array, strict = true, source?: string): LoadResult {
  const file = parseSafetensors(bytes, { source });
  const state = new Map<string, HostTensor>();
  for (const [k, t] of file.tensors) state.set(k, toHost(t));
  return model.loadStateDict(state, strict);
}

function jsonString(what: string, v: unknown): string {
  try {
    return JSON.stringify(v);
  } catch (e) {
    throw new Error(`checkpoint: ${what} is not JSON-serializable (${(e as Error).message})`);
  }
}

/** Serializes model, optimizer, scheduler, random state and metadata (reads back the GPU). */
export async function checkpointToBytes(parts: CheckpointParts): Promise<Uint8Array> {
  const metadata: Record<string, string> = { format: CHECKPOINT_FORMAT, meta: jsonString('meta', parts.meta ?? {}) };
  const tensors = new Map<string, WritableTensor>();
  for (const [k, t] of parts.model.stateDict()) tensors.set(`model.${k}`, await hostTensor(t));
  if (parts.optimizer) {
    const st = await parts.optimizer.stateDict();
    for (const [k, v] of st.tensors) tensors.set(`optimizer.${k}`, { shape: v.shape, data: v.data });
    metadata.optimizer = jsonString('optimizer state', st.meta);
  }
  if (parts.scheduler) metadata.scheduler = jsonString('scheduler state', parts.scheduler.stateDict());
  const rng = getRngState();
  metadata.rng = JSON.stringify({ seed: rng.seed.toString(), offset: rng.offset });
  return serializeSafetensors(tensors, metadata);
}

export interface RestoreOptions {
  model: Module;
  optimizer?: Optimizer<any>;
  scheduler?: Stateful;
  /** Model keys must match exactly (default true). */
  strict?: boolean;
  /** Restore the global random generator (default true), so dropout masks and sampling resume
   * where the saved run was. */
  restoreRng?: boolean;
  /** A file name for error messages. */
  source?: string;
}

/** Restores a checkpoint into the given model (and optimizer, scheduler); returns the caller's
 * metadata. Everything is validated before anything is changed. */
export function checkpointFromBytes(bytes: ArrayBuffer | Uint8Array, opts: RestoreOptions): { meta: Record<string, unknown> } {
  try {
    return restore(bytes, opts);
  } catch (e) {
    if (e instanceof SafetensorsError) e.file ??= opts.source;
    throw e;
  }
}

function restore(bytes: ArrayBuffer | Uint8Array, opts: RestoreOptions): { meta: Record<string, unknown> } {
  const where = opts.source ? `${opts.source}: ` : '';
  const file = parseSafetensors(bytes, { source: opts.source });
  const md = file.metadata;
  if (md.format !== CHECKPOINT_FORMAT) {
    throw new SafetensorsError(`${where}not a goe checkpoint (metadata format ${JSON.stringify(md.format)}, expected "${CHECKPOINT_FORMAT}"); a plain state dict loads with loadModelFromSafetensors`);
  }
  const parse = (key: string): unknown => {
    try {
      return JSON.parse(md[key]);
    } catch (e) {
      throw new SafetensorsError(`${where}metadata "${key}" is not valid JSON (${(e as Error).message})`);
    }
  };
  const modelState = new Map<string, HostTensor>();
  const optimTensors = new Map<string, { shape: number[]; data: Float32Array }>();
  for (const [k, t] of file.tensors) {
    if (k.startsWith('model.')) modelState.set(k.slice(6), toHost(t));
    else if (k.startsWith('optimizer.')) optimTensors.set(k.slice(10), { shape: t.shape, data: toFloat32(t) });
    else throw new SafetensorsError(`${where}unexpected tensor "${k}" (checkpoint tensors start with "model." or "optimizer.")`);
  }
  let optimState: OptimizerState | null = null;
  if (opts.optimizer) {
    if (md.optimizer === undefined) throw new SafetensorsError(`${where}the checkpoint has no optimizer state`);
    optimState = { tensors: optimTensors, meta: parse('optimizer') as OptimizerState['meta'] };
  }
  if (opts.scheduler && md.scheduler === undefined) throw new SafetensorsError(`${where}the checkpoint has no scheduler state`);
  const meta = parse('meta') as Record<string, unknown>;
  opts.model.loadStateDict(modelState, opts.strict ?? true);
  if (optimState) opts.optimizer!.loadStateDict(optimState);
  if (opts.scheduler) opts.scheduler.loadStateDict(parse('scheduler') as never);
  if ((opts.restoreRng ?? true) && md.rng !== undefined) {
    const rng = parse('rng') as { seed: string; offset: number };
    setRngState({ seed: BigInt(rng.seed), offset: rng.offset });
  }
  return { meta };
}
