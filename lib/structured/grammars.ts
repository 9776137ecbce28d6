// Structured output in the engine core: the vocabulary handed to xgrammar once, grammars compiled once per constraint
// (an LRU cache by constraint), and a matcher per constrained sequence that gives each step's allowed tokens as a
// bitmask and follows the tokens sampled. Compiling is asynchronous (xgrammar's API); a matcher's steps are not.
import type { Tokenizer } from '../tokenizer/tokenizer.js';
import { ebnfLiteral, type StructuredConstraint } from './constraint.js';
import { Utf8Guard } from './utf8.js';
import { type XgCompiledGrammar, type XgCompiler, type XgMatcherHandle, xgrammar, xgrammarCall } from './xgrammar.js';

/** How many compiled grammars a core keeps. */
const CACHE_SIZE = 64;

/** Words of a token bitmask over `vocabSize` tokens. */
export const bitmaskWords = (vocabSize: number): number => Math.ceil(vocabSize / 32);

/** One sequence's place in its grammar, and in a UTF-8 character (utf8.ts). */
export class GrammarMatcher {
  private disposed = false;
  private utf8 = 0;
  /** The UTF-8 state before each accepted token, for rollback. */
  private readonly utf8Before: number[] = [];

  constructor(
    private readonly handle: XgMatcherHandle,
    private readonly vocabSize: number,
    private readonly guard: Utf8Guard,
  ) {}

  /** Writes the tokens allowed next into `dst[offset, offset + words)` (bit t of word t / 32 set = allowed). */
  fillBitmask(dst: Int32Array, offset: number): void {
    const vec = this.handle.GetNextTokenBitmask(this.vocabSize);
    try {
      dst.set(xgrammar().__binding()!.vecIntToView(vec), offset);
    } finally {
      vec.delete();
    }
    this.guard.restrict(this.utf8, dst, offset);
  }

  /** Follows a sampled token; false if the grammar refuses it (then the state is unchanged). */
  accept(token: number): boolean {
    if (!this.handle.AcceptToken(token, false)) return false;
    this.utf8Before.push(this.utf8);
    this.utf8 = this.guard.after(this.utf8, token);
    return true;
  }

  /** The grammar has ended (it accepted a stop token). */
  get terminated(): boolean {
    return this.handle.IsTerminated();
  }

  /** Takes back the last n accepted tokens. */
  rollback(n: number): void {
    this.handle.Rollback(n);
    if (n > 0) this.utf8 = this.utf8Before.splice(this.utf8Before.length - n)[0] ?? 0;
  }

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    this.handle.delete();
  }
}

export class GrammarCompiler {
  private compiler: Promise<XgCompiler> | null = null;
  private guard: Utf8Guard | null = null;
  private readonly cache = new Map<string, Promise<XgCompiledGrammar>>();

  /**
   * `vocabSize`: the logits' width (the model's vocabulary, which may pad the tokenizer's); `stopTokenIds`: the ids
   * that end generation, allowed where the grammar may end.
   */
  constructor(
    private readonly tokenizer: Tokenizer,
    readonly vocabSize: number,
    private readonly stopTokenIds: readonly number[],
  ) {}

  /** Hands the vocabulary to xgrammar (once; the first compile does it anyway). */
  async prepareVocabulary(): Promise<void> {
    await this.getCompiler();
  }

  private getCompiler(): Promise<XgCompiler> {
    this.compiler ??= (async () => {
      const xg = xgrammar();
      const vocab = this.tokenizer.grammarVocabulary();
      const { tokens, kind } = vocab;
      while (tokens.length < this.vocabSize) tokens.push('');
      this.guard = new Utf8Guard(vocab, this.vocabSize);
      const info = await xgrammarCall('structured output: the vocabulary', () =>
        xg.TokenizerInfo.createTokenizerInfo(tokens, kind, false, this.vocabSize, [...this.stopTokenIds]),
      );
      return xg.GrammarCompiler.createGrammarCompiler(info, true);
    })();
    return this.compiler;
  }

  /** Compiles the constraint's grammar into the cache (a failure is a TypeError saying where, and is not cached). */
  compile(c: StructuredConstraint): Promise<XgCompiledGrammar> {
    const hit = this.cache.get(c.key);
    if (hit) {
      this.cache.delete(c.key); // most recent last
      this.cache.set(c.key, hit);
      return hit;
    }
    const compiled = this.getCompiler().then((compiler) => compileWith(compiler, c));
    this.cache.set(c.key, compiled);
    compiled.catch(() => this.cache.delete(c.key));
    while (this.cache.size > CACHE_SIZE) {
      const [oldest, p] = this.cache.entries().next().value!;
      this.cache.delete(oldest);
      p.then((g) => g.dispose()).catch(() => {});
    }
    return compiled;
  }

  /** A matcher at the start of the constraint's grammar; `stopTokenIds` end it (default: the compiler's). */
  async matcher(c: StructuredConstraint, stopTokenIds?: readonly number[]): Promise<GrammarMatcher> {
    const g = await this.compile(c);
    const m = await xgrammar().GrammarMatcher.createGrammarMatcher(g, stopTokenIds ? [...stopTokenIds] : undefined);
    return new GrammarMatcher(m.handle, this.vocabSize, this.guard!);
  }
}

/** Constraints already checked by checkConstraint (their keys). */
const checked = new Set<string>();

/**
 * Parses the constraint's grammar without a vocabulary (fast: no token table), so a bad schema, regex or grammar is
 * a TypeError saying where before the request is queued. The engine core compiles it in full.
 */
export async function checkConstraint(c: StructuredConstraint): Promise<void> {
  if (checked.has(c.key)) return;
  const G = xgrammar().Grammar;
  const g = await (c.kind === 'json'
    ? xgrammarCall('json schema', () => G.fromJSONSchema(c.schema, false, -1, undefined, true))
    : c.kind === 'json_object'
      ? null
      : c.kind === 'regex'
        ? xgrammarCall('regex', () => G.fromStructuralTag(regexTag(c.pattern)))
        : xgrammarCall(c.kind, () => G.fromEBNF(c.kind === 'choice' ? choiceEbnf(c.choices) : c.grammar)));
  g?.dispose();
  if (checked.size > 1024) checked.clear();
  checked.add(c.key);
}

const regexTag = (pattern: string) => ({ type: 'structural_tag', format: { type: 'regex', pattern } });
const choiceEbnf = (choices: string[]) => `root ::= ${choices.map(ebnfLiteral).join(' | ')}`;

function compileWith(compiler: XgCompiler, c: StructuredConstraint): Promise<XgCompiledGrammar> {
  switch (c.kind) {
    case 'json':
      // one line, ", " and ": " between items: a model cannot wander off into endless whitespace
      return xgrammarCall('json schema', () => compiler.compileJSONSchema(c.schema, false, -1, undefined, true));
    case 'json_object':
      return xgrammarCall('json_object', () =>
        compiler.compileJSONSchema('{"type": "object"}', false, -1, undefined, false),
      );
    case 'regex':
      return xgrammarCall('regex', () => compiler.compileStructuralTag(regexTag(c.pattern)));
    case 'choice':
      return xgrammarCall('choice', () =>
        compiler.compileGrammar(`root ::= ${c.choices.map(ebnfLiteral).join(' | ')}`),
      );
    case 'grammar':
      return xgrammarCall('grammar', () => compiler.compileGrammar(c.grammar));
  }
}
