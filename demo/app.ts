/**
 * The demo page (demo/index.html, `npm run demo`): a run folder's classifier and generator on
 * WebGPU in the page. The numbers come from src/web/goe-demo.ts, the same code the Node test
 * compares with (test/browser/demo.test.ts); this file is only the page around it.
 *
 * For tests and demo/screenshot.ts the page exposes `window.goeDemo` and marks its progress on
 * <body>: data-state (loading, ready, busy, error), data-classified and data-sampled (counters).
 */
import { initBrowser, describeAdapter } from '../src/web/index.ts';
import { openRun, classify, sampleGenerator, type Classification, type DemoRun, type RunReader, type Threshold } from '../src/web/goe-demo.ts';
import { runKernelChecks, type CheckResult } from '../test/browser/kernel-checks.ts';
import { renderCheckRow } from './check-rows.ts';

interface DemoApi {
  adapter: string;
  run: () => DemoRun | null;
  /** Classifies uint8 [C, S, S] pixels and shows the result, as a drawing or a picked image does. */
  classifyPixels(pixels: number[]): Promise<Classification & { flagged: Record<string, boolean> }>;
  /** Sets the slider and samples the grid; returns the uint8 images. */
  sample(sigma2: number, seed?: number): Promise<number[]>;
  runChecks(all?: boolean): Promise<CheckResult[]>;
}

declare global {
  interface Window {
    goeDemo?: DemoApi;
  }
}

const $ = <T extends HTMLElement>(id: string): T => document.getElementById(id) as T;
const body = document.body;
const status = $<HTMLParagraphElement>('status');
const draw = $<HTMLCanvasElement>('draw');
const drawCtx = draw.getContext('2d', { willReadFrequently: true })!;
const grid = $<HTMLCanvasElement>('grid');
const slider = $<HTMLInputElement>('sigma2');
const seedInput = $<HTMLInputElement>('seed');
const oodSelect = $<HTMLSelectElement>('ood-set');
const variantSelect = $<HTMLSelectElement>('variant');

let run: DemoRun | null = null;
let reader: RunReader | null = null;
let last: Classification | null = null;
let lastSamples: Uint8Array | null = null;

function setStatus(text: string, error = false): void {
  status.textContent = text;
  status.classList.toggle('error', error);
}

function bump(key: 'classified' | 'sampled'): void {
  body.dataset[key] = String(Number(body.dataset[key] ?? 0) + 1);
}

// ------------------------------------------------------------------ run folders

const servedRun: RunReader = async (path) => {
  const res = await fetch(new URL(`run/${path}`, location.href));
  return res.ok ? new Uint8Array(await res.arrayBuffer()) : null;
};

function folderReader(files: FileList): RunReader {
  const byPath = new Map<string, File>();
  for (const f of Array.from(files)) {
    const rel = (f as File & { webkitRelativePath: string }).webkitRelativePath.split('/').slice(1).join('/');
    byPath.set(rel, f);
  }
  return async (path) => {
    const f = byPath.get(path);
    return f ? new Uint8Array(await f.arrayBuffer()) : null;
  };
}

async function loadRun(r: RunReader, variant?: string): Promise<void> {
  body.dataset.state = 'busy';
  setStatus('loading the run...');
  const next = await openRun(r, variant);
  run?.dispose();
  run = next;
  reader = r;
  $('run-name').textContent = `${run.name}${run.accuracy !== null ? ` (test accuracy ${(run.accuracy * 100).toFixed(2)}%)` : ''}`;
  variantSelect.replaceChildren(...run.variants.map((v) => new Option(v, v, v === run!.variant, v === run!.variant)));
  const sets = [...new Set(run.thresholds.map((t) => t.outlierSet))];
  oodSelect.replaceChildren(...sets.map((s, i) => new Option(s, s, i === 0, i === 0)));
  draw.width = draw.height = run.size;
  clearDrawing();
  $('latent-note').textContent = run.generator
    ? `The run sampled its outliers at ${run.latent.scale === 'std' ? 'z std' : 'sigma^2'} = ${run.latent.sigma2} with G in ${run.latent.mode} mode; ` +
      `the slider is read the same way (${run.latent.scale === 'std' ? 'z ~ N(0, s^2 I), s = slider, as BigGAN-PyTorch reads z_var' : 'z ~ N(0, sigma^2 I)'}). Click a sample to classify it.`
    : 'This run has no generator (generator/G.safetensors).';
  // the slider starts at 1 (ordinary samples); the run's own value is where the outliers were drawn
  $('sigma2-value').textContent = slider.value;
  setStatus(`variant "${run.variant}": ${run.thresholds.length ? 'thresholds from its scores.npz' : 'no scores.npz: no OOD thresholds'}`);
  body.dataset.state = 'ready';
  if (run.generator) await resample();
}

