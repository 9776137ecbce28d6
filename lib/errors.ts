/** Error codes carried by {@link MiniVllmError} (and by the TypeError / RangeError the ops throw). */
export type MiniVllmErrorCode =
  | 'ERR_CUDA'
  | 'ERR_OUT_OF_MEMORY'
  | 'ERR_DEVICE_ASSERT'
  | 'ERR_UNSUPPORTED'
  | 'ERR_INTERNAL';

/** A failure that is not a bad argument: a CUDA error, out of memory, a missing backend, a device-side check. */
export class MiniVllmError extends Error {
  readonly code: MiniVllmErrorCode;

  constructor(message: string, code: MiniVllmErrorCode) {
    super(message);
    this.name = 'MiniVllmError';
    this.code = code;
  }
}
