/**
 * Bind groups reused by identity instead of created per dispatch.
 *
 * WebGPU has no way to free a bind group: its native part (Dawn's descriptor set) goes when the
 * JavaScript wrapper is garbage-collected, and V8 does not see that memory. One bind group per
 * dispatch left tens of thousands alive between major collections (about 6 KB of resident memory
 * each on lavapipe) until a descriptor-pool allocation failed inside the driver (SIGSEGV; bench/
 * NOTES.md, "Bind groups per dispatch"). A training step records the same kernels on the same
 * pooled buffers at the same uniform-arena offsets step after step, so a group keyed by (layout,
 * each entry's buffer, offset and size) is found again from the second step on.
 *
 * The key is a path through nested maps (layout, then per entry the resource object, and for a
 * buffer range its offset and size), walked with one Map lookup per part and nothing allocated
 * on a hit: the string key built per dispatch before was 13% of a WRN-10-1 step's host time
 * (bench/NOTES.md, "The host's cost per step").
 *
 * Other resources (texture views) key by identity: make one view per texture and reuse it, or
 * every call adds a group. The cache holds at most `limit` groups, dropping the least recently
 * used; `forget(resource)` drops the groups naming a buffer or view before it is destroyed or
 * dropped (a cached group keeps its resources alive).
 */

export interface BindGroupStats {
  /** Groups the cache holds now. */
  cached: number;
  /** Groups created (cached or not) since the device was made: flat in a steady training loop. */
  created: number;
  /** Dispatches that found their group in the cache. */
  hits: number;
}

/** One level of the key path: the next part's children, and the group whose key ends here. */
interface KeyNode {
  kids: Map<unknown, KeyNode>;
  leaf: CachedGroup | null;
}

interface CachedGroup {
  group: GPUBindGroup;
  resources: object[];
  /** The nodes from the layout's root to this group's node, and the key part under each. */
  nodes: KeyNode[];
  parts: unknown[];
}

export class BindGroupCache {
  private readonly device: GPUDevice;
  private readonly limit: number;
  private readonly roots = new Map<GPUBindGroupLayout, KeyNode>();
  /** Cached groups in least-recently-used order (a hit moves its group to the end). */
  private readonly order = new Set<CachedGroup>();
  /** The cached groups naming each buffer or view (for `forget`). */
  private readonly byResource = new Map<object, Set<CachedGroup>>();
  private created = 0;
  private hits = 0;

  constructor(device: GPUDevice, limit: number) {
    this.device = device;
    this.limit = limit;
  }

  /** The group for `layout` and `entries` (bindings in order 0..n-1), from the cache when it can be. */
  get(label: string, layout: GPUBindGroupLayout, entries: GPUBindGroupEntry[]): GPUBindGroup {
    const root = this.rootOf(layout);
    let node = root;
    for (const e of entries) node = walk(node, e.resource);
    return this.found(node) ?? this.insert(label, layout, root, entries.map((e) => e.resource));
  }

  /**
   * Device.dispatch's lookup: binding 0 is `uniform`'s range (offset, size) when `uniform` is
   * given, the `resources` follow (a GPUBuffer binds whole). Allocates only when the group is new.
   */
  forDispatch(
    label: string,
    layout: GPUBindGroupLayout,
    uniform: GPUBuffer | null,
    uOffset: number,
    uSize: number,
    resources: readonly (GPUBuffer | GPUBindingResource)[],
  ): GPUBindGroup {
    const root = this.rootOf(layout);
    let node = root;
    if (uniform) node = child(child(child(node, uniform), uOffset), uSize);
    for (let i = 0; i < resources.length; i++) node = walk(node, resources[i]);
    const hit = this.found(node);
    if (hit) return hit;
    const all = uniform ? [{ buffer: uniform, offset: uOffset, size: uSize }, ...resources] : resources;
    return this.insert(label, layout, root, all);
  }

