// the non-GEMV ops of 12 stories110M decode layers at context 64, back to back (the GEMVs left out)
const m = await import('/work/main/dist/lib/index.js');
const { Tensor, ops } = m;
const I = (a, s) => Tensor.fromArray(a, s, { dtype: 'int32' });
const L = 12, H = 12, hd = 64, D = 768, ctx = +(process.env.CTX ?? 64), bs = 16, nb = 16;
const hidden = Tensor.full([1, D], 0.1), residual = Tensor.full([1, D], 0.1), w = Tensor.full([D], 1);
const qkv = Tensor.full([1, 3 * D], 0.1), attn = Tensor.empty([1, D]), gu = Tensor.full([1, 4096], 0.1), act = Tensor.empty([1, 2048]);
const heads = qkv.view([1, 3 * H, hd]), q = heads.narrow(1, 0, H), k = heads.narrow(1, H, H), v = heads.narrow(1, 2 * H, H);
const q2 = qkv.narrow(1, 0, D), k2 = qkv.narrow(1, D, D), attn3 = attn.view([1, H, hd]);
const kc = [], vc = []; for (let l = 0; l < L; ++l) { kc.push(Tensor.full([nb, bs, H, hd], 0.01)); vc.push(Tensor.full([nb, bs, H, hd], 0.01)); }
const cosSin = Tensor.full([2048, hd], 0.5);
const pos = I([ctx - 1], [1]), slot = I([ctx - 1], [1]);
const meta = { queryStartLoc: I([0, 1], [2]), seqLens: I([ctx], [1]), blockTables: I([...Array(nb).keys()], [1, nb]), scale: 0.125, maxSeqLen: ctx, maxQueryLen: 1 };
const step = () => {
  for (let i = 0; i < L; ++i) {
    if (i === 0) ops.rmsNorm(hidden, residual, w, 1e-5); else ops.fusedAddRmsNorm(hidden, residual, w, 1e-5);
    ops.rotaryEmbedding(pos, q2, k2, hd, cosSin, false);
    ops.reshapeAndCache(k, v, kc[i], vc[i], slot);
    ops.pagedAttention(attn3, q, kc[i], vc[i], meta);
    ops.fusedAddRmsNorm(hidden, residual, w, 1e-5);
    ops.siluAndMul(act, gu);
  }
};
const time = (f) => { for (let i = 0; i < 50; ++i) f(); const s = []; for (let i = 0; i < 301; ++i) { const a = process.hrtime.bigint(); f(); s.push(Number(process.hrtime.bigint() - a) / 1e3); } s.sort((a, b) => a - b); return s[150].toFixed(0); };
console.log(`ctx ${ctx}: 72 small ops of a step ${time(step)} us; attention alone x12 ${time(() => { for (let i = 0; i < L; ++i) ops.pagedAttention(attn3, q, kc[i], vc[i], meta); })} us; norms x24 ${time(() => { for (let i = 0; i < 24; ++i) ops.fusedAddRmsNorm(hidden, residual, w, 1e-5); })} us; rope x12 ${time(() => { for (let i = 0; i < L; ++i) ops.rotaryEmbedding(pos, q2, k2, hd, cosSin, false); })} us; cache x12 ${time(() => { for (let i = 0; i < L; ++i) ops.reshapeAndCache(k, v, kc[i], vc[i], slot); })} us; silu x12 ${time(() => { for (let i = 0; i < L; ++i) ops.siluAndMul(act, gu); })} us`);
