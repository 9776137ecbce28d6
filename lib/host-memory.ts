// What memory this process can still get on the host: the smaller of the system's available memory (Linux
// MemAvailable) and what its container's cgroup limit leaves (v2 memory.max, v1 memory.limit_in_bytes, less the
// cgroup's usage that cannot be reclaimed). MINI_VLLM_MEM_AVAILABLE and MINI_VLLM_MEM_LIMIT replace the two readings
// (tests, or a deployment that wants a lower ceiling than the machine's).
import { readFileSync } from 'node:fs';
import { freemem, platform, totalmem } from 'node:os';
import { MiniVllmError } from './errors.js';

export interface HostMemory {
  /** Bytes the process can still allocate: the smaller of the two below. */
  available: number;
  /** The system's available memory (MemAvailable; on other systems the total memory), or the override. */
  system: number;
  /** The container's limit less what the container already uses; null without a limit. */
  container: number | null;
  /** One line naming where each number came from. */
  source: string;
}

const GIB = 2 ** 30;
const UNITS: Record<string, number> = { '': 1, K: 2 ** 10, M: 2 ** 20, G: GIB, T: 2 ** 40 };

/** `24G`, `24GiB`, `1.5 TiB` or plain bytes (binary units). */
export function parseBytes(text: string, what: string): number {
  const m = /^\s*(\d+(?:\.\d+)?)\s*([KMGT]?)(?:i?B)?\s*$/i.exec(text);
  if (!m) throw new RangeError(`${what} must be a byte count such as 24G or 25769803776, got ${JSON.stringify(text)}`);
  return Math.floor(Number(m[1]) * UNITS[m[2]!.toUpperCase()]!);
}

export function gib(bytes: number): string {
  return `${(bytes / GIB).toFixed(bytes < 10 * GIB ? 2 : 1)} GiB`;
}

function read(path: string): string | null {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return null;
  }
}

function statField(stat: string | null, key: string): number {
  const m = stat && new RegExp(`^${key} (\\d+)$`, 'm').exec(stat);
  return m ? Number(m[1]) : 0;
}

/**
 * The tightest cgroup memory limit over this process's cgroup and its ancestors, and that cgroup's usage less what it
 * can reclaim (inactive page cache). `procCgroup` is /proc/self/cgroup's text; `root` where the hierarchy is mounted.
 */
export function cgroupLimit(
  procCgroup = read('/proc/self/cgroup') ?? '',
  root = '/sys/fs/cgroup',
): { limit: number; usage: number; file: string } | null {
  const lines = procCgroup.split('\n');
  const candidates: { dir: string; v2: boolean }[] = [];
  const walk = (root: string, path: string, v2: boolean) => {
    const parts = path.split('/').filter(Boolean);
    for (let i = parts.length; i >= 0; --i) candidates.push({ dir: [root, ...parts.slice(0, i)].join('/'), v2 });
  };
  for (const line of lines) {
    const [, controllers, path] = line.split(':');
    if (path === undefined) continue;
    if (controllers === '') walk(root, path, true);
    else if (controllers!.split(',').includes('memory')) walk(`${root}/memory`, path, false);
  }
  let best: { limit: number; usage: number; file: string } | null = null;
  for (const { dir, v2 } of candidates) {
    const file = `${dir}/${v2 ? 'memory.max' : 'memory.limit_in_bytes'}`;
    const text = read(file)?.trim();
    if (!text || text === 'max') continue;
    const limit = Number(text);
    // v1 writes "no limit" as a page-rounded 2^63.
    if (!Number.isFinite(limit) || limit >= 2 ** 60) continue;
    const used = Number(read(`${dir}/${v2 ? 'memory.current' : 'memory.usage_in_bytes'}`)?.trim() ?? 0) || 0;
    const stat = read(`${dir}/memory.stat`);
    const reclaimable = v2 ? statField(stat, 'inactive_file') : statField(stat, 'total_inactive_file');
    const usage = Math.max(0, used - reclaimable);
    if (!best || limit - usage < best.limit - best.usage) best = { limit, usage, file };
  }
  return best;
}

/** Reads the host's memory now (a few small files; cheap enough to call before each large allocation). */
export function hostMemory(): HostMemory {
  const sources: string[] = [];
  let system: number;
  const availEnv = process.env['MINI_VLLM_MEM_AVAILABLE'];
  if (availEnv) {
    system = parseBytes(availEnv, 'MINI_VLLM_MEM_AVAILABLE');
    sources.push(`MINI_VLLM_MEM_AVAILABLE ${gib(system)}`);
  } else {
    const m = platform() === 'linux' ? /^MemAvailable:\s+(\d+) kB$/m.exec(read('/proc/meminfo') ?? '') : null;
    // Elsewhere there is no good reading of reclaimable memory (macOS's free memory leaves out its caches): the
    // total is the ceiling, and the operating system's own limits apply past it.
    system = m ? Number(m[1]) * 1024 : platform() === 'linux' ? freemem() : totalmem();
    sources.push(`${m ? 'MemAvailable' : platform() === 'linux' ? 'free memory' : 'total memory'} ${gib(system)}`);
  }
  let container: number | null = null;
  const limitEnv = process.env['MINI_VLLM_MEM_LIMIT'];
  if (limitEnv) {
    const limit = parseBytes(limitEnv, 'MINI_VLLM_MEM_LIMIT');
    const rss = process.memoryUsage.rss();
    container = Math.max(0, limit - rss);
    sources.push(`MINI_VLLM_MEM_LIMIT ${gib(limit)} less this process's ${gib(rss)}`);
  } else {
    const cg = cgroupLimit();
    if (cg) {
      container = Math.max(0, cg.limit - cg.usage);
      sources.push(`cgroup limit ${gib(cg.limit)} (${cg.file}) less ${gib(cg.usage)} in use`);
    }
  }
  return {
    available: container === null ? system : Math.min(system, container),
    system,
    container,
    source: sources.join(', '),
  };
}

/** CPU allocations at least this large check the host's memory first (smaller ones cannot matter). */
export const HOST_CHECK_BYTES = 64 * 2 ** 20;

/**
 * Throws ERR_OUT_OF_MEMORY if the host cannot give `bytes` now: past a memory plan, another process may have taken
 * the memory, and Linux would otherwise hand out pages it cannot back and end the process later ("Killed").
 */
export function checkHostAllocation(bytes: number, what: string): void {
  const mem = hostMemory();
  if (bytes > mem.available)
    throw new MiniVllmError(
      `${what}: out of host memory: ${gib(bytes)} requested, ${gib(mem.available)} available (${mem.source})`,
      'ERR_OUT_OF_MEMORY',
    );
}
