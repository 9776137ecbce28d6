import { setTimeout } from 'node:timers';
import { InferenceEngine } from '../../dist/lib/index.js';
import { scriptArgs } from './args.mjs';

scriptArgs(`usage: node bench/scripts/worker-terminate.mjs   (after npm run build)
  Terminates the engine's worker mid-stream 25 times; every stream must fail with an error, none hang.`);
const engine = await InferenceEngine.create({ model: 'dummy:stories15M', device: 'cpu', maxNumSeqs: 4 });
let failures = 0;
for (let i = 0; i < 25; ++i) {
  const s = engine.stream('hello', { maxTokens: 200, ignoreEos: true });
  await s.next();
  await new Promise((r) => setTimeout(r, Math.random() * 5));
  await engine['cores'].list[0]['worker'].terminate(); // the one core's worker (private fields, read for the test)
  try {
    await s.result;
  } catch {
    failures++;
  }
  await engine.start();
}
await engine.stop();
console.log('survived', failures);
