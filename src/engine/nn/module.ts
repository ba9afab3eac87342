/**
 * Module: the base of every layer and model, as torch.nn.Module. A module registers its
 * parameters, buffers and submodules by name; `namedParameters()` and `stateDict()` give
 * PyTorch's dotted names (`block1.layer.0.conv1.weight`), so checkpoints map one-to-one onto
 * PyTorch's. Order: a module's own parameters, then its buffers, then its submodules in
 * registration order (as PyTorch's state_dict).
 *
 * Ownership: a module owns its parameters and buffers; `dispose()` frees them (recursively).
 * Subclasses keep fields pointing at what they registered, e.g.
 *   this.weight = this.registerParameter('weight', Parameter.empty([out, in]));
 *   this.fc = this.registerModule('fc', new Linear(4, 3));
 */
import { Tensor } from '../tensor.ts';
import { runtime } from '../runtime.ts';
import { Parameter, copyValues } from './parameter.ts';
import { zeroGradOf } from '../optim/optimizer.ts';

/** Values on the host, as a checkpoint reader produces them. */
export interface HostTensor {
  shape: readonly number[];
  data: Float32Array | Int32Array | Uint32Array | Float64Array | Uint8Array | BigInt64Array;
}

export type StateSource = ReadonlyMap<string, Tensor | HostTensor> | Readonly<Record<string, Tensor | HostTensor>>;

/** The result of a non-strict load (strict loads throw instead of returning leftovers). */
export interface LoadResult {
  missingKeys: string[];
  unexpectedKeys: string[];
}

/** A module with a single-tensor forward (what Sequential chains). */
export interface UnaryModule extends Module {
  forward(x: Tensor): Tensor;
}

const NAME = /^[A-Za-z0-9_]+$/;

export class Module {
  /** Training mode (dropout active, batch statistics); `eval()` clears it. */
  training = true;
  private readonly _params = new Map<string, Parameter | null>();
  private readonly _buffers = new Map<string, Tensor | null>();
  private readonly _nonPersistent = new Set<string>();
  private readonly _modules = new Map<string, Module | null>();

  /** The class name (error messages, like PyTorch's "for MLP:"). */
  get typeName(): string {
    return this.constructor.name;
  }

  private checkName(kind: string, name: string): void {
    if (!NAME.test(name)) throw new Error(`${this.typeName}: ${kind} name "${name}" must be letters, digits or underscores (dots separate modules)`);
    const taken = (this._params.has(name) && kind !== 'parameter') || (this._buffers.has(name) && kind !== 'buffer') || (this._modules.has(name) && kind !== 'module');
    if (taken) throw new Error(`${this.typeName}: "${name}" is already registered as another kind of attribute`);
  }

  registerParameter<P extends Parameter | null>(name: string, p: P): P {
    this.checkName('parameter', name);
    if (p !== null && !(p instanceof Parameter)) throw new Error(`${this.typeName}: parameter "${name}" must be a Parameter (use Parameter.from(tensor))`);
    this._params.set(name, p);
    return p;
  }

  /** A tensor that is state but not a parameter (running statistics); persistent ones are saved. */
  registerBuffer<T extends Tensor | null>(name: string, t: T, persistent = true): T {
    this.checkName('buffer', name);
    this._buffers.set(name, t);
    if (persistent) this._nonPersistent.delete(name);
    else this._nonPersistent.add(name);
    return t;
  }

  registerModule<M extends Module | null>(name: string, m: M): M {
    this.checkName('module', name);
    this._modules.set(name, m);
    return m;
  }

  /** Replaces a registered buffer's tensor (e.g. running statistics updated out of place); the
   * previous tensor is disposed. */
  setBuffer(name: string, t: Tensor): void {
    if (!this._buffers.has(name)) throw new Error(`${this.typeName}: no buffer named "${name}"`);
    const old = this._buffers.get(name);
    if (old && old !== t) old.dispose();
    this._buffers.set(name, t);
  }

  getParameter(name: string): Parameter | null {
    if (!this._params.has(name)) throw new Error(`${this.typeName}: no parameter named "${name}"`);
    return this._params.get(name)!;
  }

  getBuffer(name: string): Tensor | null {
    if (!this._buffers.has(name)) throw new Error(`${this.typeName}: no buffer named "${name}"`);
    return this._buffers.get(name)!;
  }

  // ---------------------------------------------------------------- traversal

  namedChildren(): [string, Module][] {
    return [...this._modules].filter((e): e is [string, Module] => e[1] !== null);
  }

  children(): Module[] {
    return this.namedChildren().map(([, m]) => m);
  }

  /** This module and every submodule, pre-order, with dotted names ('' for this one). */
  namedModules(prefix = ''): [string, Module][] {
    const out: [string, Module][] = [];
    const seen = new Set<Module>();
    const visit = (m: Module, name: string) => {
      if (seen.has(m)) return;
      seen.add(m);
      out.push([name, m]);
      for (const [n, c] of m.namedChildren()) visit(c, name ? `${name}.${n}` : n);
    };
    visit(this, prefix);
    return out;
  }

  modules(): Module[] {
    return this.namedModules().map(([, m]) => m);
  }

  /** Parameters with dotted names; a parameter shared by two modules is listed once. */
  namedParameters(prefix = '', recurse = true): [string, Parameter][] {
    const out: [string, Parameter][] = [];
    const seen = new Set<Parameter>();
    const mods: [string, Module][] = recurse ? this.namedModules(prefix) : [[prefix, this]];
    for (const [mname, m] of mods) {
      for (const [n, p] of m._params) {
        if (!p || seen.has(p)) continue;
        seen.add(p);
        out.push([mname ? `${mname}.${n}` : n, p]);
      }
    }
    return out;
  }

