import { performance } from 'node:perf_hooks';
import { loadModel, EngineCore, resolveSamplingParams, Tensor, ops } from '../../dist/lib/index.js';
import { native } from '../../dist/lib/native.js';
import { scriptArgs } from './args.mjs';

scriptArgs(`usage: node bench/scripts/gemv-ab.mjs   (after npm run build)
  The quantised GEMV before and after (A/B), interleaved, beside a STREAM-like read of this machine.`);
const med = (a) => [...a].sort((x, y) => x - y)[a.length >> 1];
function bw() {
  const n = (1 << 30) / 4;
  const b = Tensor.full([n], 1);
  native.streamRead(b);
  const t = [];
  for (let i = 0; i < 5; ++i) {
    const s = performance.now();
    native.streamRead(b);
    t.push(performance.now() - s);
  }
  b.dispose();
  return (n * 4) / med(t) / 1e6;
}
const m = await loadModel('dummy:stories110M', { device: 'cpu' });
const core = EngineCore.fromLoaded(m, { maxModelLen: 1024, kvCacheBytes: 64 * 16 * m.model.kvBytesPerSlot });
const p = resolveSamplingParams({ temperature: 0, maxTokens: 1000, ignoreEos: true });
core.add({ requestId: 'a', promptTokenIds: [1, 400, 500, 600], params: p });
for (let i = 0; i < 5; ++i) core.step();
const b0 = bw();
const t = [];
for (let i = 0; i < 60; ++i) {
  const s = performance.now();
  core.step();
  t.push(performance.now() - s);
}
const b1 = bw();
const w = Tensor.full([32000, 768], 0.001);
const x = Tensor.full([1, 768], 1);
const o = Tensor.empty([1, 32000]);
const tl = [];
for (let i = 0; i < 30; ++i) {
  const s = performance.now();
  ops.linear(o, x, w);
  tl.push(performance.now() - s);
}
const step = med(t);
const stepGBps = m.model.weightsBytes / step / 1e6;
const ratio = ((stepGBps / Math.max(b0, b1)) * 100).toFixed(0);
const lmHead = `${med(tl).toFixed(2)} ms = ${((32000 * 768 * 4) / med(tl) / 1e6).toFixed(1)} GB/s`;
console.log(
  `${process.env.TAG} step ${step.toFixed(2)} ms = ${stepGBps.toFixed(1)} GB/s; ` +
    `read ${b0.toFixed(1)}/${b1.toFixed(1)}; ratio ${ratio}%; lm-head ${lmHead}`,
);
core.dispose();
m.model.dispose();
