// The JSON Schema keywords structured output honours, checked before a schema reaches the grammar engine: xgrammar
// compiles many keywords it does not enforce (multipleOf, not, uniqueItems, if/then/else, a remote $ref...) into "any
// value", so a schema naming one would give outputs that fail it. Those are refused here, naming the keyword and where
// it is. allOf is merged here (xgrammar keeps only one branch); oneOf is taken when its branches cannot overlap.

/** Keywords enforced by the grammar. */
const ENFORCED = new Set([
  'type',
  'additionalItems',
  'properties',
  'required',
  'additionalProperties',
  'enum',
  'const',
  'items',
  'prefixItems',
  'minItems',
  'maxItems',
  'anyOf',
  'oneOf',
  'allOf',
  '$ref',
  '$defs',
  'definitions',
  'minLength',
  'maxLength',
  'pattern',
  'format',
  'minimum',
  'maximum',
  'exclusiveMinimum',
  'exclusiveMaximum',
]);

/** Keywords that only describe: ignored, as every validator ignores them. */
const ANNOTATIONS = new Set([
  'title',
  'description',
  'default',
  'examples',
  '$schema',
  '$id',
  'id',
  '$comment',
  'readOnly',
  'writeOnly',
  'deprecated',
]);

const COMBINATORS = ['anyOf', 'oneOf', 'allOf'];

/** Keywords that constrain only values of one type (a schema with them and no "type" is given that type). */
const FAMILIES: [string, string[]][] = [
  ['number', ['minimum', 'maximum', 'exclusiveMinimum', 'exclusiveMaximum']],
  ['string', ['minLength', 'maxLength', 'pattern', 'format']],
  ['array', ['items', 'prefixItems', 'minItems', 'maxItems']],
  ['object', ['properties', 'required', 'additionalProperties']],
];

/**
 * A schema without "type" whose keywords all constrain one type is given that type: `{"maximum": 3}` also allows
 * strings, but xgrammar would then enforce nothing; outputs that are numbers <= 3 are valid. Keywords of several
 * types without a "type" (or without anyOf to split them) are refused.
 */
function inferType(s: Schema, bad: (m: string) => SchemaError): Schema {
  if (typeof s !== 'object' || s['type'] !== undefined || s['$ref'] !== undefined) return s;
  if (s['enum'] !== undefined || s['const'] !== undefined || COMBINATORS.some((k) => s[k] !== undefined)) return s;
  const families = FAMILIES.filter(([, keys]) => keys.some((k) => s[k] !== undefined));
  if (families.length === 0) return s;
  if (families.length > 1)
    throw bad(
      `keywords of several types (${families.map(([t]) => t).join(', ')}) without "type" are not supported: ` +
        'give "type", or split them with anyOf',
    );
  return { ...s, type: families[0]![0] };
}

/** A schema as xgrammar gets it: its type inferred, then xgrammar's number and string-length gaps worked around. */
function finish(s: Schema, bad: (m: string) => SchemaError): Schema {
  return formats(stringLengths(boundedNumbers(inferType(s, bad), bad), bad), bad);
}

const DAY = '((0[13578]|1[02])-(0[1-9]|[12][0-9]|3[01])|(0[469]|11)-(0[1-9]|[12][0-9]|30)|02-(0[1-9]|1[0-9]|2[0-8]))';
const DATE = `[0-9]{4}-${DAY}`;
const TIME = '([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](\\.[0-9]{1,6})?(Z|[+-]([01][0-9]|2[0-3]):[0-5][0-9])';
const LABEL = '[a-zA-Z0-9]([a-zA-Z0-9-]{0,18}[a-zA-Z0-9])?';
const OCTET = '(25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])';

/**
 * Each format as a pattern of values every validator takes: xgrammar 0.1.27's own let "05:60:50" (minute 60),
 * "11-31" and a leap second through, and emails with no dot in the domain. Some valid values are left out (February
 * 29th, leap seconds, dotless domains, quoted local parts).
 */
const FORMAT_PATTERNS: Record<string, string> = {
  date: `^${DATE}$`,
  time: `^${TIME}$`,
  'date-time': `^${DATE}T${TIME}$`,
  uuid: '^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$',
  email: `^[a-zA-Z0-9_+-]{1,32}(\\.[a-zA-Z0-9_+-]{1,32}){0,3}@${LABEL}(\\.${LABEL}){1,3}$`,
  hostname: `^${LABEL}(\\.${LABEL}){0,3}$`,
  ipv4: `^(${OCTET}\\.){3}${OCTET}$`,
};

