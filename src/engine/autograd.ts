/**
 * Reverse-mode autograd over the graph that ops record as they run.
 *
 * An op computes its output, then calls `record(...)` with its inputs, the tensors its backward
 * needs (`saved`) and the backward itself. Nothing is recorded under `noGrad` or when no input
 * requires a gradient. The backward lives beside the forward in the op's own file.
 *
 * Memory: a node holds its saved tensors (as handles sharing their storage) until backward has
 * used them, or until nothing can reach the node any more (its output disposed and no later node
 * depends on it). A graph that is never backpropagated therefore leaks nothing.
 */
import { OpError } from './errors.ts';
import { Tensor, scope, keep, type Storage } from './tensor.ts';
// The few kernels autograd itself needs (ones, copy, add) come from the op families.
import { onesLike, copyOf, copyValues, add, addInto } from './ops/grad-helpers.ts';

/**
 * An op's backward: the gradient of its output, the tensors it saved, and which inputs need a
 * gradient (skip the work for the others and return null there).
 *
 * `into` (destination passing): per input, null or a tensor the backward MAY write that input's
 * gradient into and return, as that same object, at that input's index: a Parameter's gradient
 * slot in its arena (same shape, f32, contiguous, usually at a non-zero offset inside a buffer
 * shared with other parameters' gradients; its offset is a multiple of 64 floats, 256 bytes).
 * Returning it marks the parameter's gradient present without the copy dispatch autograd would
 * otherwise make. Rules: write only the slot's own elements (other parameters' gradients sit
 * around it), never return it at another index, and never dispose it. Autograd offers a slot only
 * when the input is a Parameter leaf without a gradient yet, at its first index in this node,
 * and when neither the incoming gradient nor a saved tensor shares the slot's buffer (so no
 * dispatch binds that buffer both for reading and writing). A backward may ignore `into`.
 */
export type BackwardFn = (
  grad: Tensor,
  saved: readonly Tensor[],
  needsGrad: readonly boolean[],
  into: readonly (Tensor | null)[],
) => readonly (Tensor | null)[];

/** `into` when no input takes a slot (shared, never written). */
const NO_INTO: readonly (Tensor | null)[] = Object.freeze([]);

let gradEnabled = true;

/** Runs `fn` without recording a graph (evaluation, optimizer updates). */
export function noGrad<T>(fn: () => T): T {
  const prev = gradEnabled;
  gradEnabled = false;
  try {
    return fn();
  } finally {
    gradEnabled = prev;
  }
}

/** Runs `fn` with graph recording on, even inside `noGrad` (PyTorch's enable_grad): input
 * gradients at evaluation time (ODIN's input perturbation). */
export function enableGrad<T>(fn: () => T): T {
  const prev = gradEnabled;
  gradEnabled = true;
  try {
    return fn();
  } finally {
    gradEnabled = prev;
  }
}

export function isGradEnabled(): boolean {
  return gradEnabled;
}

export class GradNode {
  readonly op: string;
  /** Per input: the node that produced it, or null for a leaf / an input without gradient. */
  readonly inputNodes: (GradNode | null)[];
  /** Per input: the leaf tensor that accumulates the gradient, when the input is a leaf. */
  readonly inputLeaves: (Tensor | null)[];
  readonly inputShapes: (readonly number[])[];
  readonly needsGrad: boolean[];
  private saved: Tensor[];
  private readonly fn: BackwardFn;
  private refs = 1;
  private freed = false;
  /** The output handle, weakly, so retainGrad() can hand its gradient over. */
  outputRef: WeakRef<Tensor> | null = null;

  constructor(op: string, inputs: readonly Tensor[], saved: readonly Tensor[], fn: BackwardFn) {
    this.op = op;
    this.fn = fn;
    this.inputNodes = inputs.map((t) => (t.requiresGrad ? t.gradFn : null));
    this.inputLeaves = inputs.map((t) => (t.requiresGrad && !t.gradFn ? t : null));
    this.inputShapes = inputs.map((t) => t.shape);
    this.needsGrad = inputs.map((t) => t.requiresGrad);
    for (const n of this.inputNodes) n?.addRef();
    // Saved tensors are new handles on the same storage, owned by this node, not by any scope.
    this.saved = saved.map((t) => keep(t.view(t.shape, t.strides, t.offset)));
  }

  addRef(): void {
    this.refs++;
  }

  /** Drops one reference (an output disposed, or a consumer node freed). */
  dropRef(): void {
    if (--this.refs === 0) {
      this.releaseSaved();
      for (const n of this.inputNodes) n?.dropRef();
    }
  }

  get isFreed(): boolean {
    return this.freed;
  }

  releaseSaved(): void {
    for (const t of this.saved) t.dispose();
    this.saved = [];
    this.freed = true;
  }

  runBackward(grad: Tensor, into: readonly (Tensor | null)[] = NO_INTO): readonly (Tensor | null)[] {
    if (this.freed) {
      throw new OpError(
        `backward (${this.op})`,
        'the graph was already used by a backward pass (or its output was disposed); run the forward pass again',
      );
    }
    return this.fn(grad, this.saved, this.needsGrad, into);
  }

