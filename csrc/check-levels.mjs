#!/usr/bin/env node
// Checks a built addon for the one way runtime dispatch can go wrong (csrc/cpu/level.h): code that needs a higher CPU
// level than the code that reaches it. Every function is disassembled; each instruction's level is read off it
// (scalar: neither of the below; avx2: VEX encodings, ymm, FMA, BMI1/2, LZCNT, MOVBE; avx512: zmm, mask registers,
// EVEX decorations), and a function's level is the highest of its instructions. A function may use a level when its
// name is in that level's namespace (mvllm::cpu::lvl_avx2, lvl_avx512) or, for a helper with no level in its name (an
// inline std:: function emitted out of line, a compiler clone), when every function that calls it may. Anything else
// would run on a machine that cannot run it: the check lists those and exits 1. One name is let through: __tls_init,
// the function the compiler writes into each object file to set up its thread_locals, which only that file's code
// calls (through a weak reference, so the call is not a direct one). It also lists the avx2 functions that avx512
// code calls: where the avx512 level has no kernel of its own it runs the level below's (csrc/cpu/level.h).
//
//   node csrc/check-levels.mjs ADDON.node [--verbose]     x86-64 only; needs objdump (binutils)
import { spawnSync } from 'node:child_process';

const LEVELS = ['scalar', 'avx2', 'avx512'];
const addon = process.argv[2];
if (!addon) {
  console.error('usage: node csrc/check-levels.mjs ADDON.node [--verbose]');
  process.exit(2);
}
const dis = spawnSync('objdump', ['-d', '--no-show-raw-insn', '-C', addon], {
  encoding: 'utf8',
  maxBuffer: 1 << 30,
});
if (dis.error || dis.status !== 0) {
  console.error(`check-levels: objdump failed: ${dis.error?.message ?? dis.stderr}`);
  process.exit(2);
}

// Every name of every address (a TLS init function and __tls_init share one, and objdump shows one name).
const nm = spawnSync('nm', ['-C', '--defined-only', addon], { encoding: 'utf8', maxBuffer: 1 << 30 });
if (nm.error || nm.status !== 0) {
  console.error(`check-levels: nm failed: ${nm.error?.message ?? nm.stderr}`);
  process.exit(2);
}
const namesAt = new Map();
const addrsOf = new Map();
for (const line of nm.stdout.split('\n')) {
  const m = /^([0-9a-f]+) \w (.*)$/.exec(line);
  if (!m) continue;
  const addr = parseInt(m[1], 16);
  if (!namesAt.has(addr)) namesAt.set(addr, []);
  namesAt.get(addr).push(m[2]);
  if (!addrsOf.has(m[2])) addrsOf.set(m[2], []);
  addrsOf.get(m[2]).push(addr);
}

const V3_SCALAR = new Set(['shlx', 'shrx', 'sarx', 'rorx', 'andn', 'bzhi', 'pdep', 'pext', 'lzcnt', 'tzcnt', 'movbe']);
for (const m of ['blsi', 'blsr', 'blsmsk']) V3_SCALAR.add(m);

