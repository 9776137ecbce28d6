const m = await import('/work/main/dist/lib/index.js');
const { Tensor, ops, setCpuIsa } = m;
const [R, H] = [8192, 4096];
const a = Tensor.full([R, H], 0.5), b = Tensor.full([R, H], 0.25), o = Tensor.empty([R, H]), w = Tensor.full([H], 1.1);
const op = process.env.OP ?? 'add';
const f = { add: () => ops.add(o, a, b), rms: () => ops.rmsNorm(o, a, w, 1e-5), fused: () => ops.fusedAddRmsNorm(a, b, w, 1e-5) }[op];
const isas = ['avx512', 'avx2'];
const t = { avx512: [], avx2: [] };
for (let it = 0; it < 60; ++it) for (const isa of (it % 2 ? isas : [...isas].reverse())) {
  setCpuIsa(isa); const s = process.hrtime.bigint(); f(); t[isa].push(Number(process.hrtime.bigint() - s) / 1e6);
}
const med = (x) => { x = x.slice(2).sort((p, q) => p - q); return x[x.length >> 1]; };
console.log(`${op} [${R}, ${H}] avx512 ${med(t.avx512).toFixed(2)} ms avx2 ${med(t.avx2).toFixed(2)} ms avx512/avx2 ${(med(t.avx2) / med(t.avx512)).toFixed(3)}`);