/** A string's format as its pattern (FORMAT_PATTERNS); a format beside a pattern is refused (xgrammar drops one). */
function formats(s: Schema, bad: (m: string) => SchemaError): Schema {
  if (typeof s !== 'object' || typeof s['format'] !== 'string') return s;
  if (s['pattern'] !== undefined) throw bad('"format" beside "pattern" is not supported (xgrammar ignores one)');
  const { format, ...rest } = s;
  return { ...rest, pattern: FORMAT_PATTERNS[format]! };
}

const BOUNDS = ['minimum', 'maximum', 'exclusiveMinimum', 'exclusiveMaximum'];

/**
 * A number with bounds is generated as an integer within them: xgrammar 0.1.27's grammar for a fractional range lets
 * values past the bound through (30.8 under "maximum": 30), its integer ranges are exact, and an integer in the
 * bounds is a valid number. Bounds with no integer between them, or beside a list of types, are refused.
 */
function boundedNumbers(s: Schema, bad: (m: string) => SchemaError): Schema {
  if (typeof s !== 'object' || !BOUNDS.some((k) => s[k] !== undefined)) return s;
  const types = Array.isArray(s['type']) ? (s['type'] as string[]) : [s['type']];
  if (!types.includes('number')) return s;
  if (types.length > 1) throw bad('numeric bounds beside a list of types are not supported');
  const out: Record<string, unknown> = { ...s, type: 'integer' };
  for (const k of BOUNDS) delete out[k];
  const lo = Math.max(
    typeof s['minimum'] === 'number' ? Math.ceil(s['minimum']) : -Infinity,
    typeof s['exclusiveMinimum'] === 'number' ? Math.floor(s['exclusiveMinimum']) + 1 : -Infinity,
  );
  const hi = Math.min(
    typeof s['maximum'] === 'number' ? Math.floor(s['maximum']) : Infinity,
    typeof s['exclusiveMaximum'] === 'number' ? Math.ceil(s['exclusiveMaximum']) - 1 : Infinity,
  );
  if (lo > hi) throw bad(`no integer lies within the bounds of this number (fractional ranges are not supported)`);
  if (lo > -Infinity) out['minimum'] = lo;
  if (hi < Infinity) out['maximum'] = hi;
  return out;
}

/**
 * A string's length bounds as a pattern of that many plain characters: xgrammar 0.1.27's grammar for minLength /
 * maxLength lets raw control characters into the string (invalid JSON), and it ignores the bounds beside a pattern
 * or a format (refused here). Plain characters: no quote, backslash or control character (so no escapes either).
 */
function stringLengths(s: Schema, bad: (m: string) => SchemaError): Schema {
  if (typeof s !== 'object' || (s['minLength'] === undefined && s['maxLength'] === undefined)) return s;
  const types = Array.isArray(s['type']) ? (s['type'] as string[]) : [s['type']];
  if (!types.includes('string')) return s;
  if (types.length > 1) throw bad('minLength / maxLength beside a list of types are not supported');
  for (const k of ['pattern', 'format'])
    if (s[k] !== undefined) throw bad(`minLength / maxLength beside "${k}" are not supported (xgrammar ignores them)`);
  const { minLength, maxLength, ...rest } = s;
  const lo = typeof minLength === 'number' ? Math.ceil(minLength) : 0;
  const hi = typeof maxLength === 'number' ? String(Math.floor(maxLength)) : '';
  if (hi !== '' && Number(hi) < lo) throw bad('minLength is greater than maxLength');
  return { ...rest, pattern: `^[^"\\\\\\x00-\\x1f]{${lo},${hi}}$` };
}

/** The `format` values the grammar spells out (others would be any string). */
export const FORMATS = ['date', 'time', 'date-time', 'uuid', 'email', 'hostname', 'ipv4'];

const TYPES = new Set(['object', 'array', 'string', 'number', 'integer', 'boolean', 'null']);

type Schema = Record<string, unknown> | boolean;

