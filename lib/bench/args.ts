// The benchmark scripts' command lines: node's parseArgs, with `--help` (or `-h`) printing the script's usage and an
// unknown option or a bad value printing the error and the usage, exit status 2, instead of a stack trace.
import { type ParseArgsConfig, parseArgs } from 'node:util';

export function benchArgs<T extends ParseArgsConfig>(usage: string, config: T): ReturnType<typeof parseArgs<T>> {
  const argv = config.args ?? process.argv.slice(2);
  if (argv.includes('--help') || argv.includes('-h')) {
    process.stdout.write(`${usage}\n`);
    process.exit(0);
  }
  try {
    return parseArgs(config);
  } catch (e) {
    process.stderr.write(`${(e as Error).message}\n\n${usage}\n`);
    process.exit(2);
  }
}
