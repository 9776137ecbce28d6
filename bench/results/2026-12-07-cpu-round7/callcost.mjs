const m = await import(process.env.LIB ?? '/work/main/dist/lib/index.js');
const { Tensor, ops } = m;
const a = Tensor.full([1, 768], 1), b = Tensor.full([1, 768], 2), o = Tensor.empty([1, 768]);
const w = Tensor.full([768], 1);
const names = Object.keys(ops).filter(k => /add|rmsNorm/.test(k)); 
function bench(label, f) { for (let i = 0; i < 20000; ++i) f(); const r = []; for (let k = 0; k < 7; ++k) { const t0 = performance.now(); for (let i = 0; i < 50000; ++i) f(); r.push((performance.now() - t0) / 50000 * 1e3); } r.sort((x, y) => x - y); console.log(label, r[3].toFixed(3), 'us/call'); }
bench('ops.add [1,768]', () => ops.add(o, a, b));
bench('ops.rmsNorm [1,768]', () => ops.rmsNorm(o, a, w, 1e-5));
