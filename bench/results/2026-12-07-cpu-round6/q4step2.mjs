// the 49 GEMVs of one Q4_0 stories110M decode step (12 layers' Q4_0 weights and the Q6_K head, random bytes with
// small scales), back to back, packed as the engine packs them. Median of 41 steps after 5 warm-up.
const m = await import('/work/main/dist/lib/index.js');
const { Tensor, ops } = m;
const Q40 = 2, Q6K = 14;
function rnd(type, rows, k) {
  const bpr = type === Q40 ? (k / 32) * 18 : (k / 256) * 210, cols = Math.ceil(bpr / 4);
  const a = new Int32Array(rows * cols); for (let i = 0; i < a.length; ++i) a[i] = (Math.random() * 2 ** 32) | 0;
  const dv = new DataView(a.buffer);
  for (let r = 0; r < rows; ++r) {
    if (type === Q40) for (let b = 0; b < k / 32; ++b) dv.setUint16(r * cols * 4 + 18 * b, 0x2000, true);
    else for (let b = 0; b < k / 256; ++b) dv.setUint16(r * cols * 4 + 210 * b + 208, 0x2000, true);
  }
  const w = Tensor.fromArray(a, [rows, cols], { dtype: 'int32' });
  const p = Tensor.empty([rows, cols], { dtype: 'int32' }); ops.packQuantWeight(p, w, type); w.dispose(); return p;
}
const layers = [];
for (let l = 0; l < 12; ++l) layers.push({ qkv: rnd(Q40, 2304, 768), o: rnd(Q40, 768, 768), gu: rnd(Q40, 4096, 768), d: rnd(Q40, 768, 2048) });
const head = rnd(Q6K, 32000, 768);
const x768 = Tensor.full([1, 768], 0.1), x2048 = Tensor.full([1, 2048], 0.1);
const o2304 = Tensor.empty([1, 2304]), o768 = Tensor.empty([1, 768]), o4096 = Tensor.empty([1, 4096]), o32k = Tensor.empty([1, 32000]);
const step = () => {
  for (const L of layers) {
    ops.quantLinearPacked(o2304, x768, L.qkv, Q40);
    ops.quantLinearPacked(o768, x768, L.o, Q40);
    ops.quantLinearPacked(o4096, x768, L.gu, Q40);
    ops.quantLinearPacked(o768, x2048, L.d, Q40);
  }
  ops.quantLinearPacked(o32k, x768, head, Q6K);
};
const bytes = 12 * (2304 * 768 + 768 * 768 + 4096 * 768 + 768 * 2048) / 32 * 18 + 32000 * 768 / 256 * 210;
for (let i = 0; i < 5; ++i) step();
const s = []; for (let i = 0; i < 41; ++i) { const a = process.hrtime.bigint(); step(); s.push(Number(process.hrtime.bigint() - a) / 1e6); }
s.sort((a, b) => a - b);
console.log(`${process.env.TAG ?? ''} 49 GEMVs median ${s[20].toFixed(3)} ms  ${(bytes / s[20] / 1e6).toFixed(1)} GB/s`);
