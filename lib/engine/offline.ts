// Offline generation on the caller's thread (vLLM's `LLM.generate`): an engine core over a model already loaded
// here, stepped until every prompt has finished. Same scheduler, runner and output handling as InferenceEngine,
// without the worker; for scripts, tests and tools that own the model themselves.
import type { LoadedModel } from '../model/loader.js';
import { resolveSamplingParams, type SamplingParams } from '../sampling/params.js';
import { describeValue } from '../tensor.js';
import { checkContextLength, promptTokenIds } from './prompt.js';
import { EngineCore } from './engine-core.js';
import type { EngineOptions } from './options.js';
import { type GenerationResult, RequestState, type StreamDelta } from './request-state.js';

export interface GenerateOptions extends Omit<
  EngineOptions,
  'model' | 'device' | 'dtype' | 'tokenizer' | 'dataParallelSize'
> {
  /** Called with each piece of new text of prompt `index` (never half a character, never part of a stop string). */
  onText?: (index: number, delta: string) => void;
  /** Called after each step with the core, e.g. to look at its scheduler (tests). */
  onStep?: (core: EngineCore) => void;
}

/**
 * Generates a completion for each prompt (text, or token ids) with its sampling params (one set for all, or one
 * per prompt). The text excludes the prompt; a stop string is cut from it; end tokens and stop ids end the output.
 */
export async function generate(
  loaded: LoadedModel,
  prompts: string | number[] | (string | number[])[],
  params: SamplingParams | SamplingParams[] = {},
  opts: GenerateOptions = {},
): Promise<GenerationResult[]> {
  const arrival = performance.now();
  const list: (string | number[])[] =
    typeof prompts === 'string' || (Array.isArray(prompts) && typeof prompts[0] === 'number')
      ? [prompts as string | number[]]
      : (prompts as (string | number[])[]);
  if (!Array.isArray(list) || list.length === 0)
    throw new TypeError(
      `generate: prompts must be a string, token ids, or a non-empty array of them, got ${describeValue(prompts)}`,
    );
  if (Array.isArray(params) && params.length !== list.length)
    throw new RangeError(`generate: params has ${params.length} entries for ${list.length} prompts`);
  const { onText, onStep, ...engineOptions } = opts;
  if ('dataParallelSize' in engineOptions)
    throw new TypeError(
      'generate: dataParallelSize needs engine cores of their own (InferenceEngine); generate() steps one core here',
    );
  const { config, tokenizer } = loaded;
  const maxLen = engineOptions.maxModelLen ?? config.maxPositionEmbeddings;
  const states: RequestState[] = [];
  let core: EngineCore | null = null;
  for (let i = 0; i < list.length; ++i) {
    const where = `generate: prompts[${i}]`;
    const ids = await promptTokenIds(list[i]!, tokenizer, config.vocabSize, where);
    checkContextLength(ids.length, 1, maxLen, where);
    const resolved = resolveSamplingParams(Array.isArray(params) ? params[i]! : params, config.vocabSize);
    const id = String(i);
    states.push(
      new RequestState(
        id,
        ids,
        resolved,
        tokenizer,
        arrival,
        (d: StreamDelta) => {
          if (d.text.length > 0) onText?.(i, d.text);
        },
        () => core?.abort([id]),
      ),
    );
  }
  // The whole workload is known: by default the cache holds every sequence at its longest, so nothing is preempted.
  if (engineOptions.kvCacheBytes === undefined) {
    const bs = engineOptions.blockSize ?? 16;
    let blocks = 0;
    for (const s of states) blocks += Math.ceil(Math.min(maxLen, s.promptTokenIds.length + s.params.maxTokens) / bs);
    engineOptions.kvCacheBytes = Math.max(blocks, Math.ceil(maxLen / bs)) * bs * loaded.model.kvBytesPerSlot;
  }
  const stepping = EngineCore.fromLoaded(loaded, engineOptions);
  core = stepping;
  try {
    const byId = new Map(states.map((s) => [s.requestId, s]));
    for (const s of states) {
      const req = { requestId: s.requestId, promptTokenIds: s.promptTokenIds, params: s.params };
      stepping.add(req, EngineCore.needsPrepare(req) ? await stepping.prepare(req) : undefined);
    }
    while (stepping.hasUnfinished) {
      const outputs = stepping.step();
      const now = performance.now();
      for (const out of outputs) await byId.get(out.requestId)!.take(out, now);
      onStep?.(stepping);
    }
    return states.map((s) => s.result());
  } finally {
    stepping.dispose();
  }
}
