// Compares two op-benchmark JSON files (npm run bench -- --json FILE) row by row: the rows both hold, matched by op,
// dtype and shape, with each one's median time and fraction of its own run's limit, and after / before.
//   node bench/scripts/compare-ops.mjs before.json after.json > table.md
import { readFileSync } from 'node:fs';

const [beforeFile, afterFile] = process.argv.slice(2);
if (!beforeFile || !afterFile) {
  console.error('usage: node bench/scripts/compare-ops.mjs before.json after.json');
  process.exit(2);
}
const rows = (file) => {
  const json = JSON.parse(readFileSync(file, 'utf8'));
  return new Map(
    json.results.flatMap((r) => r.rows).map((row) => [`${row.device} | ${row.op} | ${row.dtype} | ${row.shape}`, row]),
  );
};
const before = rows(beforeFile);
const after = rows(afterFile);
const fmt = (s) => (s >= 1e-3 ? `${(s * 1e3).toFixed(3)} ms` : `${(s * 1e6).toFixed(1)} us`);
const pct = (f) => (f === null ? '-' : `${(100 * f).toFixed(0)}%`);
const lines = [
  '| device | op | dtype | shape | before | after | after / before | of limit, before | of limit, after |',
];
lines.push('| --- | --- | --- | --- | --- | --- | --- | --- | --- |');
const ratios = [];
for (const [key, b] of before) {
  const a = after.get(key);
  if (!a) continue;
  const r = a.medianSeconds / b.medianSeconds;
  ratios.push(r);
  const times = `${fmt(b.medianSeconds)} | ${fmt(a.medianSeconds)} | ${r.toFixed(2)}`;
  lines.push(`| ${key} | ${times} | ${pct(b.fractionOfLimit)} | ${pct(a.fractionOfLimit)} |`);
}
ratios.sort((x, y) => x - y);
const geo = Math.exp(ratios.reduce((s, r) => s + Math.log(r), 0) / ratios.length);
const [lo, mid, hi] = [ratios[0], ratios[ratios.length >> 1], ratios.at(-1)];
const spread = `median ${mid.toFixed(3)}, min ${lo.toFixed(2)}, max ${hi.toFixed(2)}`;
lines.push('', `${ratios.length} rows in both; after / before: geometric mean ${geo.toFixed(3)}, ${spread}`);
const onlyAfter = [...after.keys()].filter((k) => !before.has(k));
if (onlyAfter.length) lines.push(`rows new in after: ${onlyAfter.join('; ')}`);
console.log(lines.join('\n'));