/** The level an instruction needs: 0 scalar (baseline x86-64), 1 x86-64-v3, 2 x86-64-v4. */
function needOf(text) {
  let code = text.split('#')[0]; // drop comments,
  if (code.includes(' <')) code = code.slice(0, code.indexOf(' <')); // and a jump's or call's target name
  const mnemonic = code.trim().split(/\s+/)[0] ?? '';
  if (/%zmm|%k[0-7]|\{/.test(code)) return 2;
  if ((mnemonic.startsWith('v') && mnemonic !== 'verr' && mnemonic !== 'verw') || /%ymm/.test(code)) return 1;
  if (V3_SCALAR.has(mnemonic)) return 1;
  return 0;
}
/** The level a function's names allow: their namespace's. */
function namedLevel(addr, name) {
  const names = [name, ...(namesAt.get(addr) ?? [])];
  if (names.some((n) => n.includes('::lvl_avx512::'))) return 2;
  if (names.some((n) => n.includes('::lvl_avx2::'))) return 1;
  return null;
}

// Functions by address (local symbols share names: every object file has its own __tls_init).
const fns = new Map(); // address -> {name, need, example, callers: Set of addresses}
const fnAt = (addr, name) => {
  if (!fns.has(addr)) fns.set(addr, { name, need: 0, example: '', callers: new Set() });
  return fns.get(addr);
};
let current = null;
for (const line of dis.stdout.split('\n')) {
  const head = /^([0-9a-f]+) <(.*)>:$/.exec(line);
  if (head) {
    current = parseInt(head[1], 16);
    fnAt(current, head[2]).name = head[2];
    continue;
  }
  if (current === null || !line.includes('\t')) continue;
  const text = line.slice(line.indexOf('\t') + 1);
  const fn = fns.get(current);
  const need = needOf(text);
  if (need > fn.need) {
    fn.need = need;
    fn.example = text.trim().slice(0, 80);
  }
  // a direct call, or a jump to another function's start (a tail call): `call 1234 <name>`, not `<name+0x10>`
  const call = /^\s*(call|jmp)\s+([0-9a-f]+) <([^]*)>$/.exec(text);
  if (call && !/\+0x[0-9a-f]+$/.test(call[3])) {
    const target = parseInt(call[2], 16);
    // a call through the PLT (a global function, interposable) is a call of the function of that name
    const targets = call[3].endsWith('@plt') ? (addrsOf.get(call[3].slice(0, -4)) ?? []) : [target];
    for (const t of targets) if (t !== current) fnAt(t, call[3]).callers.add(current);
  }
}

// allowed(f): its namespace's level; else the least of its callers' (a fixed point from above); else scalar.
const allowed = new Map();
for (const [addr, fn] of fns)
  allowed.set(addr, namedLevel(addr, fn.name) ?? (fn.callers.size > 0 || fn.name === '__tls_init' ? 2 : 0));
for (let changed = true; changed;) {
  changed = false;
  for (const [addr, fn] of fns) {
    if (namedLevel(addr, fn.name) !== null || fn.callers.size === 0 || fn.name === '__tls_init') continue;
    const least = Math.min(...[...fn.callers].map((c) => allowed.get(c) ?? 0));
    if (least < allowed.get(addr)) {
      allowed.set(addr, least);
      changed = true;
    }
  }
}

const counts = [0, 0, 0];
const bad = [];
for (const [addr, fn] of fns) {
  counts[fn.need]++;
  if (fn.need > allowed.get(addr)) bad.push({ ...fn, allowed: allowed.get(addr) });
}
console.log(
  `check-levels: ${fns.size} functions in ${addon}: ${counts[0]} scalar, ${counts[1]} need avx2, ${counts[2]} need ` +
    `avx512; ${bad.length} reachable from a lower level`,
);
// Where avx512 code runs avx2's (csrc/cpu/level.h's MVLLM_CPU_LEVEL_BELOW): each avx2 function it calls, by name.
const down = new Set();
for (const [addr, fn] of fns) {
  const name = /::lvl_avx2::([\w:]+)\(/.exec(fn.name);
  if (name && namedLevel(addr, fn.name) === 1 && [...fn.callers].some((c) => namedLevel(c, fns.get(c).name) === 2))
    down.add(name[1]);
}
console.log(`check-levels: avx512 code calls avx2's: ${[...down].sort().join(', ') || 'none'}`);
for (const b of bad.slice(0, process.argv.includes('--verbose') ? bad.length : 20))
  console.log(
    `  ${b.name.slice(0, 200)}\n    needs ${LEVELS[b.need]} (${b.example}) but may run at ${LEVELS[b.allowed]}` +
      (b.callers.size
        ? `; called from ${[...b.callers]
            .slice(0, 3)
            .map((c) => fns.get(c).name)
            .join(' | ')
            .slice(0, 300)}`
        : '; no direct caller'),
  );
process.exit(bad.length ? 1 : 0);
