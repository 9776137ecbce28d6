const m = await import(process.env.LIB ?? '/work/main/dist/lib/index.js');
const { Tensor, ops, setCpuIsa } = m;
const heads = 32, kvh = 8, hd = 128, bs = 16;
const seqs = +(process.env.SEQS ?? 1), len = +(process.env.LEN ?? 512);
const dtype = process.env.DT ?? 'float32';
const perSeq = Math.ceil(len / bs), nb = seqs * perSeq;
const kc = Tensor.full([nb, bs, kvh, hd], 0.01, { dtype }), vc = Tensor.full([nb, bs, kvh, hd], 0.02, { dtype });
const q = Tensor.full([seqs * len, heads, hd], 0.1, { dtype }), out = Tensor.empty([seqs * len, heads, hd], { dtype });
const I = (a, s) => Tensor.fromArray(a, s, { dtype: 'int32' });
const ids = [...Array(nb).keys()].sort(() => 0.5 - Math.random());
const meta = { queryStartLoc: I([...Array(seqs + 1).keys()].map(i => i * len), [seqs + 1]), seqLens: I(Array(seqs).fill(len), [seqs]),
  blockTables: I(ids, [seqs, perSeq]), scale: 1 / Math.sqrt(hd), maxSeqLen: len, maxQueryLen: len };
const levels = (process.env.ISAS ?? 'avx512,avx2').split(',');
const res = Object.fromEntries(levels.map(l => [l, []]));
for (let r = 0; r < +(process.env.ROUNDS ?? 20); ++r) for (const l of (r % 2 ? [...levels].reverse() : levels)) {
  setCpuIsa(l); const t0 = performance.now(); ops.pagedAttention(out, q, kc, vc, meta); res[l].push(performance.now() - t0);
}
const med = a => a.sort((x, y) => x - y)[a.length >> 1];
console.log(`prefill ${seqs}x${len} ${dtype}`, levels.map(l => `${l} ${med(res[l]).toFixed(2)} ms`).join('  '));
