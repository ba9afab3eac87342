/**
 * The kernel-checks page (demo/checks.html): starts the engine on navigator.gpu and exposes
 * `window.goeChecks` for test/browser/kernels.test.ts, which runs them in headless Chromium.
 * `?run` (or `?run=NAME`, `?run=all`) runs them on load; `?caps=nosubgroups` plans the kernels as
 * for an adapter without subgroups.
 * `document.body.dataset.state` says where the page is: loading, ready, running, done or error.
 */
import { initBrowser, describeAdapter } from '../src/web/index.ts';
import { runKernelChecks } from '../test/browser/kernel-checks.ts';
import { renderCheckRow } from './check-rows.ts';

const body = document.body;
try {
  const rt = await initBrowser({ kernelBaseUrl: new URL('kernels/', location.href) });
  // ?caps=nosubgroups: plan every kernel as on an adapter without subgroups (src/engine/caps.ts)
  const capsParam = new URLSearchParams(location.search).get('caps');
  if (capsParam === 'nosubgroups') rt.device.restrictCaps({ subgroups: false });
  else if (capsParam) throw new Error(`?caps=${capsParam}: expected nosubgroups`);
  const adapter = describeAdapter(rt) + (capsParam ? ` [caps restricted: ${capsParam}]` : '');
  document.getElementById('adapter')!.textContent = adapter;
  const rows = document.querySelector('#results tbody')!;
  window.goeChecks = {
    adapter,
    async run(filter?: string) {
      const extended = filter === 'all';
      if (extended) filter = undefined;
      body.dataset.state = 'running';
      rows.replaceChildren();
      const results = await runKernelChecks({ filter, extended, onResult: (r) => rows.append(renderCheckRow(r)) });
      body.dataset.state = 'done';
      return results;
    },
  };
  body.dataset.state = 'ready';
  if (new URLSearchParams(location.search).has('run')) await window.goeChecks.run(new URLSearchParams(location.search).get('run') || undefined);
} catch (e) {
  window.goeError = (e as Error).message;
  document.getElementById('adapter')!.textContent = `error: ${(e as Error).message}`;
  body.dataset.state = 'error';
}
