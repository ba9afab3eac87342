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
 * The key is the list of numbers (layout, then per entry the resource, and for a buffer range
 * its offset and size; objects by an id stored on them), hashed into one Map lookup and compared
 * with the cached group's list: nothing is allocated on a hit. A string key built per dispatch
 * was 13% of a WRN-10-1 step's host time, and a path through nested maps (one lookup per part)
 * ~2 us per dispatch of 2 buffers and 8 us for the SIMD-8 product's 14 bindings, scattered map
 * nodes missing the CPU's caches (bench/NOTES.md, "Bind-group lookups by hash").
 *
 * Other resources (texture views) key by identity: make one view per texture and reuse it, or
 * every call adds a group. The cache holds at most `limit` groups: past it, the least recently
 * used eighth goes (at least one), so a stream of new groups costs a sort per limit/8 inserts,
 * not a scan per insert; `forget(resource)` drops the groups naming a buffer or view before it
 * is destroyed or dropped (a cached group keeps its resources alive).
 */

export interface BindGroupStats {
  /** Groups the cache holds now. */
  cached: number;
  /** Groups created (cached or not) since the device was made: flat in a steady training loop. */
  created: number;
  /** Dispatches that found their group in the cache. */
  hits: number;
}

interface CachedGroup {
  group: GPUBindGroup;
  /** The key: numbers as `keyOf` writes them. */
  parts: number[];
  hash: number;
  /** The next group in the same hash bucket. */
  next: CachedGroup | null;
  /** The buffers and views it names (for `forget`). */
  resources: object[];
  lastUse: number;
}

/** Where the id of a buffer, view or layout is kept on the object itself (a property load, not a
 * map lookup per part). */
const ID = Symbol('goe-bind-group-id');
let nextId = 1;

/** Ids of objects that cannot take a property (frozen ones). */
const sealedIds = new WeakMap<object, number>();

function idOf(o: object): number {
  const r = o as { [ID]?: number };
  let id = r[ID] ?? sealedIds.get(o);
  if (id === undefined) {
    id = nextId++;
    if (Object.isExtensible(o)) Object.defineProperty(o, ID, { value: id });
    else sealedIds.set(o, id);
  }
  return id;
}

export class BindGroupCache {
  private readonly device: GPUDevice;
  private readonly limit: number;
  private readonly buckets = new Map<number, CachedGroup>();
  /** The cached groups naming each buffer or view (for `forget`). */
  private readonly byResource = new Map<object, Set<CachedGroup>>();
  private size = 0;
  private clock = 0;
  private created = 0;
  private hits = 0;
  /** The key being looked up (reused: nothing allocated on a hit). */
  private readonly key: number[] = [];

  constructor(device: GPUDevice, limit: number) {
    this.device = device;
    this.limit = limit;
  }

  /** The group for `layout` and `entries` (bindings in order 0..n-1), from the cache when it can be. */
  get(label: string, layout: GPUBindGroupLayout, entries: GPUBindGroupEntry[]): GPUBindGroup {
    const key = this.key;
    key.length = 0;
    key.push(idOf(layout));
    for (const e of entries) pushParts(key, e.resource);
    return this.found(key) ?? this.insert(label, layout, entries.map((e) => e.resource));
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
    const key = this.key;
    key.length = 0;
    key.push(idOf(layout));
    if (uniform) key.push(-idOf(uniform), uOffset, uSize); // a range, as pushParts writes one
    for (let i = 0; i < resources.length; i++) pushParts(key, resources[i]);
    const hit = this.found(key);
    if (hit) return hit;
    const all = uniform ? [{ buffer: uniform, offset: uOffset, size: uSize }, ...resources] : resources;
    return this.insert(label, layout, all);
  }

  /** Drops every cached group that names `resource`, a buffer or a texture view (call before
   * destroying or dropping it). */
  forget(resource: object): void {
    const groups = this.byResource.get(resource);
    if (!groups) return;
    for (const g of [...groups]) this.drop(g);
  }

