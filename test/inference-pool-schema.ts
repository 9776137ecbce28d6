// The InferencePool object (Gateway API Inference Extension, inference.networking.k8s.io/v1) as a JSON Schema, written
// from the extension's v1 API reference: no npm package ships its CRD schema. Closed objects (no unknown fields),
// the reference's bounds (1 to 8 unique target ports, port numbers 1-65535, the failure modes and protocols).
const port = {
  type: 'object',
  additionalProperties: false,
  required: ['number'],
  properties: { number: { type: 'integer', minimum: 1, maximum: 65535 } },
} as const;

const name = { type: 'string', minLength: 1, maxLength: 253 } as const;

export const INFERENCE_POOL_V1 = {
  type: 'object',
  additionalProperties: false,
  required: ['apiVersion', 'kind', 'metadata', 'spec'],
  properties: {
    apiVersion: { const: 'inference.networking.k8s.io/v1' },
    kind: { const: 'InferencePool' },
    metadata: {
      type: 'object',
      required: ['name'],
      properties: {
        name,
        namespace: name,
        labels: { type: 'object', additionalProperties: { type: 'string' } },
        annotations: { type: 'object', additionalProperties: { type: 'string' } },
      },
      additionalProperties: false,
    },
    spec: {
      type: 'object',
      additionalProperties: false,
      required: ['selector', 'targetPorts', 'endpointPickerRef'],
      properties: {
        selector: {
          type: 'object',
          additionalProperties: false,
          required: ['matchLabels'],
          properties: {
            matchLabels: {
              type: 'object',
              minProperties: 1,
              maxProperties: 64,
              additionalProperties: { type: 'string', maxLength: 63 },
            },
          },
        },
        targetPorts: { type: 'array', minItems: 1, maxItems: 8, uniqueItems: true, items: port },
        appProtocol: { enum: ['http', 'kubernetes.io/h2c'] },
        endpointPickerRef: {
          type: 'object',
          additionalProperties: false,
          required: ['name'],
          properties: {
            group: { type: 'string', maxLength: 253 },
            kind: { type: 'string', minLength: 1, maxLength: 63 },
            name,
            port,
            failureMode: { enum: ['FailOpen', 'FailClose'] },
          },
        },
      },
    },
  },
} as const;
