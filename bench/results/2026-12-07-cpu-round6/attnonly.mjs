const m = await import('/work/main/dist/lib/index.js');
const { Tensor, ops } = m;
const I = (a, s) => Tensor.fromArray(a, s, { dtype: 'int32' });
const L = 12, H = 12, hd = 64, ctx = 64, bs = 16, nb = 16;
const qkv = Tensor.full([1, 3 * H * hd], 0.1), attn = Tensor.empty([1, H * hd]);
const q = qkv.view([1, 3 * H, hd]).narrow(1, 0, H), attn3 = attn.view([1, H, hd]);
const kc = [], vc = []; for (let l = 0; l < L; ++l) { kc.push(Tensor.full([nb, bs, H, hd], 0.01)); vc.push(Tensor.full([nb, bs, H, hd], 0.01)); }
const meta = { queryStartLoc: I([0, 1], [2]), seqLens: I([ctx], [1]), blockTables: I([...Array(nb).keys()], [1, nb]), scale: 0.125, maxSeqLen: ctx, maxQueryLen: 1 };
const t0 = Date.now(); let n = 0;
while (Date.now() - t0 < 4000) { for (let i = 0; i < L; ++i) ops.pagedAttention(attn3, q, kc[i], vc[i], meta); n += L; }
console.log('us per call', (4000e3 / n).toFixed(1));
