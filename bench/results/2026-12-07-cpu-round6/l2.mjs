const m = await import('/work/main/dist/lib/index.js');
const { Tensor, ops } = m;
const Q40 = 2;
const [n, k] = [(process.env.N ?? 768) | 0, (process.env.K ?? 768) | 0];
const cols = Math.ceil(k / 32 * 18 / 4);
const a = new Int32Array(n * cols); for (let i = 0; i < a.length; ++i) a[i] = (Math.random() * 2 ** 32) | 0;
const dv = new DataView(a.buffer); for (let r = 0; r < n; ++r) for (let b = 0; b < k / 32; ++b) dv.setUint16(r * cols * 4 + 18 * b, 0x2000, true);
const w = Tensor.fromArray(a, [n, cols], { dtype: 'int32' }); const p = Tensor.empty([n, cols], { dtype: 'int32' }); ops.packQuantWeight(p, w, Q40);
const x = Tensor.full([1, k], 0.1), o = Tensor.empty([1, n]);
for (let i = 0; i < 200; ++i) ops.quantLinearPacked(o, x, p, Q40);
const s = []; for (let i = 0; i < 2000; ++i) { const t = process.hrtime.bigint(); ops.quantLinearPacked(o, x, p, Q40); s.push(Number(process.hrtime.bigint() - t) / 1e3); }
s.sort((a, b) => a - b); const bytes = n * k / 32 * 18;
console.log(`${n}x${k} L2-resident: median ${s[1000].toFixed(2)} us ${(bytes / s[1000] / 1e3).toFixed(1)} GB/s`);
