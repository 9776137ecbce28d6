// the 49 GEMVs of one Q4_0 stories110M decode step (12 layers' weights and the Q6_K head, zeros), back to back
const m = await import((process.env.MVLLM_ROOT ?? '/work/main') + '/dist/lib/index.js');
const { Tensor, ops } = m;
const Q40 = 2, Q6K = 14;
const bytesPerRow = (type, k) => (type === Q40 ? (k / 32) * 18 : (k / 256) * 210);
function w(type, rows, k) { return Tensor.zeros([rows, Math.ceil(bytesPerRow(type, k) / 4)], { dtype: "int32" }); }
const layers = [];
for (let l = 0; l < 12; ++l) layers.push({ qkv: w(Q40, 2304, 768), o: w(Q40, 768, 768), gu: w(Q40, 4096, 768), d: w(Q40, 768, 2048) });
const head = w(Q6K, 32000, 768);
const x768 = Tensor.full([1, 768], 0.1), x2048 = Tensor.full([1, 2048], 0.1);
const o2304 = Tensor.empty([1, 2304]), o768 = Tensor.empty([1, 768]), o4096 = Tensor.empty([1, 4096]), o32k = Tensor.empty([1, 32000]);
const step = (parts) => {
  for (const L of layers) {
    if (parts.qkv) ops.quantLinearPacked(o2304, x768, L.qkv, Q40);
    if (parts.o) ops.quantLinearPacked(o768, x768, L.o, Q40);
    if (parts.gu) ops.quantLinearPacked(o4096, x768, L.gu, Q40);
    if (parts.d) ops.quantLinearPacked(o768, x2048, L.d, Q40);
  }
  if (parts.head) ops.quantLinearPacked(o32k, x768, head, Q6K);
};
const time = (parts) => { for (let i = 0; i < 5; ++i) step(parts); const s = []; for (let i = 0; i < 51; ++i) { const a = process.hrtime.bigint(); step(parts); s.push(Number(process.hrtime.bigint() - a) / 1e6); } s.sort((a, b) => a - b); return s[25].toFixed(3); };
const all = { qkv: 1, o: 1, gu: 1, d: 1, head: 1 };
console.log('all GEMVs', time(all), 'ms');
for (const k of Object.keys(all)) console.log(k, time({ [k]: 1 }), 'ms');
