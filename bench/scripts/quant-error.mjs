// The quantisers' round-trip error: relative RMS of dequantise(quantise(x)) - x for every type, on uniform [-1, 1)
// and Gaussian data (seeded), 64 rows of 4096.
//   node bench/scripts/quant-error.mjs   (after npm run build)
import { dequantizeRow, QUANT_TYPES, quantRowBytes } from '../../dist/lib/quant/formats.js';
import { quantizeRows } from '../../dist/lib/quant/quantize.js';
import { scriptArgs } from './args.mjs';

scriptArgs(`usage: node bench/scripts/quant-error.mjs   (after npm run build)
  The quantisers' round-trip error (relative RMS) for every type, uniform and Gaussian data.`);

let seed = 1;
const rand = () => {
  seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0;
  return seed / 2 ** 32;
};
const gauss = () => Math.sqrt(-2 * Math.log(1 - rand())) * Math.cos(2 * Math.PI * rand());
const [rows, cols] = [64, 4096];
const data = { uniform: () => 2 * rand() - 1, gaussian: gauss };
const out = {};
for (const [name, draw] of Object.entries(data)) {
  const x = Float32Array.from({ length: rows * cols }, draw);
  for (const t of QUANT_TYPES) {
    const q = quantizeRows(t, x, rows, cols);
    let e = 0;
    let s = 0;
    const y = new Float32Array(cols);
    for (let r = 0; r < rows; ++r) {
      dequantizeRow(t, q, r * quantRowBytes(t, cols), cols, y);
      for (let i = 0; i < cols; ++i) {
        e += (y[i] - x[r * cols + i]) ** 2;
        s += x[r * cols + i] ** 2;
      }
    }
    (out[t] ??= {})[name] = +(100 * Math.sqrt(e / s)).toFixed(2);
  }
}
console.log('relative RMS error, %');
console.table(out);
