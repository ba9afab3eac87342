/**
 * The small float64 linear algebra the Mahalanobis detector fits with (on the CPU, once): a
 * Cholesky factorisation of the tied covariance and the inverse of its lower-triangular factor.
 * Matrices are row-major Float64Arrays of n * n values.
 */

/** Raised when a matrix is not (numerically) positive definite. */
export class NotPositiveDefiniteError extends Error {
  readonly pivot: number;
  constructor(message: string, pivot: number) {
    super(message);
    this.name = 'NotPositiveDefiniteError';
    this.pivot = pivot;
  }
}

/**
 * Lower-triangular L with A = L L^T (A symmetric positive definite; only its lower triangle is
 * read). Throws NotPositiveDefiniteError naming the first pivot that is not positive.
 */
export function cholesky(a: Float64Array, n: number): Float64Array {
  if (a.length !== n * n) throw new Error(`cholesky: ${a.length} values do not form a ${n} x ${n} matrix`);
  const l = new Float64Array(n * n);
  for (let j = 0; j < n; j++) {
    let d = a[j * n + j];
    const lj = j * n;
    for (let k = 0; k < j; k++) d -= l[lj + k] * l[lj + k];
    if (!(d > 0)) {
      throw new NotPositiveDefiniteError(`cholesky: the matrix is not positive definite (pivot ${j} is ${d})`, j);
    }
    const djj = Math.sqrt(d);
    l[lj + j] = djj;
    for (let i = j + 1; i < n; i++) {
      const li = i * n;
      let s = a[li + j];
      for (let k = 0; k < j; k++) s -= l[li + k] * l[lj + k];
      l[li + j] = s / djj;
    }
  }
  return l;
}

/** W = L^-1 for a lower-triangular L with a non-zero diagonal (W is lower-triangular too). */
export function invertLower(l: Float64Array, n: number): Float64Array {
  const w = new Float64Array(n * n);
  // Column j of W solves L w = e_j by forward substitution; w[i] = 0 for i < j.
  for (let j = 0; j < n; j++) {
    w[j * n + j] = 1 / l[j * n + j];
    for (let i = j + 1; i < n; i++) {
      let s = 0;
      for (let k = j; k < i; k++) s -= l[i * n + k] * w[k * n + j];
      w[i * n + j] = s / l[i * n + i];
    }
  }
  return w;
}

/** A^-1 = W^T W with W = L^-1, for a symmetric positive definite A (the precision matrix). */
export function spdInverse(a: Float64Array, n: number): Float64Array {
  const w = invertLower(cholesky(a, n), n);
  const p = new Float64Array(n * n);
  for (let i = 0; i < n; i++) {
    for (let j = 0; j <= i; j++) {
      let s = 0;
      // (W^T W)[i][j] = sum_k W[k][i] W[k][j]; W[k][.] is zero above the diagonal, so k >= max(i, j) = i
      for (let k = i; k < n; k++) s += w[k * n + i] * w[k * n + j];
      p[i * n + j] = s;
      p[j * n + i] = s;
    }
  }
  return p;
}
