/** Storage types. Every kernel computes in float32 whatever the storage. */
export type DType = 'float32' | 'float16' | 'bfloat16' | 'int32';
export type FloatDType = Exclude<DType, 'int32'>;
export type Device = 'cpu' | 'cuda';

export const DTYPES: readonly DType[] = ['float32', 'float16', 'bfloat16', 'int32'];
export const FLOAT_DTYPES: readonly FloatDType[] = ['float32', 'float16', 'bfloat16'];
export const DEVICES: readonly Device[] = ['cpu', 'cuda'];

const ITEM_SIZE: Record<DType, number> = { float32: 4, float16: 2, bfloat16: 2, int32: 4 };

export function itemSize(dtype: DType): number {
  return ITEM_SIZE[dtype];
}

export function isDType(v: unknown): v is DType {
  return typeof v === 'string' && (DTYPES as readonly string[]).includes(v);
}

export function isFloatDType(v: unknown): v is FloatDType {
  return typeof v === 'string' && (FLOAT_DTYPES as readonly string[]).includes(v);
}

export function isDevice(v: unknown): v is Device {
  return v === 'cpu' || v === 'cuda';
}
