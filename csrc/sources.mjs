#!/usr/bin/env node
// The native build's one source list, for CMakeLists.txt and binding.gyp alike: every .cc of binding/ and cpu/base/
// (the addon, compiled once for the baseline), every .cc of cpu/ (the CPU kernels, compiled once per instruction-set
// level: cpu/level.h), every .cu of cuda/ (the CUDA backend), and every .cc of emu/ (the emulated device those .cu
// also build against). A new file in one of those folders is in the build.
//
//   node csrc/sources.mjs cpu|kernels|cuda|emu [--cmake]   paths from the repository root, one per line (--cmake: a
//                                                          ;-list)
import { readdirSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const FOLDERS = {
  cpu: [
    ['binding', '.cc'],
    ['cpu/base', '.cc'],
  ],
  kernels: [['cpu', '.cc']],
  cuda: [['cuda', '.cu']],
  emu: [['emu', '.cc']],
};

const USAGE = 'usage: node csrc/sources.mjs cpu|kernels|cuda|emu [--cmake]';
const which = process.argv[2];
if (which === '--help' || which === '-h') {
  console.log(USAGE);
  process.exit(0);
}
if (!(which in FOLDERS)) {
  console.error(`${which === undefined ? 'no list named' : `unknown list ${JSON.stringify(which)}`}\n${USAGE}`);
  process.exit(2);
}
const files = FOLDERS[which].flatMap(([folder, ext]) =>
  readdirSync(join(here, folder))
    .filter((f) => f.endsWith(ext))
    .sort()
    .map((f) =>
      relative(join(here, '..'), join(here, folder, f))
        .split('\\')
        .join('/'),
    ),
);
process.stdout.write(process.argv.includes('--cmake') ? files.join(';') : `${files.join('\n')}\n`);
