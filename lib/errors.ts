/** Error codes carried by {@link MiniVllmError} (and by the TypeError / RangeError the ops throw). */
export type MiniVllmErrorCode =
  | 'ERR_CUDA'
  | 'ERR_OUT_OF_MEMORY'
  | 'ERR_DEVICE_ASSERT'
  | 'ERR_UNSUPPORTED'
  | 'ERR_BAD_MODEL'
  | 'ERR_INTERNAL'
  /** An engine core's worker died: its requests failed; another core, a restart or another replica can take them. */
  | 'ERR_ENGINE_DEAD';

/** A failure that is not a bad argument: a CUDA error, out of memory, a missing backend, a device-side check. */
export class MiniVllmError extends Error {
  readonly code: MiniVllmErrorCode;

  constructor(message: string, code: MiniVllmErrorCode) {
    super(message);
    this.name = 'MiniVllmError';
    this.code = code;
  }
}

/** A model or tokenizer file that cannot be used: truncated, corrupt, inconsistent with its config. Names the file. */
export class ModelFormatError extends MiniVllmError {
  readonly file: string;

  constructor(file: string, message: string) {
    super(`${file}: ${message}`, 'ERR_BAD_MODEL');
    this.name = 'ModelFormatError';
    this.file = file;
  }
}
