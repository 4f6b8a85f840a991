/**
 * What the runtime and the generator both know about entity fields. It lives outside src/codegen
 * so the arrow points one way: the generator imports these, runtime code never imports the
 * generator (which pulls in ajv schemas of the spec, templates and prettier).
 */

/** Field types of specs/entities.json. */
export const FIELD_TYPES = [
  'uuid',
  'string',
  'text',
  'enum',
  'integer',
  'number',
  'boolean',
  'datetime',
  'json',
] as const;

export type FieldType = (typeof FIELD_TYPES)[number];

/**
 * Pattern of every generated text field. Postgres text cannot hold U+0000, and a lone UTF-16
 * surrogate would be stored as U+FFFD (so two different names could collide); refusing both keeps
 * such input a 400. Under ajv's unicode regexps a surrogate pair is one code point, so only
 * unpaired halves match the class. The HTTP layer recognises it to phrase its error message.
 */
export const SAFE_TEXT = '^[^\\u0000\\uD800-\\uDFFF]*$';
