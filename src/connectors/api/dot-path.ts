/** Reads a dot path ("data.items", "meta.next_cursor", "pages.0.next"); undefined when any step is missing. */
export function readDotPath(value: unknown, path: string | undefined): unknown {
  if (!path) return value;
  let current = value;
  for (const key of path.split('.')) {
    if (current === null || typeof current !== 'object') return undefined;
    // Own keys only: a path must not reach prototype members ("constructor", "__proto__").
    if (!Object.prototype.hasOwnProperty.call(current, key)) return undefined;
    current = (current as Record<string, unknown>)[key];
  }
  return current;
}
