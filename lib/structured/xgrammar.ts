// xgrammar (the grammar engine behind vLLM's, SGLang's and TensorRT-LLM's structured output) as its WASM build on npm,
// loaded under Node. The package is a browser bundle (UMD in a "type": "module" package), so it is compiled as a
// CommonJS function here (node:vm), with patches: its emscripten module gets our stderr sink (a failed compile prints
// why, then aborts with only "Aborted()"), and the bound module is handed out, so a step's mask is read synchronously.
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname } from 'node:path';
import { compileFunction } from 'node:vm';
import { MiniVllmError } from '../errors.js';

/** The embind classes this file uses, as the C++ side names them. */
export interface XgMatcherHandle {
  AcceptToken(id: number, verbose: boolean): boolean;
  GetNextTokenBitmask(vocabSize: number): XgVector;
  IsTerminated(): boolean;
  Rollback(n: number): void;
  Reset(): void;
  delete(): void;
}
interface XgVector {
  delete(): void;
}
interface XgBinding {
  vecIntToView(v: XgVector): Int32Array;
}
interface Disposable {
  dispose(): void;
}
export interface XgCompiledGrammar extends Disposable {
  handle: unknown;
}
export interface XgTokenizerInfo extends Disposable {
  getVocabSize(): number;
}
export interface XgCompiler extends Disposable {
  compileJSONSchema(
    schema: string,
    anyWhitespace?: boolean,
    indent?: number,
    separators?: [string, string],
    strictMode?: boolean,
    maxWhitespaceCnt?: number,
  ): Promise<XgCompiledGrammar>;
  compileBuiltinJSONGrammar(): Promise<XgCompiledGrammar>;
  compileGrammar(ebnf: string, rootRule?: string): Promise<XgCompiledGrammar>;
  compileStructuralTag(tag: object): Promise<XgCompiledGrammar>;
}
export interface XgMatcher extends Disposable {
  handle: XgMatcherHandle;
}
export interface Xgrammar {
  TokenizerInfo: {
    createTokenizerInfo(
      vocab: string[],
      vocabType: string,
      prependSpace: boolean,
      vocabSize: number,
      stopTokenIds: number[],
    ): Promise<XgTokenizerInfo>;
  };
  GrammarCompiler: { createGrammarCompiler(info: XgTokenizerInfo, cache?: boolean): Promise<XgCompiler> };
  /** Grammars without a vocabulary: parsing and conversion only (how a constraint is checked before it is queued). */
  Grammar: {
    fromJSONSchema(
      schema: string,
      anyWhitespace?: boolean,
      indent?: number,
      separators?: [string, string],
      strictMode?: boolean,
    ): Promise<Disposable>;
    fromEBNF(ebnf: string, rootRule?: string): Promise<Disposable>;
    fromStructuralTag(tag: object): Promise<Disposable>;
  };
  GrammarMatcher: {
    createGrammarMatcher(
      g: XgCompiledGrammar,
      stopTokens?: number[],
      terminateWithoutStop?: boolean,
    ): Promise<XgMatcher>;
  };
  /** The bound WASM module once any call has initialised it (patched in by this loader). */
  __binding(): XgBinding | null;
}

const VERSION = '0.1.27';
let loaded: Xgrammar | null = null;
/** What xgrammar printed to stderr during the current call ({@link xgrammarCall}); null: pass it to stderr. */
let captured: string[] | null = null;

function patch(src: string, from: string, to: string): string {
  const at = src.indexOf(from);
  if (at < 0 || src.indexOf(from, at + 1) >= 0)
    throw new MiniVllmError(
      `@mlc-ai/web-xgrammar: its bundle is not the ${VERSION} this loader patches (no single "${from}")`,
      'ERR_INTERNAL',
    );
  return src.slice(0, at) + to + src.slice(at + from.length);
}

/** The xgrammar package, loaded once. */
export function xgrammar(): Xgrammar {
  if (loaded) return loaded;
  const require = createRequire(import.meta.url);
  const pkg = require('@mlc-ai/web-xgrammar/package.json') as { version: string };
  if (pkg.version !== VERSION)
    throw new MiniVllmError(
      `@mlc-ai/web-xgrammar ${pkg.version} is installed; this loader is written for ${VERSION}`,
      'ERR_INTERNAL',
    );
  const file = require.resolve('@mlc-ai/web-xgrammar');
  let src = readFileSync(file, 'utf8');
  // one instance, even when calls race to start it (emscripten makes its argument the module object: a fresh one)
  src = patch(
    src,
    'binding = await Module();',
    'binding = await (__xgModuleArgs.pending ??= Module(__xgModuleArgs.fresh()));',
  );
  src = patch(src, 'var index = {', 'exports.__binding = () => binding;\n  var index = {');
  src = patch(src, "await import('module')", "require('module')"); // no dynamic import() inside node:vm
  const moduleArgs: { pending?: Promise<unknown>; fresh(): object } = {
    fresh: () => ({
      print: (s: string) => process.stderr.write(`xgrammar: ${s}\n`),
      printErr: (s: string) => {
        if (captured) captured.push(s);
        else process.stderr.write(`xgrammar: ${s}\n`);
      },
    }),
  };
  const module = { exports: {} as Record<string, unknown> };
  const run = compileFunction(src, ['exports', 'module', 'require', '__filename', '__dirname', '__xgModuleArgs'], {
    filename: file,
  }) as (...args: unknown[]) => void;
  run(module.exports, module, createRequire(file), file, dirname(file), moduleArgs);
  loaded = module.exports as unknown as Xgrammar;
  return loaded;
}

/**
 * Runs an xgrammar call; if it fails, the error says what xgrammar printed (its own words: "EBNF parser error at
 * line 1, column 16: ...") rather than emscripten's bare "Aborted()".
 */
export async function xgrammarCall<T>(what: string, call: () => Promise<T>): Promise<T> {
  const lines: string[] = [];
  const outer = captured;
  captured = lines;
  try {
    return await call();
  } catch (e) {
    const said = lines
      .map((l) => l.replace(/^\[FATAL\] \S+:\d+: /, '').trim())
      .filter((l) => l !== '' && !l.startsWith('Aborted('));
    const why = said.length > 0 ? said.join('; ') : (e as Error).message;
    throw new TypeError(`${what}: ${why}`);
  } finally {
    captured = outer;
  }
}
