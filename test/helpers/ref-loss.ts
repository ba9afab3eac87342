/** float64 reference of the fused cross-entropy (hard targets, ignoreIndex, label smoothing, reductions)
 * and its gradient (shared by test/engine/loss.test.ts and test/browser/kernel-checks.ts). */

export type Red = 'mean' | 'sum' | 'none';

export function lseRow(x: ArrayLike<number>, r: number, C: number): number {
  let m = -Infinity;
  for (let c = 0; c < C; c++) m = Math.max(m, x[r * C + c]);
  let s = 0;
  for (let c = 0; c < C; c++) s += Math.exp(x[r * C + c] - m);
  return m + Math.log(s);
}

/** float64 cross-entropy per row (hard targets) and the valid mask. */
export function refCeRows(x: ArrayLike<number>, t: readonly number[], C: number, e: number, ignore: number): { rows: number[]; valid: number[] } {
  const rows: number[] = [];
  const valid: number[] = [];
  t.forEach((tr, r) => {
    const ok = tr !== ignore && tr >= 0 && tr < C;
    valid.push(ok ? 1 : 0);
    if (!ok) return rows.push(0);
    const lse = lseRow(x, r, C);
    let mx = 0;
    for (let c = 0; c < C; c++) mx += x[r * C + c] / C;
    rows.push((1 - e) * (lse - x[r * C + tr]) + e * (lse - mx));
  });
  return { rows, valid };
}

export function reduceRef(rows: number[], red: Red, count: number): Float64Array {
  if (red === 'none') return Float64Array.from(rows);
  const s = rows.reduce((a, b) => a + b, 0);
  return Float64Array.from([red === 'sum' ? s : s / count]);
}

export function refCe(x: ArrayLike<number>, t: readonly number[], C: number, e: number, ignore: number, red: Red): Float64Array {
  const { rows, valid } = refCeRows(x, t, C, e, ignore);
  return reduceRef(rows, red, valid.reduce((a, b) => a + b, 0));
}

/** Analytic gradient of dot(refCe, w): w_r * (softmax - (1 - e) onehot - e / C) per valid row. */
export function refCeGrad(x: ArrayLike<number>, t: readonly number[], C: number, e: number, ignore: number, red: Red, w: ArrayLike<number>): Float64Array {
  const { valid } = refCeRows(x, t, C, e, ignore);
  const count = valid.reduce((a, b) => a + b, 0);
  const g = new Float64Array(x.length);
  t.forEach((tr, r) => {
    if (!valid[r]) return;
    const wr = red === 'none' ? w[r] : red === 'sum' ? w[0] : w[0] / count;
    const lse = lseRow(x, r, C);
    for (let c = 0; c < C; c++) g[r * C + c] = wr * (Math.exp(x[r * C + c] - lse) - (c === tr ? 1 - e : 0) - e / C);
  });
  return g;
}