/** A schema that structured output refuses: the message names the keyword and its place (a JSON pointer). */
export class SchemaError extends TypeError {
  constructor(message: string) {
    super(message);
    this.name = 'TypeError';
  }
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/**
 * Checks `schema` and returns the one the grammar engine compiles (allOf merged). Throws SchemaError naming the first
 * keyword it cannot enforce, with its place: `#/properties/age: "multipleOf" is not supported`.
 */
export function checkSchema(schema: unknown, where = 'json schema'): Schema {
  if (typeof schema === 'boolean') return schema;
  if (!isObject(schema)) throw new SchemaError(`${where}: a schema must be an object or a boolean`);
  const root = schema;
  const walk = (s: unknown, at: string, infer = true): Schema => {
    if (typeof s === 'boolean') return s;
    if (!isObject(s)) throw new SchemaError(`${where}: ${at} must be a schema (an object or a boolean)`);
    const bad = (msg: string) => new SchemaError(`${where}: ${at}: ${msg}`);
    for (const k of Object.keys(s))
      if (!ENFORCED.has(k) && !ANNOTATIONS.has(k))
        throw bad(`"${k}" is not supported (structured output enforces ${[...ENFORCED].join(', ')})`);
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(s)) if (!ANNOTATIONS.has(k) || k === '$schema') out[k] = v;
    const types = s['type'] === undefined ? [] : Array.isArray(s['type']) ? s['type'] : [s['type']];
    for (const t of types)
      if (typeof t !== 'string' || !TYPES.has(t)) throw bad(`"type" ${JSON.stringify(t)} is unknown`);
    if (s['format'] !== undefined && !FORMATS.includes(s['format'] as string))
      throw bad(`"format" ${JSON.stringify(s['format'])} is not supported (${FORMATS.join(', ')})`);
    for (const k of ['exclusiveMinimum', 'exclusiveMaximum'])
      if (s[k] !== undefined && typeof s[k] !== 'number')
        throw bad(`"${k}" must be a number (the draft-4 boolean form is not supported)`);
    if (s['pattern'] !== undefined && typeof s['pattern'] !== 'string') throw bad('"pattern" must be a string');
    if (s['$ref'] !== undefined) {
      const ref = s['$ref'];
      if (typeof ref !== 'string' || !(ref === '#' || ref.startsWith('#/')))
        throw bad(`"$ref" ${JSON.stringify(ref)}: only references within the schema ("#/...") are supported`);
      resolve(root, ref, `${where}: ${at}`);
      if (Object.keys(s).some((k) => !['$ref', '$defs', 'definitions'].includes(k) && !ANNOTATIONS.has(k)))
        throw bad('"$ref" beside other keywords is not supported');
    }
    if (Array.isArray(s['items'])) {
      // draft 4's tuples: items [...] and additionalItems are prefixItems and items today
      const { items, additionalItems, ...rest } = s;
      return walk(
        { ...rest, prefixItems: items, ...(additionalItems === undefined ? {} : { items: additionalItems }) },
        at,
        infer,
      );
    }
    if (s['additionalItems'] !== undefined) throw bad('"additionalItems" without an "items" array is not supported');
    for (const k of ['properties', '$defs', 'definitions']) {
      const m = s[k];
      if (m === undefined) continue;
      if (!isObject(m)) throw bad(`"${k}" must be an object of schemas`);
      out[k] = Object.fromEntries(Object.entries(m).map(([n, v]) => [n, walk(v, `${at}/${k}/${escape(n)}`)]));
    }
    for (const k of ['items', 'additionalProperties']) if (s[k] !== undefined) out[k] = walk(s[k], `${at}/${k}`);
    // a base schema beside anyOf / oneOf is merged into each branch (xgrammar reads only the branches)
    const combinators = ['anyOf', 'oneOf'].filter((k) => s[k] !== undefined);
    const base = Object.keys(out).filter(
      (k) => !COMBINATORS.includes(k) && !['$defs', 'definitions', '$schema'].includes(k),
    );
    const distribute = combinators.length === 1 && base.length > 0;
    for (const k of ['prefixItems', 'anyOf', 'oneOf', 'allOf']) {
      const list = s[k];
      if (list === undefined) continue;
      if (!Array.isArray(list) || list.length === 0) throw bad(`"${k}" must be a non-empty array of schemas`);
      out[k] = list.map((v, i) => walk(v, `${at}/${k}/${i}`, !(distribute && k === combinators[0]) && k !== 'allOf'));
    }
    if (combinators.length > 1) throw bad('"anyOf" and "oneOf" together are not supported');
    let result: Schema = out['allOf'] !== undefined ? mergeAllOf(out, bad) : out;
    if (distribute && typeof result === 'object') {
      const k = combinators[0]!;
      const baseSchema = Object.fromEntries(base.map((b) => [b, (result as Record<string, unknown>)[b]]));
      const branches = (result[k] as Schema[]).map((b, i) => {
        const at = (m: string) => bad(`${k}/${i}: ${m}`);
        return finish(mergeAllOf({ allOf: [baseSchema, b] }, at), at);
      });
      result = Object.fromEntries(Object.entries(result).filter(([key]) => !base.includes(key) && key !== k));
      result[k] = branches;
    }
    if (typeof result === 'object' && result['oneOf'] !== undefined && !disjoint(result['oneOf'] as Schema[], root))
      throw bad('"oneOf" whose branches may overlap is not supported (its branches must differ in type or value)');
    return infer ? finish(result, bad) : stringLengths(boundedNumbers(result, bad), bad);
  };
  return walk(schema, '#');
}

