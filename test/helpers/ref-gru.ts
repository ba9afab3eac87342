/** float64 reference of PyTorch's nn.GRU (shared by test/engine/gru.test.ts and test/browser/kernel-checks.ts). */

export interface RefLayer {
  wIh: Float64Array; // [3H, I]
  wHh: Float64Array; // [3H, H]
  bIh: Float64Array; // [3H]
  bHh: Float64Array; // [3H]
}

export const sig = (v: number) => 1 / (1 + Math.exp(-v));

/** float64 nn.GRU, time-major x [T, B, I], h0 [L, B, H]; padded steps carry the state. */
export function gruRef(x: Float64Array, h0: Float64Array, layers: RefLayer[], T: number, B: number, I: number, H: number, lens: number[]) {
  let inp = x;
  let inSize = I;
  const hN = new Float64Array(layers.length * B * H);
  let y = new Float64Array(T * B * H);
  layers.forEach((w, l) => {
    y = new Float64Array(T * B * H);
    const h = h0.slice(l * B * H, (l + 1) * B * H);
    for (let t = 0; t < T; t++) {
      const hn = h.slice();
      for (let b = 0; b < B; b++) {
        if (t >= lens[b]) continue;
        for (let k = 0; k < H; k++) {
          const gi = [0, 1, 2].map((g) => {
            let s = w.bIh[g * H + k];
            for (let c = 0; c < inSize; c++) s += w.wIh[(g * H + k) * inSize + c] * inp[(t * B + b) * inSize + c];
            return s;
          });
          const gh = [0, 1, 2].map((g) => {
            let s = w.bHh[g * H + k];
            for (let c = 0; c < H; c++) s += w.wHh[(g * H + k) * H + c] * h[b * H + c];
            return s;
          });
          const r = sig(gi[0] + gh[0]);
          const z = sig(gi[1] + gh[1]);
          const n = Math.tanh(gi[2] + r * gh[2]);
          hn[b * H + k] = (1 - z) * n + z * h[b * H + k];
          y[(t * B + b) * H + k] = hn[b * H + k];
        }
      }
      h.set(hn);
    }
    hN.set(h, l * B * H);
    inp = y;
    inSize = H;
  });
  return { y, hN };
}
