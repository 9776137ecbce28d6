// Mocha's spec output, then one plain last line that CI reads: "N passed, N failed, N skipped". With
// MINI_VLLM_TEST_REPORT=<file>, also every test's full title, state and file as JSON there (test/required-suites.mjs
// reads it: CI checks that the suites it requires ran, and that every skip says why).
'use strict';
const { writeFileSync } = require('node:fs');
const Mocha = require('mocha');

class SummaryReporter extends Mocha.reporters.Spec {
  constructor(runner, options) {
    super(runner, options);
    const stats = { passed: 0, failed: 0, skipped: 0 };
    const tests = [];
    const record = (state) => (test) => {
      stats[state]++;
      tests.push({ title: test.fullTitle(), state, file: test.file ?? null });
    };
    runner.on(Mocha.Runner.constants.EVENT_TEST_PASS, record('passed'));
    runner.on(Mocha.Runner.constants.EVENT_TEST_FAIL, record('failed'));
    runner.on(Mocha.Runner.constants.EVENT_TEST_PENDING, record('skipped'));
    // Registered after Spec's own 'end' listener, so this line comes last.
    runner.once(Mocha.Runner.constants.EVENT_RUN_END, () => {
      const file = process.env.MINI_VLLM_TEST_REPORT;
      if (file) writeFileSync(file, `${JSON.stringify({ ...stats, tests }, null, 1)}\n`);
      process.stdout.write(`${stats.passed} passed, ${stats.failed} failed, ${stats.skipped} skipped\n`);
    });
  }
}

module.exports = SummaryReporter;
