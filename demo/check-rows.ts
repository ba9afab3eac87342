/** One table row per kernel check (the checks page and the demo's panel). */
import type { CheckResult } from '../test/browser/kernel-checks.ts';

export function renderCheckRow(r: CheckResult): HTMLTableRowElement {
  const tr = document.createElement('tr');
  tr.className = r.ok ? 'pass' : 'fail';
  tr.title = r.detail;
  for (const text of [r.name, r.ok ? 'pass' : `FAIL: ${r.detail}`, r.worstError.toExponential(2), r.ms.toFixed(0)]) {
    const td = document.createElement('td');
    td.textContent = text;
    tr.append(td);
  }
  return tr;
}
