/**
 * Builds the browser bundles (esbuild) and serves the demo, the kernels and a run folder on
 * localhost. Used by `npm run demo`, the browser tests (test/browser/) and demo/screenshot.ts.
 *
 *   node demo/serve.ts [--run runs/fmnist-default] [--port 8080]
 *
 * URL layout: /            demo/index.html and demo/*.css
 *             /dist/*      the bundles (demo.js, checks.js), built into a temporary folder
 *             /kernels/*   kernels/*.wgsl, fetched by src/engine/platform-web.ts, and
 *                          /kernels/index.json, the folder's *.wgsl names (made on each request)
 *             /run/*       the run folder (config.json, results.json, <variant>/model.safetensors,
 *                          <variant>/scores.npz, generator/G.safetensors)
 * Only GET of files under those folders; no directory listings, no path outside them.
 */
import { createServer, type Server } from 'node:http';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, extname, join, normalize, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build, type Plugin } from 'esbuild';

export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');

/**
 * The engine's Node entry (src/engine/index.ts) installs the Dawn platform; modules of src/goe and
 * src/models that import it get the platform-free API (src/engine/api.ts) in the browser instead.
 */
const browserEngine: Plugin = {
  name: 'browser-engine',
  setup(b) {
    b.onResolve({ filter: /engine\/index\.ts$/ }, (args) => {
      const p = resolve(args.resolveDir, args.path);
      if (p === join(ROOT, 'src', 'engine', 'index.ts')) return { path: join(ROOT, 'src', 'engine', 'api.ts') };
      return undefined;
    });
  },
};

/**
 * test/helpers/reference.ts (whose random inputs the kernel checks share with the Node tests)
 * imports vitest's `expect` for its assertions; the checks never call it, and the page gets a stub.
 */
const noVitest: Plugin = {
  name: 'no-vitest',
  setup(b) {
    b.onResolve({ filter: /^vitest$/ }, () => ({ path: 'vitest', namespace: 'no-vitest' }));
    b.onLoad({ filter: /.*/, namespace: 'no-vitest' }, () => ({
      contents: 'export const expect = () => { throw new Error("vitest is not available in the browser"); };',
      loader: 'js',
    }));
  },
};

/** The bundles the pages load: demo.js (the demo app) and checks.js (the kernel checks page). */
export async function buildBundles(outdir: string): Promise<void> {
  await build({
    entryPoints: { demo: join(ROOT, 'demo', 'app.ts'), checks: join(ROOT, 'demo', 'checks-page.ts') },
    bundle: true,
    format: 'esm',
    platform: 'browser',
    target: 'es2023',
    outdir,
    sourcemap: true,
    logLevel: 'warning',
    plugins: [browserEngine, noVitest],
  });
}

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8', '.js': 'text/javascript; charset=utf-8', '.css': 'text/css; charset=utf-8',
  '.map': 'application/json', '.json': 'application/json', '.wgsl': 'text/plain; charset=utf-8',
  '.png': 'image/png', '.svg': 'image/svg+xml',
};

export interface DemoServer {
  server: Server;
  url: string;
  close(): Promise<void>;
}

export interface ServeOptions {
  /** A run folder served under /run/ (default runs/fmnist-default when it exists). */
  runDir?: string;
  port?: number;
  /** Folder of built bundles (default: a fresh temporary folder, built now). */
  distDir?: string;
  /** Folder served as /kernels/ (default kernels/; GOE_WEB_KERNELS overrides it, e.g. a mutated copy
   * for a mutation check that leaves the shared tree alone). */
  kernelsDir?: string;
}

/** Builds the bundles and starts the server (port 0: any free port). */
export async function startDemoServer(opts: ServeOptions = {}): Promise<DemoServer> {
  const dist = opts.distDir ?? mkdtempSync(join(tmpdir(), 'goe-web-'));
  if (!opts.distDir) await buildBundles(dist);
  const runDir = opts.runDir ? resolve(opts.runDir) : join(ROOT, 'runs', 'fmnist-default');
  const kernelsDir = resolve(opts.kernelsDir ?? process.env.GOE_WEB_KERNELS ?? join(ROOT, 'kernels'));
  const mounts: [string, string][] = [
    ['/dist/', dist],
    ['/kernels/', kernelsDir],
    ['/run/', runDir],
    ['/', join(ROOT, 'demo')],
  ];
  const server = createServer((req, res) => {
    const path = decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname);
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405).end();
      return;
    }
    if (path === '/kernels/index.json') {
      res.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'no-store' });
      res.end(JSON.stringify(kernelNames(kernelsDir)));
      return;
    }
    const file = resolveFile(mounts, path === '/' ? '/index.html' : path);
    if (!file) {
      res.writeHead(404, { 'content-type': 'text/plain' }).end(`not found: ${path}`);
      return;
    }
    res.writeHead(200, { 'content-type': TYPES[extname(file)] ?? 'application/octet-stream', 'cache-control': 'no-store' });
    res.end(req.method === 'HEAD' ? undefined : readFileSync(file));
  });
  await new Promise<void>((ok, fail) => {
    server.once('error', fail);
    server.listen(opts.port ?? 0, '127.0.0.1', () => ok());
  });
  const addr = server.address();
  const port = typeof addr === 'object' && addr ? addr.port : opts.port;
  return {
    server,
    url: `http://127.0.0.1:${port}/`,
    close: () => new Promise((ok) => server.close(() => {
      if (!opts.distDir) rmSync(dist, { recursive: true, force: true }); // the bundles we built
      ok();
    })),
  };
}

/** The kernel files' names (what platform-web.ts fetches): every kernels/*.wgsl and
 * kernels/<folder>/*.wgsl (the software adapter's kernels/simd8/), as `name` or `folder/name`. */
export function kernelNames(dir = join(ROOT, 'kernels')): string[] {
  return readdirSync(dir, { recursive: true, encoding: 'utf8' })
    .map((f) => f.split(sep).join('/'))
    .filter((f) => f.endsWith('.wgsl') && f.split('/').length <= 2)
    .map((f) => f.slice(0, -5))
    .sort();
}

function resolveFile(mounts: [string, string][], path: string): string | null {
  for (const [prefix, dir] of mounts) {
    if (!path.startsWith(prefix)) continue;
    const file = normalize(join(dir, path.slice(prefix.length)));
    if (file !== dir && !file.startsWith(dir + sep)) return null;
    if (existsSync(file) && statSync(file).isFile()) return file;
    if (prefix !== '/') return null;
  }
  return null;
}

function arg(name: string): string | undefined {
  const i = process.argv.indexOf(name);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const runDir = arg('--run');
  if (runDir && !existsSync(join(runDir, 'config.json'))) {
    console.error(`error: ${runDir} is not a run folder (no config.json): pass --run runs/NAME of a finished \`goe run\``);
    process.exit(2);
  }
  const port = Number(arg('--port') ?? 8080);
  const s = await startDemoServer({ runDir, port });
  console.log(`demo at ${s.url} (run folder: ${resolve(runDir ?? join(ROOT, 'runs', 'fmnist-default'))}); Chrome/Chromium with WebGPU`);
}