  clear(): void {
    this.buckets.clear();
    this.byResource.clear();
    this.size = 0;
  }

  stats(): BindGroupStats {
    return { cached: this.size, created: this.created, hits: this.hits };
  }

  /** The cached group whose key is `this.key`, or null. */
  private found(key: number[]): GPUBindGroup | null {
    for (let g = this.buckets.get(hashOf(key)) ?? null; g; g = g.next) {
      if (sameKey(g.parts, key)) {
        g.lastUse = ++this.clock;
        this.hits++;
        return g.group;
      }
    }
    return null;
  }

  /** Creates and caches the group for `all` (the resources of bindings 0..n-1, a GPUBuffer
   * binding whole) under the key in `this.key`. */
  private insert(label: string, layout: GPUBindGroupLayout, all: readonly (GPUBuffer | GPUBindingResource)[]): GPUBindGroup {
    this.created++;
    const entries = all.map((r, binding) => ({ binding, resource: isBuffer(r) ? { buffer: r } : r }));
    const group = this.device.createBindGroup({ label, layout, entries });
    const parts = this.key.slice();
    const hash = hashOf(parts);
    const resources = all.map((r) => (isBufferBinding(r) ? r.buffer : (r as object)));
    const g: CachedGroup = { group, parts, hash, next: this.buckets.get(hash) ?? null, resources, lastUse: ++this.clock };
    this.buckets.set(hash, g);
    this.size++;
    for (const r of resources) {
      let set = this.byResource.get(r);
      if (!set) this.byResource.set(r, (set = new Set()));
      set.add(g);
    }
    if (this.size > this.limit) this.evict();
    return group;
  }

  /** Drops the least recently used eighth of the groups (at least one). */
  private evict(): void {
    const all: CachedGroup[] = [];
    for (const head of this.buckets.values()) for (let g: CachedGroup | null = head; g; g = g.next) all.push(g);
    all.sort((a, b) => a.lastUse - b.lastUse);
    const n = Math.max(1, Math.ceil(this.limit / 8));
    for (let i = 0; i < n && i < all.length; i++) this.drop(all[i]);
  }

  private drop(g: CachedGroup): void {
    const head = this.buckets.get(g.hash);
    if (!head) return;
    if (head === g) {
      if (g.next) this.buckets.set(g.hash, g.next);
      else this.buckets.delete(g.hash);
    } else {
      let p = head;
      while (p.next && p.next !== g) p = p.next;
      if (p.next !== g) return;
      p.next = g.next;
    }
    g.next = null;
    this.size--;
    for (const r of g.resources) {
      const set = this.byResource.get(r);
      if (!set) continue;
      set.delete(g);
      if (set.size === 0) this.byResource.delete(r);
    }
  }
}

/** One entry's parts: a whole buffer or a view as its id, a buffer range as (id, offset, size).
 * A range's size of "the rest" is -1; a whole buffer and a view are followed by the next entry's
 * id, a range by numbers, and ids are positive: entry lists of different kinds never share a key
 * (the layout fixes the number and kind of entries). */
function pushParts(key: number[], r: GPUBuffer | GPUBindingResource): void {
  if (isBufferBinding(r)) key.push(-idOf(r.buffer), r.offset ?? 0, r.size ?? -1);
  else key.push(idOf(r as object));
}

function hashOf(key: readonly number[]): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < key.length; i++) {
    const v = key[i];
    h = Math.imul(h ^ (v | 0), 0x01000193);
    // offsets past 2^32 (buffers over 4 GiB) also mix their high part
    if (v > 0xffffffff) h = Math.imul(h ^ ((v / 4294967296) | 0), 0x01000193);
  }
  return h;
}

function sameKey(a: readonly number[], b: readonly number[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

function isBuffer(r: GPUBuffer | GPUBindingResource): r is GPUBuffer {
  return typeof (r as GPUBuffer).getMappedRange === 'function';
}

function isBufferBinding(r: GPUBindingResource): r is GPUBufferBinding {
  return typeof (r as GPUBufferBinding).buffer?.getMappedRange === 'function';
}