  parameters(recurse = true): Parameter[] {
    return this.namedParameters('', recurse).map(([, p]) => p);
  }

  namedBuffers(prefix = '', recurse = true): [string, Tensor][] {
    const out: [string, Tensor][] = [];
    const seen = new Set<Tensor>();
    const mods: [string, Module][] = recurse ? this.namedModules(prefix) : [[prefix, this]];
    for (const [mname, m] of mods) {
      for (const [n, b] of m._buffers) {
        if (!b || seen.has(b)) continue;
        seen.add(b);
        out.push([mname ? `${mname}.${n}` : n, b]);
      }
    }
    return out;
  }

  buffers(recurse = true): Tensor[] {
    return this.namedBuffers('', recurse).map(([, b]) => b);
  }

  /** Calls fn on every submodule (children first) and this module. */
  apply(fn: (m: Module) => void): this {
    for (const c of this.children()) c.apply(fn);
    fn(this);
    return this;
  }

  train(mode = true): this {
    for (const m of this.modules()) m.training = mode;
    return this;
  }

  eval(): this {
    return this.train(false);
  }

  /** Number of parameter elements (a model summary's count). */
  numParameters(): number {
    return this.parameters().reduce((a, p) => a + p.size, 0);
  }

  zeroGrad(setToNone = true): void {
    zeroGradOf(this.parameters(), setToNone);
  }

  // ---------------------------------------------------------------- state dict

  /**
   * Parameters and persistent buffers by dotted name (the tensors themselves, not copies: do
   * not dispose them). Shared tensors appear under every name, as in PyTorch.
   */
  stateDict(prefix = ''): Map<string, Tensor> {
    const out = new Map<string, Tensor>();
    const visit = (m: Module, name: string) => {
      const pre = name ? `${name}.` : '';
      for (const [n, p] of m._params) if (p) out.set(pre + n, p);
      for (const [n, b] of m._buffers) if (b && !m._nonPersistent.has(n)) out.set(pre + n, b);
      for (const [n, c] of m._modules) if (c) visit(c, pre + n);
    };
    visit(this, prefix);
    return out;
  }

  /**
   * Copies values into the parameters and buffers. Every problem is reported at once, before
   * anything is copied: shape mismatches always; missing and unexpected keys when `strict`
   * (the default), else they are returned.
   */
  loadStateDict(state: StateSource, strict = true): LoadResult {
    const src = state instanceof Map ? state : new Map(Object.entries(state as Record<string, Tensor | HostTensor>));
    const own = this.stateDict();
    const missingKeys = [...own.keys()].filter((k) => !src.has(k));
    const unexpectedKeys = [...src.keys()].filter((k) => !own.has(k));
    const problems: string[] = [];
    if (strict && missingKeys.length > 0) problems.push(`Missing key(s) in state_dict: ${missingKeys.map((k) => `"${k}"`).join(', ')}.`);
    if (strict && unexpectedKeys.length > 0) problems.push(`Unexpected key(s) in state_dict: ${unexpectedKeys.map((k) => `"${k}"`).join(', ')}.`);
    for (const [k, dst] of own) {
      const v = src.get(k);
      if (!v) continue;
      if (!sameShape(v.shape, dst.shape)) {
        problems.push(`size mismatch for ${k}: copying a param with shape [${v.shape.join(', ')}] from checkpoint, the shape in current model is [${dst.shape.join(', ')}].`);
      } else if (v instanceof Tensor && v.dtype !== dst.dtype) {
        problems.push(`dtype mismatch for ${k}: ${v.dtype} in the checkpoint, ${dst.dtype} in the model.`);
      } else if (!(v instanceof Tensor) && v.data.length !== dst.size) {
        problems.push(`${k}: ${v.data.length} values for shape [${dst.shape.join(', ')}].`);
      }
    }
    if (problems.length > 0) throw new Error(`Error(s) in loading state_dict for ${this.typeName}:\n  ${problems.join('\n  ')}`);
    for (const [k, dst] of own) {
      const v = src.get(k);
      if (!v || dst.size === 0) continue;
      if (v instanceof Tensor) {
        if (v !== dst) copyValues(dst, v);
      } else {
        if (!dst.isContiguous) throw new Error(`loadStateDict: ${k} is not contiguous`);
        runtime().device.upload(dst.bufferFor('loadStateDict'), dst.offset * 4, convert(v.data, dst.dtype));
      }
    }
    return { missingKeys, unexpectedKeys };
  }

  /** Frees every parameter and buffer of this module and its submodules. */
  dispose(): void {
    for (const m of this.modules()) {
      for (const p of m._params.values()) p?.dispose();
      for (const b of m._buffers.values()) b?.dispose();
    }
  }
}

function sameShape(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}

function convert(data: HostTensor['data'], dtype: Tensor['dtype']): Float32Array | Int32Array | Uint32Array {
  if (dtype === 'f32') return data instanceof Float32Array ? data : Float32Array.from(data as ArrayLike<number>, Number);
  if (dtype === 'i32') return data instanceof Int32Array ? data : Int32Array.from(data as ArrayLike<number>, Number);
  return data instanceof Uint32Array ? data : Uint32Array.from(data as ArrayLike<number>, Number);
}