// ------------------------------------------------------------------ the drawing canvas

function clearDrawing(): void {
  drawCtx.fillStyle = '#000';
  drawCtx.fillRect(0, 0, draw.width, draw.height);
}

function canvasPixels(): Uint8Array {
  const { data } = drawCtx.getImageData(0, 0, draw.width, draw.height);
  const C = run?.channels ?? 1;
  const n = draw.width * draw.height;
  const out = new Uint8Array(C * n);
  for (let i = 0; i < n; i++) {
    const [r, g, b] = [data[4 * i]!, data[4 * i + 1]!, data[4 * i + 2]!];
    // PIL's convert('L'): L = R * 299/1000 + G * 587/1000 + B * 114/1000
    if (C === 1) out[i] = Math.floor((r * 299 + g * 587 + b * 114 + 500) / 1000);
    else [r, g, b].forEach((v, c) => (out[c * n + i] = v));
  }
  return out;
}

function putPixels(pixels: Uint8Array, C: number): void {
  const S = draw.width;
  const img = drawCtx.createImageData(S, S);
  for (let i = 0; i < S * S; i++) {
    for (let c = 0; c < 3; c++) img.data[4 * i + c] = pixels[(C === 1 ? 0 : c) * S * S + i]!;
    img.data[4 * i + 3] = 255;
  }
  drawCtx.putImageData(img, 0, 0);
}

let drawing = false;
function strokeTo(e: PointerEvent, start: boolean): void {
  const rect = draw.getBoundingClientRect();
  const x = ((e.clientX - rect.left) / rect.width) * draw.width;
  const y = ((e.clientY - rect.top) / rect.height) * draw.height;
  drawCtx.strokeStyle = '#fff';
  drawCtx.lineWidth = draw.width / 12;
  drawCtx.lineCap = drawCtx.lineJoin = 'round';
  if (start) {
    drawCtx.beginPath();
    drawCtx.moveTo(x, y);
  }
  drawCtx.lineTo(x, y);
  drawCtx.stroke();
}
draw.addEventListener('pointerdown', (e) => {
  drawing = true;
  draw.setPointerCapture(e.pointerId);
  strokeTo(e, true);
});
draw.addEventListener('pointermove', (e) => drawing && strokeTo(e, false));
draw.addEventListener('pointerup', () => {
  drawing = false;
  void classifyCanvas();
});
$('clear').addEventListener('click', () => clearDrawing());

async function drawImageFile(file: Blob): Promise<void> {
  const bmp = await createImageBitmap(file);
  const S = draw.width;
  clearDrawing();
  // fit the whole image (Resize([S, S]) squashes; a drawing app keeps the aspect: we squash, as the run did)
  drawCtx.imageSmoothingQuality = 'high';
  drawCtx.drawImage(bmp, 0, 0, S, S);
  if (($('invert') as HTMLInputElement).checked) {
    const img = drawCtx.getImageData(0, 0, S, S);
    for (let i = 0; i < img.data.length; i += 4) for (let c = 0; c < 3; c++) img.data[i + c] = 255 - img.data[i + c]!;
    drawCtx.putImageData(img, 0, 0);
  }
  await classifyCanvas();
}
$<HTMLInputElement>('image-file').addEventListener('change', (e) => {
  const f = (e.target as HTMLInputElement).files?.[0];
  if (f) void drawImageFile(f).catch(showError);
});
const drop = $('drop');
drop.addEventListener('dragover', (e) => {
  e.preventDefault();
  drop.classList.add('over');
});
drop.addEventListener('dragleave', () => drop.classList.remove('over'));
drop.addEventListener('drop', (e) => {
  e.preventDefault();
  drop.classList.remove('over');
  const f = e.dataTransfer?.files[0];
  if (f) void drawImageFile(f).catch(showError);
});

