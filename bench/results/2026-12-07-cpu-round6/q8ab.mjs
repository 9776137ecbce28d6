const m = await import('/work/main/dist/lib/index.js');
const { Tensor, ops, setCpuIsa } = m;
const types = { Q8_0: [8, 34], Q4_0: [2, 18] };
for (const [tname, [id, bpb]] of Object.entries(types)) for (const [k, n, copies] of [[4096, 11008, 1], [4096, 4096, 3]]) {
  const cols = Math.ceil(k / 32 * bpb / 4);
  const ws = []; for (let c = 0; c < copies; ++c) { const a = new Int32Array(n * cols); for (let i = 0; i < a.length; ++i) a[i] = (Math.random() * 2 ** 32) | 0; const dv = new DataView(a.buffer); for (let r = 0; r < n; ++r) for (let b = 0; b < k / 32; ++b) dv.setUint16(r * cols * 4 + bpb * b, 0x2000, true); const w = Tensor.fromArray(a, [n, cols], { dtype: 'int32' }); const p = Tensor.empty([n, cols], { dtype: 'int32' }); ops.packQuantWeight(p, w, id); w.dispose(); ws.push(p); }
  const x = Tensor.full([1, k], 0.1), o = Tensor.empty([1, n]);
  const isas = ['avx512', 'avx2'], t = { avx512: [], avx2: [] };
  for (let it = 0; it < 120; ++it) for (const isa of (it % 2 ? isas : [...isas].reverse())) { setCpuIsa(isa); const s = process.hrtime.bigint(); ops.quantLinearPacked(o, x, ws[it % copies], id); t[isa].push(Number(process.hrtime.bigint() - s) / 1e3); }
  const med = (a) => { a = a.slice(4).sort((p, q) => p - q); return a[a.length >> 1]; };
  console.log(`quantLinearPacked ${tname} 1 x ${k} -> ${n}: avx512 ${med(t.avx512).toFixed(0)} us avx2 ${med(t.avx2).toFixed(0)} us avx512/avx2 ${(med(t.avx2) / med(t.avx512)).toFixed(3)}`);
  for (const w of ws) w.dispose();
}
