import { Tensor, ops } from '/work/main/dist/lib/index.js';
import { quantizeRows } from '/work/main/dist/lib/quant/quantize.js';
import { QUANT_FORMATS, quantRowWords } from '/work/main/dist/lib/quant/formats.js';
const [rows, cols] = [512, 2048];
const out = [];
for (const type of ['Q4_K', 'Q8_0', 'Q4_0', 'Q6_K']) {
  const x = new Float32Array(rows * cols).map((_, i) => Math.sin(i * 0.37) * 0.05);
  const q = quantizeRows(type, x, rows, cols);
  const words = quantRowWords(type, cols);
  const w = Tensor.fromArray(new Int32Array(q.buffer, q.byteOffset, rows * words), [rows, words], { dtype: 'int32' });
  const p = Tensor.empty([rows, words], { dtype: 'int32' });
  const id = QUANT_FORMATS[type].id;
  ops.packQuantWeight(p, w, id);
  for (const m of [1, 2, 4]) {
    const xt = Tensor.full([m, cols], 0.3);
    const o = Tensor.empty([m, rows]);
    const times = [];
    for (let r = 0; r < 15; ++r) {
      const t0 = process.hrtime.bigint();
      for (let i = 0; i < 200; ++i) ops.quantLinearPacked(o, xt, p, id, null);
      times.push(Number(process.hrtime.bigint() - t0) / 200 / 1e3);
    }
    times.sort((a, b) => a - b);
    out.push(`${type} M=${m} ${times[7].toFixed(2)} us`);
  }
}
console.log(`VNNI=${process.env.MINI_VLLM_CPU_VNNI} ` + out.join(' | '));
