// Where a decode step of dummy:stories110M goes, by op, float32 and quantised at load: the step profiler's spans,
// milliseconds per step, averaged over 40 steps after 8 warm-up steps (the linear ops also split by weight shape).
//   node bench/scripts/quant-profile.mjs [--batch 1] [--types float32,q8_0,q4_0]   (after npm run build)
import { EngineCore, loadModel, resolveSamplingParams } from '../../dist/lib/index.js';
import { scriptArgs } from './args.mjs';

const { values } = scriptArgs(
  `usage: node bench/scripts/quant-profile.mjs [--batch 1] [--types float32,q8_0,q4_0]   (after npm run build)
  Where a decode step of dummy:stories110M goes, by op, float32 and quantised at load.`,
  {
    options: { batch: { type: 'string', default: '1' }, types: { type: 'string', default: 'float32,q8_0,q4_0' } },
  },
);
for (const type of values.types.split(',')) {
  const q = type === 'float32' ? null : type;
  const m = await loadModel('dummy:stories110M', { device: 'cpu', ...(q ? { quantization: q } : {}) });
  const core = EngineCore.fromLoaded(m, { maxModelLen: 256 });
  const params = resolveSamplingParams({ temperature: 0, maxTokens: 100, ignoreEos: true });
  for (let i = 0; i < Number(values.batch); ++i)
    core.add({ requestId: String(i), promptTokenIds: [1, 400, 500, 600], params });
  for (let i = 0; i < 8; ++i) core.step();
  core.startProfile(40);
  for (let i = 0; i < 40; ++i) core.step();
  const by = new Map();
  for (const e of core.stopProfile().traceEvents.filter((x) => x.ph === 'X')) {
    const k = e.name.endsWith('inear') ? `${e.name} ${e.args?.weight ?? ''}` : e.name;
    by.set(k, (by.get(k) ?? 0) + e.dur / 1000 / 40);
  }
  console.log(`\n${type}, batch ${values.batch}:`);
  for (const [k, v] of [...by].sort((a, b) => b[1] - a[1]).slice(0, 16)) console.log(`  ${v.toFixed(3)} ms  ${k}`);
  core.dispose();
  m.model.dispose();
}
