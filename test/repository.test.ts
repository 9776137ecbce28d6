// The repository's own rules: the docs quote the code as it is, their links and the paths they name resolve, the
// README stays a README, no source file grows past what one reader can hold, and every skipped test says why.
import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect } from 'chai';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const read = (path: string) => readFileSync(join(ROOT, path), 'utf8');

function files(dir: string, ext: RegExp): string[] {
  return readdirSync(join(ROOT, dir)).flatMap((name) => {
    const path = join(dir, name);
    return statSync(join(ROOT, path)).isDirectory() ? files(path, ext) : ext.test(name) ? [path] : [];
  });
}

/** The fenced blocks a doc marks `<!-- from: path -->`, each with the file it quotes. */
function quotes(doc: string): Array<{ from: string; text: string }> {
  const out: Array<{ from: string; text: string }> = [];
  const re = /<!-- from: (\S+) -->\n```\w*\n([\s\S]*?)```/g;
  for (let m = re.exec(doc); m !== null; m = re.exec(doc)) out.push({ from: m[1]!, text: m[2]! });
  return out;
}

describe('the repository', () => {
  it('docs/adding-an-op.md quotes the code as it stands', () => {
    const q = quotes(read('docs/adding-an-op.md'));
    expect(q.length).to.be.at.least(9);
    for (const { from, text } of q)
      expect(read(from).includes(text), `the block quoted from ${from} is not in it`).to.equal(true);
  });

  it('docs/adding-an-op.md lists at most 9 files for a new op, each present for its worked example (add)', () => {
    const doc = read('docs/adding-an-op.md');
    const section = doc.slice(doc.indexOf('## The files, in order'), doc.indexOf('## A worked example'));
    const items = [...section.matchAll(/^\d+\. `([^`]+)`/gm)].map((m) => m[1]!);
    expect(items.length).to.be.within(7, 9);
    for (const path of items) {
      const add = path.replace('<family>', 'add');
      expect(existsSync(join(ROOT, add)), add).to.equal(true);
    }
  });

  it('every relative link in the README and docs/ resolves', () => {
    for (const doc of ['README.md', ...files('docs', /\.md$/)]) {
      for (const m of read(doc).matchAll(/\]\(([^)#\s]+)(#[^)]*)?\)/g)) {
        const target = m[1]!;
        if (/^[a-z]+:/.test(target)) continue;
        expect(existsSync(join(ROOT, dirname(doc), target)), `${doc} links to ${target}`).to.equal(true);
      }
    }
  });

  it('every repository path the README and docs/ name in code spans exists', () => {
    const missing: string[] = [];
    for (const doc of ['README.md', 'DEVELOPERS.md', ...files('docs', /\.md$/)].filter((d) =>
      existsSync(join(ROOT, d)),
    ))
      for (const m of read(doc).matchAll(/`((?:lib|csrc|test|bench|docs|deploy|\.ci)\/[\w./-]+)`/g))
        if (!existsSync(join(ROOT, m[1]!))) missing.push(`${doc}: ${m[1]}`);
    expect(missing).to.deep.equal([]);
  });

  it('the README is at most 12 KB; no source file under lib/ or csrc/ is over 450 lines', () => {
    expect(statSync(join(ROOT, 'README.md')).size).to.be.at.most(12 * 1024);
    const long = [...files('lib', /\.ts$/), ...files('csrc', /\.(h|cc|cu|cuh|mjs)$/)]
      .map((f) => ({ f: relative(ROOT, join(ROOT, f)), lines: read(f).split('\n').length - 1 }))
      .filter((x) => x.lines > 450);
    expect(long).to.deep.equal([]);
  });

  it('bench/results/ keeps its raw bulk gzipped: no text file there is over 1,500 lines', () => {
    const all = files('bench/results', /./);
    expect(all.filter((f) => f.endsWith('.gz')).length).to.be.above(10);
    const long = all
      .filter((f) => !f.endsWith('.gz'))
      .map((f) => ({ f, lines: read(f).split('\n').length - 1 }))
      .filter((x) => x.lines > 1500)
      .map((x) => `${x.f} (${x.lines} lines: gzip -9n it and name the .gz in the run's README)`);
    expect(long).to.deep.equal([]);
  });

  it('every skip says why: skipBecause(), or this.skip() in a suite whose title says it', () => {
    // A bare this.skip() reports a skip with no reason; the reporter's JSON and CI's required suites read the reason
    // from the title (test/required-suites.mjs).
    const bare = files('test', /\.ts$/)
      .filter((f) => f !== join('test', 'helpers.ts'))
      .flatMap((f) =>
        read(f)
          .split('\n')
          .map((line, i) => ({ at: `${f}:${i + 1}`, line }))
          .filter(({ line }) => /this\.skip\(\);/.test(line) && !/the suite.s title says why/.test(line)),
      )
      .map(({ at, line }) => `${at}: ${line.trim()}`);
    expect(bare).to.deep.equal([]);
  });
});
