const m = await import('/work/main/dist/lib/index.js');
const { Tensor, ops, setCpuIsa } = m;
const I = (a, s) => Tensor.fromArray(a, s, { dtype: 'int32' });
const L = 12, H = +(process.env.H ?? 12), KVH = +(process.env.KVH ?? 12), hd = +(process.env.HD ?? 64), ctx = +(process.env.CTX ?? 64), bs = 16, nb = Math.ceil(ctx / bs);
const q = Tensor.full([1, H, hd], 0.1), out = Tensor.empty([1, H, hd]);
const kc = [], vc = []; for (let l = 0; l < L; ++l) { kc.push(Tensor.full([nb * 4, bs, KVH, hd], 0.01)); vc.push(Tensor.full([nb * 4, bs, KVH, hd], 0.01)); }
const meta = { queryStartLoc: I([0, 1], [2]), seqLens: I([ctx], [1]), blockTables: I([...Array(nb).keys()].map(i => i * 4), [1, nb]), scale: 0.125, maxSeqLen: ctx, maxQueryLen: 1 };
const res = [];
for (let r = 0; r < 15; ++r) { const t0 = performance.now(); let n = 0; while (performance.now() - t0 < 100) { for (let i = 0; i < L; ++i) ops.pagedAttention(out, q, kc[i], vc[i], meta); n += L; } res.push((performance.now() - t0) * 1e3 / n); }
res.sort((a, b) => a - b);
console.log(`decode attention ${H}/${KVH}x${hd} ctx ${ctx} ${process.env.MINI_VLLM_CPU_ISA ?? ''}: ${res[7].toFixed(2)} us/call`);
