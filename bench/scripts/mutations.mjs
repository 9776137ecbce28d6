// The harness of the mutation runs (cpu-mutations.mjs, emu-mutations.mjs): plants each mistake in turn, rebuilds
// what it touched, runs the whole suites that should catch it, puts the file back, and writes a Markdown table (how
// many tests failed, the first, its error) and a log. Exits 1 unless every mistake was caught and the suites pass
// again without one.
//
// A mutation: [what is planted, file, code before, code after, test files].
import { spawnSync } from 'node:child_process';
import { appendFileSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { scriptArgs } from './args.mjs';

export const root = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');

// Ctrl-C: this process ignores it (a handler would never run, the scripts are synchronous) while the child it reaches
// (the build or the tests) stops; a child stopped by a signal puts the file back and ends the run. A run killed
// otherwise leaves its mutation in place, and the next refuses to start until the file is restored.
process.on('SIGINT', () => {});
let restore = () => {};

/** spawnSync in the repository, output kept; a child stopped by a signal ends the run (the file put back). */
export function spawn(cmd, args, env = process.env) {
  const r = spawnSync(cmd, args, { cwd: root, env, encoding: 'utf8', maxBuffer: 1 << 28 });
  if (r.signal) {
    restore();
    console.error(`stopped by ${r.signal}; the mutated file is restored`);
    process.exit(130);
  }
  return r;
}

/** Runs mocha on `files` (spec reporter) with `env` and `extra` arguments: its status, text and counts. */
export function mocha(files, env, extra = []) {
  const args = ['--expose-gc', 'node_modules/mocha/bin/mocha.js', '--no-config', '--reporter', 'spec'];
  const r = spawn(process.execPath, [...args, '--timeout', '600000', ...extra, ...files], { ...process.env, ...env });
  const text = `${r.stdout}${r.stderr}`;
  const first = /^\s+1\) (.+)\n\s+(.+)/m.exec(text.split(/\n\s+\d+ passing/)[1] ?? '');
  return {
    status: r.status,
    text,
    caught: first ? `${first[1]} › ${first[2]}` : null,
    passing: Number(/(\d+) passing/.exec(text)?.[1] ?? 0),
    failed: Number(/(\d+) failing/.exec(text)?.[1] ?? 0),
  };
}

/**
 * Runs the mutations. `build(file)` rebuilds what a change to `file` needs (a spawnSync result), `test(files, file)`
 * runs the suites against that build (mocha()), `clean()` runs them all without a mutation (a list of mocha()
 * results); `tests` names what the table counts ("tests", "CUDA tests").
 */
export function mutationRun({ mutations, defaultOut, build, test, clean, tests, script }) {
  const usage = `usage: node bench/scripts/${script} [OUT_DIR] [--only REGEX]   (after npm run build)
  Plants each mistake in turn and runs the ${tests} that should catch it; writes mutations.md and mutations.log to
  OUT_DIR (default ${defaultOut}). --only: just the mutations whose name matches REGEX.`;
  const { values, positionals } = scriptArgs(usage, {
    allowPositionals: true,
    options: { only: { type: 'string' } },
  });
  if (positionals.length > 1) {
    process.stderr.write(`${usage}\n`);
    process.exit(2);
  }
  const out = resolve(positionals[0] ?? defaultOut);
  const only = values.only === undefined ? null : new RegExp(values.only);
  mkdirSync(out, { recursive: true });
  const logFile = join(out, 'mutations.log');
  writeFileSync(logFile, '');
  const log = (s) => {
    appendFileSync(logFile, `${s}\n`);
    console.error(s);
  };
  // Every mutation's code must be where it says, in committed files, before anything is built.
  for (const [name, file, before] of mutations)
    if (!before || !readFileSync(join(root, file), 'utf8').includes(before))
      throw new Error(`${name}: the code to mutate is not in ${file}`);
  const dirty = [...new Set(mutations.map((m) => m[1]))].filter(
    (f) => spawnSync('git', ['diff', '--quiet', 'HEAD', '--', f], { cwd: root }).status,
  );
  if (dirty.length > 0)
    throw new Error(`these files differ from HEAD; commit or restore them first: ${dirty.join(', ')}`);
  const built = (r) => {
    if (r.status !== 0) throw new Error(`build failed:\n${r.stdout}${r.stderr}`);
  };

  const rows = [];
  for (const [name, file, before, after, files] of mutations.filter((m) => !only || only.test(m[0]))) {
    const path = join(root, file);
    const original = readFileSync(path, 'utf8');
    writeFileSync(path, original.replace(before, after));
    restore = () => writeFileSync(path, original);
    try {
      log(`\n==== ${name} (${file})`);
      built(build(file));
      const r = test(files, file);
      log(r.text);
      const error = /^\s+(MiniVllmError|AssertionError|RangeError|TypeError|Error)[^\n]*/m.exec(r.text)?.[0]?.trim();
      // caught: a test failed (a run that fails before any test, with no test files say, catches nothing)
      const ran = r.failed + r.passing > 0 ? `${r.failed} of ${r.failed + r.passing}` : 'no test ran';
      rows.push({ name, file, caught: r.failed > 0, ran, by: r.caught, error });
    } finally {
      restore();
      restore = () => {};
    }
  }
  log('\n==== no mutation: the same suites pass');
  const cleanRuns = clean([...new Set(mutations.flatMap((m) => m[4]))], built);
  cleanRuns.forEach((r) => log(r.text));

  const cleanPass = cleanRuns.every((r) => r.status === 0 && r.passing > 0);
  const cell = (s) => (s ?? '-').slice(0, 160).replaceAll('|', '\\|');
  const md = [
    `| mutation | file | caught | ${tests} failing | the first failing test | its error |`,
    '| --- | --- | --- | --- | --- | --- |',
    ...rows.map(
      (x) =>
        `| ${x.name} | \`${x.file}\` | ${x.caught ? 'yes' : '**no**'} | ${x.ran} | ${cell(x.by)} | ${cell(x.error)} |`,
    ),
    '',
    `Without the mutations: ${cleanPass ? 'pass' : '**FAIL**'} (${cleanRuns
      .map((r) => r.passing)
      .join(' and ')} ${tests} passing).`,
  ];
  writeFileSync(join(out, 'mutations.md'), `${md.join('\n')}\n`);
  console.log(md.join('\n'));
  process.exit(rows.every((x) => x.caught) && cleanPass ? 0 : 1);
}
