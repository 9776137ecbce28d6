const m = await import('/work/main/dist/lib/index.js');
const { ops } = m;
const V = 32000, l = new Float32Array(V); for (let i = 0; i < V; ++i) l[i] = Math.sin(i) * 3;
const p = { temperature: new Float32Array([0]), topK: new Int32Array([0]), topP: new Float32Array([1]), minP: new Float32Array([0]), uniform: new Float64Array([0]) };
for (let rep = 0; rep < 3; ++rep) {
  const s = [];
  for (let i = 0; i < 2000; ++i) { const a = process.hrtime.bigint(); ops.sampleRows(l, 1, V, p); s.push(Number(process.hrtime.bigint() - a) / 1e3); }
  s.sort((a, b) => a - b); console.log('sampleRows greedy median us', s[1000].toFixed(1));
}
