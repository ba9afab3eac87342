/**
 * The kernel-checks page (demo/checks.html): starts the engine on navigator.gpu and exposes
 * `window.goeChecks` for test/browser/kernels.test.ts, which runs them in headless Chromium.
 * `document.body.dataset.state` says where the page is: loading, ready, running, done or error.
 */
import { initBrowser, describeAdapter } from '../src/web/index.ts';
import { runKernelChecks } from '../test/browser/kernel-checks.ts';
import { renderCheckRow } from './check-rows.ts';

const body = document.body;
try {
  const rt = await initBrowser({ kernelBaseUrl: new URL('kernels/', location.href) });
  const adapter = describeAdapter(rt);
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