  /** Drops every cached group that names `resource`, a buffer or a texture view (call before
   * destroying or dropping it). */
  forget(resource: object): void {
    const groups = this.byResource.get(resource);
    if (!groups) return;
    for (const g of [...groups]) this.drop(g);
  }

  clear(): void {
    this.roots.clear();
    this.order.clear();
    this.byResource.clear();
  }

  stats(): BindGroupStats {
    return { cached: this.order.size, created: this.created, hits: this.hits };
  }

  private rootOf(layout: GPUBindGroupLayout): KeyNode {
    let root = this.roots.get(layout);
    if (!root) this.roots.set(layout, (root = newNode()));
    return root;
  }

  private found(node: KeyNode): GPUBindGroup | null {
    const leaf = node.leaf;
    if (!leaf) return null;
    this.order.delete(leaf);
    this.order.add(leaf);
    this.hits++;
    return leaf.group;
  }

  /** Creates and caches the group for `all` (the resources of bindings 0..n-1, a GPUBuffer
   * binding whole), keyed as `walk` keys them. */
  private insert(label: string, layout: GPUBindGroupLayout, root: KeyNode, all: readonly (GPUBuffer | GPUBindingResource)[]): GPUBindGroup {
    this.created++;
    const entries = all.map((r, binding) => ({ binding, resource: isBuffer(r) ? { buffer: r } : r }));
    const group = this.device.createBindGroup({ label, layout, entries });
    const nodes: KeyNode[] = [root];
    const parts: unknown[] = [];
    const resources: object[] = [];
    let node = root;
    for (const r of all) {
      const rparts = isBuffer(r) ? [r] : isBufferBinding(r) ? [r.buffer, r.offset ?? 0, r.size ?? -1] : [r];
      resources.push(rparts[0] as object);
      for (const part of rparts) {
        parts.push(part);
        nodes.push((node = child(node, part)));
      }
    }
    const leaf: CachedGroup = { group, resources, nodes, parts };
    node.leaf = leaf;
    this.order.add(leaf);
    for (const r of resources) {
      let set = this.byResource.get(r);
      if (!set) this.byResource.set(r, (set = new Set()));
      set.add(leaf);
    }
    if (this.order.size > this.limit) this.drop(this.order.values().next().value!);
    return group;
  }

  private drop(g: CachedGroup): void {
    if (!this.order.delete(g)) return;
    g.nodes[g.nodes.length - 1].leaf = null;
    // prune the nodes left empty, so no map keeps a dropped buffer or view alive
    for (let i = g.nodes.length - 1; i > 0; i--) {
      const n = g.nodes[i];
      if (n.leaf || n.kids.size > 0) break;
      g.nodes[i - 1].kids.delete(g.parts[i - 1]);
    }
    for (const r of g.resources) {
      const set = this.byResource.get(r);
      if (!set) continue;
      set.delete(g);
      if (set.size === 0) this.byResource.delete(r);
    }
  }
}

function newNode(): KeyNode {
  return { kids: new Map(), leaf: null };
}

function child(node: KeyNode, part: unknown): KeyNode {
  let next = node.kids.get(part);
  if (!next) node.kids.set(part, (next = newNode()));
  return next;
}

/** One entry's parts: a whole buffer or a view as the object, a buffer range as (buffer, offset,
 * size). A whole buffer's next part is an object or the end, a range's a number: paths of
 * different entry lists never meet. */
function walk(node: KeyNode, r: GPUBuffer | GPUBindingResource): KeyNode {
  if (isBuffer(r)) return child(node, r);
  if (isBufferBinding(r)) return child(child(child(node, r.buffer), r.offset ?? 0), r.size ?? -1);
  return child(node, r);
}

function isBuffer(r: GPUBuffer | GPUBindingResource): r is GPUBuffer {
  return typeof (r as GPUBuffer).getMappedRange === 'function';
}

function isBufferBinding(r: GPUBindingResource): r is GPUBufferBinding {
  return typeof (r as GPUBufferBinding).buffer?.getMappedRange === 'function';
}
