// quick timing of the LM-head shapes: linear (row-major) and linearPacked, tokens 1..64
const m = await import((process.env.MVLLM_ROOT ?? '/work/main') + '/dist/lib/index.js');
const { Tensor, ops } = m;
const isa = process.env.MINI_VLLM_CPU_ISA ?? 'default';
const K = 768, NOUT = 32000;
const w = Tensor.full([NOUT, K], 0.01);
const pk = Tensor.full([NOUT / 16, K, 16], 0.01);
for (const t of [1, 4, 8, 16, 32, 64]) {
  const x = Tensor.full([t, K], 0.5), out = Tensor.empty([t, NOUT]);
  const time = (f) => { for (let i = 0; i < 3; ++i) f(); const s = []; for (let i = 0; i < 15; ++i) { const a = process.hrtime.bigint(); f(); s.push(Number(process.hrtime.bigint() - a) / 1e6); } s.sort((a, b) => a - b); return s[7]; };
  const a = time(() => ops.linear(out, x, w)), b = time(() => ops.linearPacked(out, x, pk));
  console.log(`${isa} tokens ${t}: linear ${a.toFixed(2)} ms, linearPacked ${b.toFixed(2)} ms`);
}
