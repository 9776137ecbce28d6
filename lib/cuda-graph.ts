// CUDA graphs: the kernels one function queues on a device's stream, recorded once and replayed as a single launch.
import { native, type NativeGraph } from './native.js';

export class CudaGraph {
  readonly deviceIndex: number;
  private handle: NativeGraph | null;

  private constructor(handle: NativeGraph, deviceIndex: number) {
    this.handle = handle;
    this.deviceIndex = deviceIndex;
  }

  /**
   * Records what `fn` queues on cuda:deviceIndex; the kernels do not run now. `fn` must only launch ops on buffers
   * that outlive the graph: allocating, freeing, copying from the host or synchronizing fails the capture, which is
   * then dropped and the error rethrown; so must a profiler's events, so `fn` is given none. Returns the graph and
   * what `fn` returned (views of the buffers it writes).
   */
  static capture<T>(fn: () => T, deviceIndex = 0): { graph: CudaGraph; result: T } {
    native.graphBegin(deviceIndex);
    let result: T;
    try {
      result = fn();
    } catch (e) {
      native.graphAbort(deviceIndex);
      throw e;
    }
    return { graph: new CudaGraph(native.graphEnd(deviceIndex), deviceIndex), result };
  }

  get disposed(): boolean {
    return this.handle === null;
  }

  /**
   * Queues the recorded kernels (returns before they finish). False, with nothing queued, when a buffer the runtime
   * owns (the attention scratch) moved since the capture: capture again.
   */
  replay(): boolean {
    if (this.handle === null) throw new Error('CudaGraph: the graph was disposed');
    return native.graphReplay(this.handle);
  }

  dispose(): void {
    if (this.handle === null) return;
    native.graphDestroy(this.handle);
    this.handle = null;
  }
}
