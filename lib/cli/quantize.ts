// `mini-vllm quantize -m <model> -o <out.gguf> --type q8_0|q4_0|q4_k_m`: writes a quantised GGUF of any model the
// loader reads (lib/model/quantize-model.ts); the tensors' types to stderr, a JSON summary to stdout.
import { statSync } from 'node:fs';
import { type Command, Option } from 'commander';
import { DEFAULT_MODEL } from '../engine/options.js';
import { QUANTIZE_TARGETS, type QuantizeTarget, quantizeModel } from '../model/quantize-model.js';
import { log } from './flags.js';

interface QuantizeFlags {
  model: string;
  output: string;
  type: QuantizeTarget;
  tokenizer?: string;
}

export function addQuantizeCommand(program: Command): void {
  program
    .command('quantize')
    .description('write a quantised GGUF (llama.cpp reads it too) of any model mini-vllm loads')
    .option(
      '-m, --model <model>',
      'a Hugging Face directory, a llama2.c .bin, a .gguf, or dummy:<preset>',
      DEFAULT_MODEL,
    )
    .requiredOption('-o, --output <file>', 'the GGUF to write')
    .addOption(new Option('--type <type>', 'the quantised type').choices([...QUANTIZE_TARGETS]).makeOptionMandatory())
    .option('--tokenizer <file>', "tokenizer to use instead of the model's (tokenizer.json or a llama2.c tok*.bin)")
    .action((f: QuantizeFlags) => {
      const start = performance.now();
      const { types, vocabulary } = quantizeModel(f.model, f.output, f.type, {
        ...(f.tokenizer ? { tokenizer: f.tokenizer } : {}),
        onTensor: (name, type, i, n) => log(`[${i + 1}/${n}] ${name} ${type}`),
      });
      if (!vocabulary)
        log('mini-vllm: the tokenizer is not a SentencePiece vocabulary: the file has none (load it with --tokenizer)');
      const counts: Record<string, number> = {};
      for (const t of Object.values(types)) counts[t] = (counts[t] ?? 0) + 1;
      const summary = {
        output: f.output,
        type: f.type,
        bytes: statSync(f.output).size,
        tensorTypes: counts,
        vocabulary,
        seconds: +((performance.now() - start) / 1000).toFixed(2),
      };
      process.stdout.write(`${JSON.stringify(summary)}\n`);
    });
}
