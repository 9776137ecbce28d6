// decode pagedAttention with the cache cold: 12 layers' K/V in shuffled blocks, a 64 MiB stream read between calls
// (as the weights' GEMVs do in a real step); only the attention calls are timed.
const m = await import('/work/main/dist/lib/index.js');
const { Tensor, ops } = m;
const I = (a, s) => Tensor.fromArray(a, s, { dtype: 'int32' });
const L = 12, H = +(process.env.H ?? 12), KVH = +(process.env.KVH ?? 12), hd = +(process.env.HD ?? 64), ctx = +(process.env.CTX ?? 96), bs = 16, nb = Math.ceil(ctx / bs);
const pool = 1024;
const q = Tensor.full([1, H, hd], 0.1), out = Tensor.empty([1, H, hd]);
const kc = [], vc = []; for (let l = 0; l < L; ++l) { kc.push(Tensor.full([pool, bs, KVH, hd], 0.01)); vc.push(Tensor.full([pool, bs, KVH, hd], 0.01)); }
const ids = process.env.SEQ ? [...Array(nb).keys()] : [...Array(pool).keys()].sort(() => Math.random() - 0.5).slice(0, nb);
const meta = { queryStartLoc: I([0, 1], [2]), seqLens: I([ctx], [1]), blockTables: I(ids, [1, nb]), scale: 0.125, maxSeqLen: ctx, maxQueryLen: 1 };
const big = Tensor.full([16384, 1024], 0.001), bx = Tensor.full([1, 1024], 1), bo = Tensor.empty([1, 16384]);
const wa = Tensor.full([64, 1024], 1), wo = Tensor.empty([64, 1024]);
const res = [];
for (let r = 0; r < 40; ++r) {
  let t = 0;
  for (let i = 0; i < L; ++i) { ops.linear(bo, bx, big); ops.add(wo, wa, wa); ops.add(wo, wa, wa); const t0 = performance.now(); ops.pagedAttention(out, q, kc[i], vc[i], meta); t += performance.now() - t0; }
  res.push(t * 1e3 / L);
}
res.sort((a, b) => a - b);
console.log(`cold decode attention ${H}/${KVH}x${hd} ctx ${ctx} ${process.env.MINI_VLLM_CPU_ISA ?? ''}: median ${res[20].toFixed(1)} us/call (p25 ${res[10].toFixed(1)}, p75 ${res[30].toFixed(1)})`);