  /** Whether a saved tensor lives in `s`. */
  savesStorage(s: Storage): boolean {
    for (const t of this.saved) if (t.storageFor('backward') === s) return true;
    return false;
  }
}

/**
 * Connects `out` to the graph: called by every differentiable op after it computed `out`.
 * `saved` lists the tensors the backward reads; the backward gets them back as `saved` (never
 * capture the input tensors themselves in the closure: the caller may dispose them).
 */
export function record(op: string, out: Tensor, inputs: readonly Tensor[], saved: readonly Tensor[], backward: BackwardFn): Tensor {
  if (!gradEnabled || !inputs.some((t) => t.requiresGrad)) return out;
  const node = new GradNode(op, inputs, saved, backward);
  node.outputRef = new WeakRef(out);
  out.gradFn = node;
  out.requiresGrad = true;
  return out;
}

/**
 * Backpropagates from `root`: gradients accumulate into the `.grad` of leaves that require them
 * (and of intermediates that called `retainGrad()`). `grad` defaults to 1 for a scalar root.
 * The graph is freed as it is consumed.
 */
export function backward(root: Tensor, grad?: Tensor): void {
  if (!root.requiresGrad) {
    throw new OpError('backward', `tensor of shape [${root.shape.join(', ')}] does not require a gradient (no input of its graph has requiresGrad)`);
  }
  if (!grad && root.size !== 1) {
    throw new OpError('backward', `backward() from a non-scalar of shape [${root.shape.join(', ')}] needs an explicit gradient of the same shape`);
  }
  if (grad && !sameShape(grad.shape, root.shape)) {
    throw new OpError('backward', `gradient of shape [${grad.shape.join(', ')}] does not match the output's shape [${root.shape.join(', ')}]`);
  }
  root.storageFor('backward');
  const rootNode = root.gradFn;
  noGrad(() =>
    scope(() => {
      const flight = new InFlight(grad);
      const seed = grad ? grad : onesLike(root);
      flight.hold(seed);
      if (!rootNode) {
        accumulateLeaf(root, seed, flight);
        return;
      }
      const order = topoOrder(rootNode);
      const grads = new Map<GradNode, Tensor>();
      grads.set(rootNode, seed);
      for (const node of order) {
        const g = grads.get(node);
        if (!g) continue;
        grads.delete(node);
        const out = node.outputRef?.deref();
        if (out?.retainsGrad && !out.disposed) accumulateLeaf(out, flight.hold(copyOf(g)), flight);
        const into = slotsFor(node, g);
        const inGrads = node.runBackward(g, into);
        node.releaseSaved();
        // A backward may hand one tensor to several inputs (add's [g, g]) or return its incoming
        // gradient itself: the consumers share it (counted), and it is freed when the last is done.
        const handed: (Tensor | null)[] = [];
        for (let i = 0; i < node.needsGrad.length; i++) {
          const gi = inGrads[i];
          if (!node.needsGrad[i] || !gi) {
            handed.push(null);
            continue;
          }
          if (!sameShape(gi.shape, node.inputShapes[i])) {
            throw new OpError(`backward (${node.op})`, `gradient of input ${i} has shape [${gi.shape.join(', ')}], expected [${node.inputShapes[i].join(', ')}]`);
          }
          if (gi === into[i]) {
            // written into the parameter's slot: present now, no copy (a later index of the same
            // leaf adds into it below); the slot is the parameter's, never held or freed here
            node.inputLeaves[i]!.grad = gi;
            handed.push(null);
            continue;
          }
          handed.push(flight.hold(gi));
        }
        for (const gi of inGrads) if (gi && gi !== g && !flight.isHeld(gi) && gi !== grad && !into.includes(gi)) gi.dispose();
        flight.drop(g);
        for (let i = 0; i < handed.length; i++) {
          const gi = handed[i];
          if (!gi) continue;
          const leaf = node.inputLeaves[i];
          const prev = node.inputNodes[i];
          if (leaf) {
            accumulateLeaf(leaf, gi, flight);
          } else if (prev) {
            const acc = grads.get(prev);
            if (acc) {
              // out of place: either operand may be shared with another consumer
              grads.set(prev, flight.hold(add(acc, gi)));
              flight.drop(acc);
              flight.drop(gi);
            } else {
              grads.set(prev, gi);
            }
          } else {
            flight.drop(gi);
          }
        }
      }
    }),
  );
}

/**
 * The gradient tensors of one backward pass and how many consumers hold each (a pending node
 * gradient, an input about to receive it). Sharing is free as long as nothing writes into a shared
 * tensor; the only in-place write in a backward pass is accumulation into a leaf's own `.grad`, so
 * a plain leaf adopts a tensor as its `.grad` only when no other live gradient handle sees its
 * storage (views included) and it is not the caller's `grad`.
 */
class InFlight {
  private readonly holders = new Map<Tensor, number>();
  private readonly storages = new Map<Storage, number>();
  private readonly external: Tensor | undefined;

