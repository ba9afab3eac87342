/**
 * Dependencies point one way: kernels <- engine <- models <- goe (data is used by goe only), and
 * the engine imports nothing Node-specific outside platform-node.ts (and io's Node file layer),
 * so it can run on a browser's navigator.gpu.
 */
import { describe, it, expect } from 'vitest';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative, resolve, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const SRC = join(ROOT, 'src');

function tsFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) return tsFiles(p);
    return p.endsWith('.ts') ? [p] : [];
  });
}

function imports(file: string): string[] {
  const text = readFileSync(file, 'utf8');
  const re = /(?:import|export)\s[^'"]*?from\s+['"]([^'"]+)['"]|import\(\s*['"]([^'"]+)['"]\s*\)/g;
  const out: string[] = [];
  for (let m = re.exec(text); m; m = re.exec(text)) out.push(m[1] ?? m[2]);
  return out;
}

/** Which layer a source file belongs to (its first folder under src/). */
function layer(file: string): string {
  return relative(SRC, file).split('/')[0];
}

// For each layer, the layers it may import from.
const ALLOWED: Record<string, string[]> = {
  engine: ['engine'],
  models: ['engine', 'models'],
  data: ['data', 'engine'],
  goe: ['engine', 'models', 'data', 'goe'],
  cli: ['engine', 'models', 'data', 'goe', 'cli'],
  // the browser entry and the demo's logic (src/web): never data (Node file readers); the browser
  // bundle (demo/serve.ts) fails on any Node import, which the browser tests build
  web: ['engine', 'models', 'goe', 'web'],
};

// Engine files that may use Node built-ins: the platform module and the file layer of io.
const NODE_ALLOWED = [/^engine\/platform-node\.ts$/, /^engine\/io\/node-[\w-]+\.ts$/];

describe('layering', () => {
  const files = tsFiles(SRC);

  it('finds the source tree', () => {
    expect(files.length).toBeGreaterThan(10);
  });

  it('imports only point down the layers', () => {
    const bad: string[] = [];
    for (const f of files) {
      const from = layer(f);
      const allowed = ALLOWED[from];
      if (!allowed) continue;
      for (const spec of imports(f)) {
        if (!spec.startsWith('.')) continue;
        const target = resolve(dirname(f), spec);
        if (!target.startsWith(SRC)) continue;
        const to = layer(target);
        if (!allowed.includes(to)) bad.push(`${relative(ROOT, f)} imports ${spec} (${from} -> ${to})`);
      }
    }
    expect(bad).toEqual([]);
  });

  it('the engine uses Node only in its platform module', () => {
    const bad: string[] = [];
    for (const f of files.filter((x) => layer(x) === 'engine')) {
      const rel = relative(SRC, f);
      if (NODE_ALLOWED.some((re) => re.test(rel))) continue;
      for (const spec of imports(f)) {
        if (spec.startsWith('node:') || ['fs', 'path', 'os', 'url', 'module', 'child_process', 'worker_threads'].includes(spec) || spec === 'webgpu') {
          bad.push(`${rel} imports ${spec}`);
        }
      }
    }
    expect(bad).toEqual([]);
  });

  it('models use the engine through its public API only (api.ts, or index.ts for the Node file layer)', () => {
    const PUBLIC = [join(SRC, 'engine', 'api.ts'), join(SRC, 'engine', 'index.ts')];
    const bad: string[] = [];
    for (const f of files.filter((x) => layer(x) === 'models')) {
      for (const spec of imports(f)) {
        if (!spec.startsWith('.')) continue;
        const target = resolve(dirname(f), spec);
        if (layer(target) === 'engine' && !PUBLIC.includes(target)) bad.push(`${relative(ROOT, f)} imports ${spec}`);
      }
    }
    expect(bad).toEqual([]);
  });
});
