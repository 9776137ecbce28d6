// Run from the repository root after `npm run build`: node bench/scripts/model-checks.mjs
// stories260K logits vs run.c per dtype, greedy agreement with run.c over 200 steps, dummy load times.
import { readFileSync } from 'node:fs';
import { generate, loadModel, Tensor } from '../../dist/lib/index.js';
import { scriptArgs } from './args.mjs';

scriptArgs(`usage: node bench/scripts/model-checks.mjs   (after npm run build)
  stories260K logits vs run.c per dtype, greedy agreement with run.c over 200 steps, dummy load times.`);

const dir = '../shared/models/stories260K/';
const g = JSON.parse(readFileSync(dir + 'golden.json', 'utf8'));
for (const dtype of ['float32', 'float16', 'bfloat16']) {
  const m = await loadModel(dir + 'stories260K.bin', { device: 'cpu', dtype });
  const kv = m.model.allocateKvCache(1, 16);
  const i = (a, s) => Tensor.fromArray(Int32Array.from(a), s ?? [a.length], { dtype: 'int32' });
  const l = m.model
    .forward(
      {
        tokenIds: i([1]),
        positions: i([0]),
        slotMapping: i([0]),
        logitsIndices: i([0]),
        attention: { queryStartLoc: i([0, 1]), seqLens: i([1]), blockTables: i([0], [1, 1]), scale: 1 / Math.sqrt(8) },
      },
      kv,
    )
    .toArray();
  let maxDiff = 0;
  for (let k = 0; k < 512; k++) maxDiff = Math.max(maxDiff, Math.abs(l[k] - g.bos_pos0.logits[k]));
  const c = g.cases[1];
  const [r] = await generate(m, [[1]], { temperature: 0, maxTokens: 200 });
  let same = 0;
  while (same < 200 && r.tokenIds[same] === c.generated_ids[same]) same++;
  console.log(
    `${dtype}: first-step logits max |diff| vs run.c = ${maxDiff.toExponential(2)}; greedy ids equal to run.c for ` +
      `${same} of 200 steps`,
  );
  m.model.dispose();
}
for (const [preset, dtype] of [
  ['stories110M', 'float32'],
  ['tinyllama-1.1b', 'bfloat16'],
  ['tinyllama-1.1b', 'float32'],
]) {
  const m = await loadModel('dummy:' + preset, { device: 'cpu', dtype });
  console.log(
    `dummy:${preset} ${dtype}: ${(m.model.weightsBytes / 1e6).toFixed(0)} MB of weights loaded in ` +
      `${m.loadSeconds.toFixed(2)} s`,
  );
  m.model.dispose();
}