// ------------------------------------------------------------------ classification

function thresholdsFor(set: string): Threshold[] {
  return run?.thresholds.filter((t) => t.outlierSet === set) ?? [];
}

function flags(c: Classification): Record<string, boolean> {
  const out: Record<string, boolean> = {};
  for (const t of thresholdsFor(oodSelect.value)) out[t.detector] = c.scores[t.detector as 'MSP' | 'Energy'] >= t.threshold;
  return out;
}

function showClassification(c: Classification): void {
  if (!run) return;
  $('prediction').textContent = `${run.classes[c.cls]} (p = ${c.probs[c.cls]!.toFixed(3)})`;
  const rows = (['MSP', 'Energy'] as const).map((d) => {
    const t = thresholdsFor(oodSelect.value).find((x) => x.detector === d);
    const tr = document.createElement('tr');
    const flagged = t ? c.scores[d] >= t.threshold : null;
    const cells = [
      d, c.scores[d].toFixed(4), t ? t.threshold.toFixed(4) : '-',
      flagged === null ? 'no threshold' : flagged ? 'OOD (flagged)' : 'in-distribution',
      t ? `${(t.fpr * 100).toFixed(2)}%${t.reportFpr !== null ? ` (report ${(t.reportFpr * 100).toFixed(2)}%)` : ''}` : '-',
    ];
    cells.forEach((text, i) => {
      const td = document.createElement('td');
      td.textContent = text;
      if (i === 3 && flagged !== null) td.className = flagged ? 'ood' : 'ind';
      tr.append(td);
    });
    return tr;
  });
  $('scores').querySelector('tbody')!.replaceChildren(...rows);
  $('probs').replaceChildren(...c.probs.map((p, i) => {
    const div = document.createElement('div');
    div.className = 'bar';
    const name = document.createElement('span');
    name.textContent = run!.classes[i]!;
    const bar = document.createElement('div');
    bar.style.width = `${Math.round(p * 200)}px`;
    const val = document.createElement('span');
    val.textContent = p.toFixed(3);
    div.append(name, bar, val);
    return div;
  }));
}

async function classifyPixels(pixels: Uint8Array): Promise<Classification> {
  if (!run) throw new Error('no run loaded');
  const c = await classify(run, pixels);
  last = c;
  showClassification(c);
  bump('classified');
  return c;
}

async function classifyCanvas(): Promise<void> {
  if (run) await classifyPixels(canvasPixels()).catch(showError);
}
oodSelect.addEventListener('change', () => last && showClassification(last));
variantSelect.addEventListener('change', () => reader && void loadRun(reader, variantSelect.value).catch(showError));
$<HTMLInputElement>('run-folder').addEventListener('change', (e) => {
  const files = (e.target as HTMLInputElement).files;
  if (files?.length) void loadRun(folderReader(files)).catch(showError);
});

// ------------------------------------------------------------------ the generator grid

let sampling: Promise<void> | null = null;
let pending = false;