  constructor(external: Tensor | undefined) {
    this.external = external;
  }

  hold(t: Tensor): Tensor {
    this.holders.set(t, (this.holders.get(t) ?? 0) + 1);
    const s = t.storageFor('backward');
    this.storages.set(s, (this.storages.get(s) ?? 0) + 1);
    return t;
  }

  isHeld(t: Tensor): boolean {
    return this.holders.has(t);
  }

  /** One holder is done with `t`; the last one frees it (never the caller's gradient). */
  drop(t: Tensor): void {
    this.forget(t);
    if (!this.holders.has(t) && t !== this.external) t.dispose();
  }

  /** `t` may become a leaf's `.grad`, to be added into in place later. */
  canAdopt(t: Tensor): boolean {
    if (t === this.external || this.holders.get(t) !== 1) return false;
    const s = t.storageFor('backward');
    if (this.external && s === this.external.storageFor('backward')) return false;
    return this.storages.get(s) === 1 && t.isContiguous && t.offset === 0;
  }

  /** Hands `t` (held once) to a leaf: not counted or freed here any more. */
  adopt(t: Tensor): Tensor {
    this.forget(t);
    return t;
  }

  private forget(t: Tensor): void {
    const n = (this.holders.get(t) ?? 1) - 1;
    if (n > 0) this.holders.set(t, n);
    else this.holders.delete(t);
    const s = t.storageFor('backward');
    const m = (this.storages.get(s) ?? 1) - 1;
    if (m > 0) this.storages.set(s, m);
    else this.storages.delete(s);
  }
}

function sameShape(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}

/** Nodes in reverse topological order (outputs before the inputs they depend on). */
function topoOrder(root: GradNode): GradNode[] {
  const order: GradNode[] = [];
  const seen = new Set<GradNode>();
  // Iterative DFS: graphs of deep networks and long GRU sequences overflow a recursive one.
  const stack: [GradNode, number][] = [[root, 0]];
  seen.add(root);
  while (stack.length > 0) {
    const top = stack[stack.length - 1];
    const [node, i] = top;
    if (i < node.inputNodes.length) {
      top[1]++;
      const next = node.inputNodes[i];
      if (next && !seen.has(next)) {
        seen.add(next);
        stack.push([next, 0]);
      }
    } else {
      stack.pop();
      order.push(node);
    }
  }
  return order.reverse();
}


/**
 * Adds `g` (one holder's share) into `leaf`'s gradient. A Parameter's first gradient, when its
 * op's backward did not write it into the slot itself (BackwardFn's `into`), is copied straight
 * into its arena slot (one copy dispatch inside the open pass: no temporary copy, no buffer copy
 * that ends the pass); a plain leaf keeps `g` itself when it may (see InFlight).
 */
function accumulateLeaf(leaf: Tensor, g: Tensor, flight: InFlight): void {
  if (leaf.grad && !leaf.grad.disposed) {
    addInto(leaf.grad, g);
    flight.drop(g);
    return;
  }
  const slot = gradSlotOf(leaf);
  if (slot) {
    copyValues(slot, g);
    leaf.grad = slot;
    flight.drop(g);
  } else if (flight.canAdopt(g)) {
    leaf.grad = keep(flight.adopt(g));
  } else {
    leaf.grad = keep(copyOf(g));
    flight.drop(g);
  }
}

/**
 * The `into` of a node's backward (see BackwardFn): per input, the gradient slot of a Parameter
 * leaf that needs a gradient and has none yet, at the leaf's first index in the node, unless the
 * incoming gradient or a saved tensor shares the slot's buffer; NO_INTO when no input qualifies.
 */
function slotsFor(node: GradNode, g: Tensor): readonly (Tensor | null)[] {
  let into: (Tensor | null)[] | null = null;
  const leaves = node.inputLeaves;
  for (let i = 0; i < leaves.length; i++) {
    const leaf = leaves[i];
    if (!leaf || !node.needsGrad[i] || (leaf.grad && !leaf.grad.disposed)) continue;
    if (leaves.indexOf(leaf) !== i) continue;
    const slot = gradSlotOf(leaf);
    if (!slot) continue;
    const s = slot.storageFor('backward');
    if (g.storageFor('backward') === s || node.savesStorage(s)) continue;
    into ??= new Array<Tensor | null>(leaves.length).fill(null);
    into[i] = slot;
  }
  return into ?? NO_INTO;
}

/** A Parameter's gradient slot in its arena (nn/parameter.ts; assigning it to `.grad` marks the
 * gradient present without a copy), or null for a plain tensor. */
function gradSlotOf(leaf: Tensor): Tensor | null {
  const slotOf = (leaf as { gradSlot?: () => Tensor }).gradSlot;
  return typeof slotOf === 'function' ? slotOf.call(leaf) : null;
}

/** A new handle on the same storage, cut from the graph (PyTorch's detach). */
export function detach(t: Tensor): Tensor {
  return t.view(t.shape, t.strides, t.offset);
}
