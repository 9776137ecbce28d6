// The cost of one native op call with tiny tensors (issue 32: the binding's per-call overhead). Run from the
// repository root after npm run build: node bench/results/2026-12-06-cpu-round3-notes/opcost.mjs
import { ops, Tensor } from '../../../dist/lib/index.js';
const d = 768;
const x = Tensor.full([1, d], 1), w = Tensor.full([d], 1), out = Tensor.empty([1, d]);
const big = Tensor.full([8, d], 1);
const time = (label, fn, n = 200000) => {
  for (let i = 0; i < 1000; ++i) fn();
  const t = performance.now();
  for (let i = 0; i < n; ++i) fn();
  console.log(label, ((performance.now() - t) * 1000 / n).toFixed(2), 'us/call');
};
time('rmsNorm [1,768]', () => ops.rmsNorm(out, x, w, 1e-5));
time('fusedAddRmsNorm [1,768]', () => ops.fusedAddRmsNorm(out, x, w, 1e-5));
time('narrow', () => big.narrow(0, 0, 1));
time('view', () => x.view([d]));
const { native } = await import('../../../dist/lib/native.js');
time('native.ops.rmsNorm', () => native.ops.rmsNorm(out, x, w, 1e-5));
time('native.ops.fill', () => native.fill(out, 0));
