/**
 * Deterministic weights for the full-size goldens, computed identically by
 * scripts/fixtures/torch_vit_resnet.py (`seeded`), so ViT-B/16's 86M and ResNet-101's 44M
 * parameters need not be committed: element i of the entry `name` is
 * center + scale * u, u = fmix32(i * 0x9E3779B1 + fnv1a(name)) / 2^32 * 2 - 1 (murmur3's
 * finaliser; u32 arithmetic), evaluated in float64 and rounded to float32.
 */
import type { HostTensor } from '../../src/engine/index.ts';

function fnv1a(name: string): number {
  let h = 0x811c9dc5;
  for (const b of new TextEncoder().encode(name)) h = Math.imul(h ^ b, 0x01000193) >>> 0;
  return h;
}

/** (center, scale) of a state-dict entry, the Python script's `seeded_spec`. */
function seededSpec(name: string, shape: readonly number[]): [number, number] {
  if (name.endsWith('running_var')) return [1, 0.5];
  if (name.endsWith('running_mean')) return [0, 0.1];
  if (shape.length === 1 && name.endsWith('weight')) return [1, 0.2];
  if (shape.length === 1 || name.endsWith('class_token') || name.endsWith('pos_embedding')) return [0, 0.1];
  const fanIn = shape.slice(1).reduce((a, b) => a * b, 1);
  return [0, Math.sqrt(3 / fanIn)];
}

export function seeded(name: string, shape: readonly number[]): Float32Array {
  const [center, scale] = seededSpec(name, shape);
  const n = shape.reduce((a, b) => a * b, 1);
  const s = fnv1a(name);
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    let x = (Math.imul(i, 0x9e3779b1) + s) >>> 0;
    x = (x ^ (x >>> 16)) >>> 0;
    x = Math.imul(x, 0x85ebca6b) >>> 0;
    x = (x ^ (x >>> 13)) >>> 0;
    x = Math.imul(x, 0xc2b2ae35) >>> 0;
    x = (x ^ (x >>> 16)) >>> 0;
    out[i] = center + scale * ((x / 4294967296) * 2 - 1);
  }
  return out;
}

/** The seeded state of a module's state_dict (num_batches_tracked stays 0). */
export function seededState(entries: Iterable<[string, { shape: readonly number[]; dtype: string }]>): Map<string, HostTensor> {
  const out = new Map<string, HostTensor>();
  for (const [name, t] of entries) {
    if (name.endsWith('num_batches_tracked')) out.set(name, { shape: [...t.shape], data: new Int32Array(1) });
    else out.set(name, { shape: [...t.shape], data: seeded(name, t.shape) });
  }
  return out;
}
