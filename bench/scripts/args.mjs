// The command lines of the repository's plain-JS scripts (bench/scripts/, test/emu/run.mjs, test/cpu-levels/arm64.mjs,
// csrc/build.mjs): node's parseArgs, with `--help` (or `-h`) printing the script's usage (exit 0) and an unknown option
// or a bad value printing the error and the usage (exit 2) instead of a stack trace, as lib/bench/args.ts does for the
// TypeScript benchmarks. `passThrough`: only --help is ours, every other argument goes on to another program.
import { parseArgs } from 'node:util';

export function scriptArgs(usage, config = {}, { passThrough = false } = {}) {
  const argv = config.args ?? process.argv.slice(2);
  const text = usage.trim();
  if (argv.includes('--help') || argv.includes('-h')) {
    process.stdout.write(`${text}\n`);
    process.exit(0);
  }
  if (passThrough) return { values: {}, positionals: argv };
  try {
    return parseArgs({ options: {}, ...config, args: argv });
  } catch (e) {
    process.stderr.write(`${e.message}\n\n${text}\n`);
    process.exit(2);
  }
}
