// Mocha's spec output, then one plain last line that CI reads: "N passed, N failed, N skipped".
'use strict';
const Mocha = require('mocha');

class SummaryReporter extends Mocha.reporters.Spec {
  constructor(runner, options) {
    super(runner, options);
    const stats = { passed: 0, failed: 0, skipped: 0 };
    runner.on(Mocha.Runner.constants.EVENT_TEST_PASS, () => stats.passed++);
    runner.on(Mocha.Runner.constants.EVENT_TEST_FAIL, () => stats.failed++);
    runner.on(Mocha.Runner.constants.EVENT_TEST_PENDING, () => stats.skipped++);
    // Registered after Spec's own 'end' listener, so this line comes last.
    runner.once(Mocha.Runner.constants.EVENT_RUN_END, () => {
      process.stdout.write(`${stats.passed} passed, ${stats.failed} failed, ${stats.skipped} skipped\n`);
    });
  }
}

module.exports = SummaryReporter;
