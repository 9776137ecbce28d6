// Medians over rounds of each column's ratio to llama.cpp in the same round, from decode-side-by-side.sh's log:
// node summarize.mjs decode-all-<commit>.log
import { readFileSync } from 'node:fs';
const rows = {};
for (const line of readFileSync(process.argv[2], 'utf8').split('\n')) {
  const m = line.match(/^round \d+ (\S+) llama\.cpp ([\d.]+) \| graphs avx512 ([\d.]+) avx2 ([\d.]+) \| eager avx512 ([\d.]+)/);
  if (!m) continue;
  const [, file, l, g5, g2, e5] = m;
  (rows[file] ??= []).push({ l: +l, g5: +g5, g2: +g2, e5: +e5 });
}
const median = (a) => {
  const s = [...a].sort((x, y) => x - y), n = s.length;
  return n % 2 ? s[(n - 1) / 2] : (s[n / 2 - 1] + s[n / 2]) / 2;
};
console.log('file     rounds  llama.cpp tok/s  graphs avx512  graphs avx2  eager avx512   (medians; ratios: per round / llama.cpp)');
for (const [file, rs] of Object.entries(rows)) {
  const col = (k) => `${median(rs.map((r) => r[k])).toFixed(1)} (${median(rs.map((r) => r[k] / r.l)).toFixed(2)}x)`;
  console.log(
    `${file.padEnd(8)} ${String(rs.length).padStart(6)}  ${median(rs.map((r) => r.l)).toFixed(1).padStart(15)}  ` +
      `${col('g5').padStart(13)}  ${col('g2').padStart(11)}  ${col('e5').padStart(12)}` +
      `   graphs/eager at avx512 ${median(rs.map((r) => r.g5 / r.e5)).toFixed(2)}x`,
  );
}
