#!/usr/bin/env node
// The mini-vllm command line: `generate`, `serve`, `bench`, `quantize` and `info` (each command in lib/cli/).
import { realpathSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Command } from 'commander';
import { addBenchCommand } from './cli/bench.js';
import { log } from './cli/flags.js';
import { addGenerateCommand } from './cli/generate.js';
import { addQuantizeCommand } from './cli/quantize.js';
import { addServeCommand } from './cli/serve.js';
import { PRESETS } from './model/index.js';
import { backends } from './native.js';
import { VERSION } from './version.js';

export function buildCli(): Command {
  const program = new Command('mini-vllm')
    .description('An LLM inference engine for Node.js in the mould of vLLM')
    .version(VERSION)
    .showHelpAfterError();
  addGenerateCommand(program);
  addBenchCommand(program);
  addServeCommand(program);
  addQuantizeCommand(program);
  program
    .command('info')
    .description('print the backends this build and machine offer, and the dummy presets')
    .action(() => {
      const info = { version: VERSION, node: process.version, backends: backends(), presets: Object.keys(PRESETS) };
      process.stdout.write(`${JSON.stringify(info, null, 2)}\n`);
    });
  return program;
}

const isMain = process.argv[1] !== undefined && fileURLToPath(import.meta.url) === realpathSync(process.argv[1]);
if (isMain) {
  buildCli()
    .parseAsync(process.argv)
    .catch((e: unknown) => {
      const err = e as Error & { code?: string };
      log(`mini-vllm: ${err.name}${err.code ? ` [${err.code}]` : ''}: ${err.message}`);
      process.exitCode = 1;
    });
}
