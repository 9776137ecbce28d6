#!/usr/bin/env node
// Each op row's speed at one level over another (default avx512 over avx2: the lower level's median time over the
// higher's, so > 1 means the higher level is faster), in every ops.bench JSON given, and the median over them; then
// the rows whose median is below 0.95.
//   node level-ratios.mjs [--hi avx512] [--lo avx2] run1.json[.gz] [run2.json[.gz] ...]
import { readFileSync } from 'node:fs';
import { gunzipSync } from 'node:zlib';

const args = process.argv.slice(2);
const opt = (name, def) => {
  const i = args.indexOf(name);
  return i < 0 ? def : args.splice(i, 2)[1];
};
const hi = opt('--hi', 'avx512'),
  lo = opt('--lo', 'avx2');
const read = (f) => (f.endsWith('.gz') ? gunzipSync(readFileSync(f)) : readFileSync(f)).toString('utf8');
const runs = args.map((f) => JSON.parse(read(f)));
const key = (r) => `${r.op} | ${r.dtype} | ${r.shape}`;
const ratios = new Map(); // key -> [ratio per run]
for (const run of runs) {
  const at = (isa) => new Map(run.results.filter((d) => d.isa === isa).flatMap((d) => d.rows.map((r) => [key(r), r])));
  const h = at(hi),
    l = at(lo);
  for (const [k, r] of h) {
    if (!l.has(k)) continue;
    if (!ratios.has(k)) ratios.set(k, []);
    ratios.get(k).push(l.get(k).medianSeconds / r.medianSeconds);
  }
}
const median = (a) => {
  const s = [...a].sort((x, y) => x - y);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
console.log(`${hi} over ${lo}, ${runs.length} run(s): ${runs.map((r) => r.commit).join(', ')}`);
const below = [];
for (const [k, rs] of ratios) {
  const m = median(rs);
  console.log(`${k.padEnd(72)} ${rs.map((r) => r.toFixed(2)).join(' ')}  median ${m.toFixed(2)}`);
  if (m < 0.95) below.push(k);
}
console.log(`${ratios.size} rows; ${below.length} with a median below 0.95${below.length ? ':' : ''}`);
for (const k of below) console.log(`  ${k}`);