async function sampleOnce(): Promise<void> {
  if (!run?.generator) return;
  const sigma2 = Number(slider.value);
  const seed = Number(seedInput.value) >>> 0;
  $('sigma2-value').textContent = String(sigma2);
  const n = 16;
  const t0 = performance.now();
  const px = await sampleGenerator(run, sigma2, n, seed);
  lastSamples = px;
  const S = run.size, C = run.channels, side = 4;
  grid.width = grid.height = S * side;
  const ctx = grid.getContext('2d')!;
  const img = ctx.createImageData(S * side, S * side);
  for (let k = 0; k < n; k++) {
    const ox = (k % side) * S, oy = Math.floor(k / side) * S;
    for (let i = 0; i < S * S; i++) {
      const o = 4 * ((oy + Math.floor(i / S)) * S * side + ox + (i % S));
      for (let c = 0; c < 3; c++) img.data[o + c] = px[(k * C + (C === 1 ? 0 : c)) * S * S + i]!;
      img.data[o + 3] = 255;
    }
  }
  ctx.putImageData(img, 0, 0);
  $('sample-time').textContent = `16 samples at sigma^2 = ${sigma2}, seed ${seed}: ${(performance.now() - t0).toFixed(0)} ms; classes 0-9 in reading order`;
  bump('sampled');
}

/** Samples now, or once more after the sampling in flight (the slider's newest value wins). */
function resample(): Promise<void> {
  if (sampling) {
    pending = true;
    return sampling;
  }
  sampling = (async () => {
    try {
      do {
        pending = false;
        await sampleOnce();
      } while (pending);
    } finally {
      sampling = null;
    }
  })();
  return sampling;
}
slider.addEventListener('input', () => {
  $('sigma2-value').textContent = slider.value;
  void resample().catch(showError);
});
seedInput.addEventListener('change', () => void resample().catch(showError));
grid.addEventListener('click', (e) => {
  if (!run || !lastSamples) return;
  const rect = grid.getBoundingClientRect();
  const k = Math.floor(((e.clientY - rect.top) / rect.height) * 4) * 4 + Math.floor(((e.clientX - rect.left) / rect.width) * 4);
  const n = run.channels * run.size * run.size;
  const px = lastSamples.slice(k * n, (k + 1) * n);
  putPixels(px, run.channels);
  void classifyPixels(px).catch(showError);
});

// ------------------------------------------------------------------ kernel checks panel

async function runChecks(all = false): Promise<CheckResult[]> {
  const rows = $('checks').querySelector('tbody')!;
  rows.replaceChildren();
  $('checks-summary').textContent = 'running...';
  const results = await runKernelChecks({ extended: all, onResult: (r) => rows.append(renderCheckRow(r)) });
  const failed = results.filter((r) => !r.ok).length;
  $('checks-summary').textContent = `${results.length - failed} of ${results.length} passed`;
  return results;
}
$('run-checks').addEventListener('click', () => void runChecks(false).catch(showError));
$('run-all-checks').addEventListener('click', () => void runChecks(true).catch(showError));

// ------------------------------------------------------------------ start

function showError(e: unknown): void {
  const msg = (e as Error).message ?? String(e);
  window.goeError = msg;
  setStatus(`error: ${msg}`, true);
  if (!run) body.dataset.state = 'error';
  else body.dataset.state = 'ready';
}

try {
  const rt = await initBrowser({ kernelBaseUrl: new URL('kernels/', location.href) });
  const adapter = describeAdapter(rt);
  $('adapter').textContent = `WebGPU adapter: ${adapter}`;
  window.goeDemo = {
    adapter,
    run: () => run,
    async classifyPixels(pixels) {
      const px = Uint8Array.from(pixels);
      if (run && px.length === run.channels * run.size * run.size) putPixels(px, run.channels);
      const c = await classifyPixels(px);
      return { ...c, flagged: flags(c) };
    },
    async sample(sigma2, seed) {
      slider.value = String(sigma2);
      if (seed !== undefined) seedInput.value = String(seed);
      await resample();
      return Array.from(lastSamples ?? []);
    },
    runChecks,
  };
  const params = new URLSearchParams(location.search);
  try {
    await loadRun(servedRun, params.get('variant') ?? undefined);
  } catch (e) {
    // no run served: the page still works once the user opens a run folder
    setStatus(`${(e as Error).message}. Open a run folder above (or start the server with npm run demo -- --run runs/NAME).`, true);
    body.dataset.state = 'ready';
  }
} catch (e) {
  showError(e);
}
