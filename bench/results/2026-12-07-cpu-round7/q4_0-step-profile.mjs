// Reads a `bench latency --profile` trace (gzipped Chrome trace): per decode step, the median step, forward, sample
// and op time; the median time of each op at each shape, batch-1 calls only.
import { readFileSync } from 'node:fs';
import { gunzipSync } from 'node:zlib';
const t = JSON.parse(gunzipSync(readFileSync(process.argv[2])).toString());
const ev = (t.traceEvents ?? t).filter((e) => e.ph === 'X').sort((a, b) => a.ts - b.ts);
const med = (a) => [...a].sort((x, y) => x - y)[a.length >> 1];
const steps = ev.filter((e) => e.name === 'step' && e.args.numDecodes === 1);
const rows = steps.map((s) => {
  const inside = ev.filter((e) => e !== s && e.ts >= s.ts && e.ts + e.dur <= s.ts + s.dur + 0.01);
  const r = { step: s.dur, ops: 0 };
  for (const e of inside) {
    if (e.cat === 'op') r.ops += e.dur;
    else if (e.cat === 'phase') r[e.name] = (r[e.name] ?? 0) + e.dur;
  }
  return r;
});
console.log(`${steps.length} decode steps; medians (us): ` + Object.keys(rows[0]).map((k) => `${k} ${med(rows.map((r) => r[k] ?? 0)).toFixed(1)}`).join(', '));
const g = new Map();
for (const e of ev.filter((e) => e.cat === 'op')) {
  const a = e.args ?? {};
  const first = String(Object.values(a)[1] ?? '');
  if (!/\[1[,\]]|\(1\)|^1$/.test(first) && !/\[1,/.test(String(a.query ?? a.x ?? ''))) continue;
  const shape = Object.entries(a).filter(([k]) => k !== 'meta' && k !== 'params').map(([k, v]) => `${k}=${v}`).join(' ');
  const key = `${e.name} ${shape}`;
  if (!g.has(key)) g.set(key, []);
  g.get(key).push(e.dur);
}
for (const [k, v] of [...g].sort((a, b) => med(b[1]) * b[1].length - med(a[1]) * a[1].length).slice(0, 16))
  console.log(`${String(v.length).padStart(4)} calls, median ${med(v).toFixed(1).padStart(7)} us: ${k.slice(0, 150)}`);
