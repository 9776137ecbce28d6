#!/usr/bin/env node
// Per file: each level's median over the rounds, and avx512 / avx2 within each round (above 1 = avx512 faster), from
// decode-levels.sh ("round R FILE ISA V ISA V") or throughput-levels.sh ("round R FILE ISA V") output.
//   node levels-summary.mjs LOG
import { readFileSync } from 'node:fs';

const runs = new Map(); // file -> round -> isa -> value
for (const line of readFileSync(process.argv[2], 'utf8').split('\n')) {
  const f = line.trim().split(/\s+/);
  if (f[0] !== 'round') continue;
  const [round, file] = [f[1], f[2]];
  for (let i = 3; i + 1 < f.length; i += 2) {
    if (!runs.has(file)) runs.set(file, new Map());
    const r = runs.get(file);
    if (!r.has(round)) r.set(round, {});
    r.get(round)[f[i]] = Number(f[i + 1]);
  }
}
const median = (a) => {
  const s = [...a].sort((x, y) => x - y);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
for (const [file, rounds] of runs) {
  const rs = [...rounds.values()].filter((v) => v.avx512 > 0 && v.avx2 > 0);
  const ratios = rs.map((v) => v.avx512 / v.avx2);
  console.log(
    `${file}: ${rs.length} rounds; median tok/s avx512 ${median(rs.map((v) => v.avx512)).toFixed(1)}, avx2 ` +
      `${median(rs.map((v) => v.avx2)).toFixed(1)}; avx512 / avx2 per round ${ratios.map((x) => x.toFixed(2)).join(' ')}` +
      `, median ${median(ratios).toFixed(2)}; avx512 behind in ${ratios.filter((x) => x < 1).length}`,
  );
}
