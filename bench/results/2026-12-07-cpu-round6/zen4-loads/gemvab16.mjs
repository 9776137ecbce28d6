const m = await import('/work/main/dist/lib/index.js');
const { Tensor, ops, setCpuIsa } = m;
const shapes = [[768, 4096, 20], [2048, 768, 40], [4096, 4096, 4], [4096, 11008, 2]];
for (const [k, n, copies] of shapes) {
  const ws = []; for (let c = 0; c < copies; ++c) { const w = Tensor.full([n, k], 0.01); const p = Tensor.empty([Math.ceil(n / 16), k, 16]); ops.packLinearWeight(p, w); w.dispose(); ws.push(p); }
  const T = +(process.env.T ?? 1); const x = Tensor.full([T, k], 0.1), o = Tensor.empty([T, n]);
  const isas = ['avx512', 'avx2'], t = { avx512: [], avx2: [] };
  for (let it = 0; it < 60; ++it) for (const isa of (it % 2 ? isas : [...isas].reverse())) { setCpuIsa(isa); const s = process.hrtime.bigint(); ops.linearPacked(o, x, ws[it % copies]); t[isa].push(Number(process.hrtime.bigint() - s) / 1e3); }
  const med = (a) => { a = a.slice(4).sort((p, q) => p - q); return a[a.length >> 1]; };
  console.log(`${process.env.TAG ?? ''} linearPacked ${T} x ${k} -> ${n}: avx512 ${med(t.avx512).toFixed(1)} us avx2 ${med(t.avx2).toFixed(1)} us avx512/avx2 ${(med(t.avx2) / med(t.avx512)).toFixed(3)}`);
  for (const w of ws) w.dispose();
}
