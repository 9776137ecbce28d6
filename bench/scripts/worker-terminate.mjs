import { setTimeout } from 'node:timers';
import { InferenceEngine } from '../../dist/lib/index.js';
const engine = await InferenceEngine.create({ model: 'dummy:stories15M', device: 'cpu', maxNumSeqs: 4 });
let failures = 0;
for (let i = 0; i < 25; ++i) {
  const s = engine.stream('hello', { maxTokens: 200, ignoreEos: true });
  await s.next();
  await new Promise((r) => setTimeout(r, Math.random() * 5));
  await engine['core']['worker'].terminate();
  try {
    await s.result;
  } catch {
    failures++;
  }
  await engine.start();
}
await engine.stop();
console.log('survived', failures);