function escape(name: string): string {
  return name.replaceAll('~', '~0').replaceAll('/', '~1');
}

function resolve(root: Record<string, unknown>, ref: string, where: string): unknown {
  let node: unknown = root;
  for (const part of ref
    .slice(2)
    .split('/')
    .filter((p) => p !== '')) {
    const key = decodeURIComponent(part).replaceAll('~1', '/').replaceAll('~0', '~');
    if (!isObject(node) || !(key in node))
      throw new SchemaError(`${where}: "$ref" ${JSON.stringify(ref)} names nothing`);
    node = node[key];
  }
  return node;
}

/** What a branch can be: its types, or its values where it fixes them (const / enum). */
function kinds(
  s: Schema,
  root: Record<string, unknown>,
  depth = 0,
): { types: Set<string> | null; values: unknown[] | null } {
  if (typeof s === 'boolean' || depth > 8) return { types: null, values: null };
  if (typeof s['$ref'] === 'string') return kinds(resolve(root, s['$ref'], '') as Schema, root, depth + 1);
  const values = s['const'] !== undefined ? [s['const']] : Array.isArray(s['enum']) ? (s['enum'] as unknown[]) : null;
  const t = s['type'];
  const types = t === undefined ? null : new Set((Array.isArray(t) ? t : [t]) as string[]);
  if (types?.has('number')) types.add('integer');
  return { types, values };
}

/** Whether no value can satisfy two branches: their types differ, or both fix values and share none. */
function disjoint(branches: Schema[], root: Record<string, unknown>): boolean {
  const k = branches.map((b) => kinds(b, root));
  for (let i = 0; i < k.length; ++i)
    for (let j = i + 1; j < k.length; ++j) {
      const [a, b] = [k[i]!, k[j]!];
      if (a.types && b.types && ![...a.types].some((t) => b.types!.has(t))) continue;
      if (a.values && b.values && !a.values.some((x) => b.values!.some((y) => JSON.stringify(x) === JSON.stringify(y))))
        continue;
      return false;
    }
  return true;
}

/**
 * allOf as one schema: properties and required joined, every other keyword taken where the branches agree on it (or
 * only one sets it). A keyword two branches set differently, or a $ref branch, is refused.
 */
function mergeAllOf(s: Record<string, unknown>, bad: (m: string) => SchemaError): Schema {
  const out: Record<string, unknown> = { ...s };
  delete out['allOf'];
  const branches = s['allOf'] as Schema[];
  // additionalProperties judges only its own branch's properties: merged, it would judge the others' too
  const withProps = [s, ...branches].filter((b) => typeof b === 'object' && b['properties'] !== undefined).length;
  if (withProps > 1 && [s, ...branches].some((b) => typeof b === 'object' && b['additionalProperties'] !== undefined))
    throw bad('"allOf" with properties in several branches and additionalProperties is not supported');
  for (const [i, branch] of branches.entries()) {
    if (branch === true) continue;
    if (branch === false) return false;
    if (branch['$ref'] !== undefined || branch['anyOf'] !== undefined || branch['oneOf'] !== undefined)
      throw bad(`"allOf/${i}": a branch with $ref, anyOf or oneOf is not supported`);
    for (const [k, v] of Object.entries(branch)) {
      if (k === 'properties') {
        const props = { ...((out['properties'] as Record<string, unknown>) ?? {}) };
        for (const [name, p] of Object.entries(v as Record<string, unknown>)) {
          if (name in props && JSON.stringify(props[name]) !== JSON.stringify(p))
            throw bad(`"allOf/${i}/properties/${escape(name)}" differs from another branch's: not supported`);
          props[name] = p;
        }
        out['properties'] = props;
      } else if (k === 'required') {
        out['required'] = [...new Set([...((out['required'] as string[]) ?? []), ...(v as string[])])];
      } else if (out[k] !== undefined && JSON.stringify(out[k]) !== JSON.stringify(v)) {
        throw bad(`"allOf/${i}/${k}" differs from another branch's "${k}": not supported`);
      } else out[k] = v;
    }
  }
  return out;
}
