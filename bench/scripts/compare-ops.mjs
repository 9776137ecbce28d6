// Compares op-benchmark JSON files (npm run bench -- --json FILE) row by row: the rows both sides hold, matched by op,
// dtype and shape, with each side's median time and fraction of its run's limit, and after / before. Either side may
// be several runs, comma separated (alternate before and after runs on a noisy machine): then each row's time is the
// median over the runs.
//   node bench/scripts/compare-ops.mjs before.json after.json > table.md
//   node bench/scripts/compare-ops.mjs b1.json,b2.json,b3.json a1.json,a2.json,a3.json
import { readFileSync } from 'node:fs';
import { scriptArgs } from './args.mjs';

const USAGE = `usage: node bench/scripts/compare-ops.mjs BEFORE.json[,...] AFTER.json[,...] > table.md
  Compares op-benchmark JSON files (npm run bench -- --json FILE) row by row; several runs a side: the median.`;
const [beforeFile, afterFile, ...extra] = scriptArgs(USAGE, { allowPositionals: true }).positionals;
if (!beforeFile || !afterFile || extra.length > 0) {
  console.error(USAGE);
  process.exit(2);
}
const middle = (xs) => [...xs].sort((x, y) => x - y)[xs.length >> 1];
const rows = (files) => {
  const runs = new Map();
  for (const file of files.split(',')) {
    for (const row of JSON.parse(readFileSync(file, 'utf8')).results.flatMap((r) => r.rows)) {
      const key = `${row.device} | ${row.op} | ${row.dtype} | ${row.shape}`;
      runs.set(key, [...(runs.get(key) ?? []), row]);
    }
  }
  const pick = (rs) => ({
    medianSeconds: middle(rs.map((r) => r.medianSeconds)),
    fractionOfLimit: rs[0].fractionOfLimit === null ? null : middle(rs.map((r) => r.fractionOfLimit)),
  });
  return new Map([...runs].map(([key, rs]) => [key, pick(rs)]));
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
