import { MalformedBodyError, ValidationError } from '../http/errors';

/**
 * Deepest nesting accepted. Landing re-serialises every record, and both JSON.stringify and
 * Postgres' jsonb parser recurse: a 1 MB body of nested brackets would fail there, later.
 */
export const MAX_DEPTH = 100;

/** U+0000 and unpaired surrogates: JSON allows them, jsonb refuses them. */
// eslint-disable-next-line no-control-regex -- U+0000 is exactly what this looks for
const UNSTORABLE = /\u0000|[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

const utf8 = new TextDecoder('utf-8', { fatal: true });

type JsonObject = Record<string, unknown>;

const isObject = (v: unknown): v is JsonObject => typeof v === 'object' && v !== null && !Array.isArray(v);
const escapePointer = (key: string) => key.replace(/~/g, '~0').replace(/\//g, '~1');

/**
 * The records of a webhook body: a JSON object is one record; an array is a batch, one record per
 * element, each an object. Anything else, or a value Postgres cannot store, is a 400.
 */
export function parseWebhookRecords(raw: Buffer): JsonObject[] {
  let value: unknown;
  try {
    value = JSON.parse(utf8.decode(raw));
  } catch {
    throw new MalformedBodyError('The request body is not valid UTF-8 JSON.');
  }
  const records = Array.isArray(value) ? value : [value];
  const notObject = records.findIndex((r) => !isObject(r));
  if (notObject >= 0)
    throw new ValidationError(
      [
        {
          pointer: Array.isArray(value) ? `/${notObject}` : '',
          in: 'body',
          message: 'must be a JSON object (a record), or the body an array of them',
        },
      ],
      'A webhook body is one JSON object or an array of JSON objects.',
    );
  checkStorable(value);
  return records as JsonObject[];
}

/** Walks the value without recursion (a deep body must not overflow our stack either). */
function checkStorable(root: unknown): void {
  const stack: { value: unknown; pointer: string; depth: number }[] = [
    { value: root, pointer: '', depth: 1 },
  ];
  const fail = (pointer: string, message: string) => {
    throw new ValidationError([{ pointer, in: 'body', message }]);
  };
  while (stack.length) {
    const { value, pointer, depth } = stack.pop()!;
    if (typeof value === 'string') {
      if (UNSTORABLE.test(value)) fail(pointer, 'must not contain U+0000 or unpaired surrogates');
      continue;
    }
    if (typeof value !== 'object' || value === null) continue;
    if (depth > MAX_DEPTH) fail(pointer, `nests deeper than ${MAX_DEPTH} levels`);
    const entries = Array.isArray(value) ? value.entries() : Object.entries(value as JsonObject);
    for (const [key, child] of entries) {
      const name = String(key);
      if (UNSTORABLE.test(name))
        fail(`${pointer}/${escapePointer(name)}`, 'key must not contain U+0000 or unpaired surrogates');
      stack.push({ value: child, pointer: `${pointer}/${escapePointer(name)}`, depth: depth + 1 });
    }
  }
}
