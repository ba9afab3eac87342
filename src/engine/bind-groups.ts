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

export class BindGroupCache {
  private readonly device: GPUDevice;
  private readonly limit: number;
  /** Key -> group, in least-recently-used order (a hit moves its key to the end). */
  private readonly groups = new Map<string, { group: GPUBindGroup; resources: object[] }>();
  /** Keys of the cached groups naming each buffer or view (for `forget`). */
  private readonly byResource = new Map<object, Set<string>>();
  private readonly ids = new WeakMap<object, number>();
  private nextId = 1;
  private created = 0;
  private hits = 0;

  constructor(device: GPUDevice, limit: number) {
    this.device = device;
    this.limit = limit;
  }

  /** The group for `layout` and `entries` (bindings in order 0..n-1), from the cache when it can be. */
  get(label: string, layout: GPUBindGroupLayout, entries: GPUBindGroupEntry[]): GPUBindGroup {
    let key = `${this.id(layout)}`;
    const resources: object[] = [];
    for (const e of entries) {
      const r = e.resource;
      if (isBufferBinding(r)) {
        key += `|${this.id(r.buffer)}:${r.offset ?? 0}:${r.size ?? -1}`;
        resources.push(r.buffer);
      } else {
        key += `|${this.id(r)}`;
        resources.push(r);
      }
    }
    const hit = this.groups.get(key);
    if (hit) {
      this.groups.delete(key);
      this.groups.set(key, hit);
      this.hits++;
      return hit.group;
    }
    const group = this.create(label, layout, entries);
    this.groups.set(key, { group, resources });
    for (const r of resources) {
      let keys = this.byResource.get(r);
      if (!keys) this.byResource.set(r, (keys = new Set()));
      keys.add(key);
    }
    if (this.groups.size > this.limit) this.drop(this.groups.keys().next().value!);
    return group;
  }

  /** Drops every cached group that names `resource`, a buffer or a texture view (call before
   * destroying or dropping it). */
  forget(resource: object): void {
    const keys = this.byResource.get(resource);
    if (!keys) return;
    for (const k of [...keys]) this.drop(k);
  }

  clear(): void {
    this.groups.clear();
    this.byResource.clear();
  }

  stats(): BindGroupStats {
    return { cached: this.groups.size, created: this.created, hits: this.hits };
  }

  private create(label: string, layout: GPUBindGroupLayout, entries: GPUBindGroupEntry[]): GPUBindGroup {
    this.created++;
    return this.device.createBindGroup({ label, layout, entries });
  }

  private drop(key: string): void {
    const entry = this.groups.get(key);
    if (!entry) return;
    this.groups.delete(key);
    for (const r of entry.resources) {
      const keys = this.byResource.get(r);
      if (!keys) continue;
      keys.delete(key);
      if (keys.size === 0) this.byResource.delete(r);
    }
  }

  private id(o: object): number {
    let id = this.ids.get(o);
    if (id === undefined) this.ids.set(o, (id = this.nextId++));
    return id;
  }
}

function isBufferBinding(r: GPUBindingResource): r is GPUBufferBinding {
  return typeof (r as GPUBufferBinding).buffer?.getMappedRange === 'function';
}
