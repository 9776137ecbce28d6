// CPU graphs: the CPU ops one function calls, recorded once (arguments read and checked) and replayed by one native
// call, as a CUDA graph replays its launches. On a small model the JS and N-API cost of calling ~10 ops a layer is a
// fifth of a decode step; a replay pays it once.
import { native, type NativeCpuGraph } from './native.js';

export class CpuGraph {
  private handle: NativeCpuGraph | null;

  private constructor(handle: NativeCpuGraph) {
    this.handle = handle;
  }

  /**
   * Records the ops `fn` calls on CPU tensors on this thread; they do not run now. As with a CUDA graph, `fn` must
   * only call ops on buffers that outlive the graph: allocating, copying, filling, an op of host arrays (sampleRows)
   * or a CUDA op throws, the recording is dropped and the error rethrown. Returns the graph and what `fn` returned
   * (views of the buffers it writes). The graph keeps the storages its ops read alive until it is disposed.
   */
  static capture<T>(fn: () => T): { graph: CpuGraph; result: T } {
    native.cpuGraphBegin();
    let result: T;
    try {
      result = fn();
    } catch (e) {
      native.cpuGraphAbort();
      throw e;
    }
    return { graph: new CpuGraph(native.cpuGraphEnd()), result };
  }

  get disposed(): boolean {
    return this.handle === null;
  }

  /** Runs the recorded ops in order (they have finished when it returns); true, as a CUDA graph's replay. */
  replay(): boolean {
    if (this.handle === null) throw new Error('CpuGraph: the graph was disposed');
    native.cpuGraphReplay(this.handle);
    return true;
  }

  dispose(): void {
    if (this.handle === null) return;
    native.cpuGraphDestroy(this.handle);
    this.handle = null;
  }
}
