import type { FieldError } from '../http/errors';

export const SYNC_MODES = ['append', 'snapshot', 'dedup'] as const;
export type SyncMode = (typeof SYNC_MODES)[number];

/** Dedup settings read from a source's metadata (`primary_key`, `delete_marker`). */
export interface DedupSettings {
  primaryKey: string[];
  deleteMarker?: string;
}

/** A dot path into a record: non-empty steps separated by dots. */
const DOT_PATH = /^[^.]+(\.[^.]+)*$/;
const isPath = (v: unknown): v is string => typeof v === 'string' && DOT_PATH.test(v);

/** `metadata.primary_key` as a list of dot paths (a string is one path), or undefined when unset or malformed. */
export function primaryKeyOf(metadata: Record<string, unknown> | null | undefined): string[] | undefined {
  const key = metadata?.primary_key;
  const paths = typeof key === 'string' ? [key] : key;
  return Array.isArray(paths) && paths.length > 0 && paths.every(isPath) ? [...paths] : undefined;
}

/** The dedup settings of a source in dedup mode (validated at create and update). */
export function dedupSettings(
  metadata: Record<string, unknown> | null | undefined,
): DedupSettings | undefined {
  const primaryKey = primaryKeyOf(metadata);
  if (!primaryKey) return undefined;
  const marker = metadata?.delete_marker;
  return { primaryKey, ...(isPath(marker) ? { deleteMarker: marker } : {}) };
}

/**
 * The rules of sync_mode, checked at create and update against the source as it will be saved:
 * `snapshot` needs a full refresh (`fullRefresh` from the type's connector; undefined skips the
 * check), `dedup` needs `metadata.primary_key`; `primary_key` and `delete_marker`, when present,
 * must be dot paths.
 */
export function syncModeProblems(
  source: { sync_mode: unknown; metadata: Record<string, unknown> | null | undefined; source_type: unknown },
  fullRefresh: boolean | undefined,
): FieldError[] {
  const errors: FieldError[] = [];
  const metadata = source.metadata ?? {};
  const type = typeof source.source_type === 'string' ? source.source_type : 'this';
  if ('primary_key' in metadata && !primaryKeyOf(metadata))
    errors.push({
      pointer: '/metadata/primary_key',
      in: 'body',
      message: 'must be a dot path ("id") or a non-empty list of them (["tenant", "id"])',
    });
  if ('delete_marker' in metadata && !isPath(metadata.delete_marker))
    errors.push({
      pointer: '/metadata/delete_marker',
      in: 'body',
      message: 'must be a dot path ("deleted_at")',
    });
  if (source.sync_mode === 'snapshot' && fullRefresh === false)
    errors.push({
      pointer: '/sync_mode',
      in: 'body',
      message: `snapshot needs a full-refresh source, and a ${type} source with these settings syncs incrementally (snapshot fits a file, an api without incremental, a database without cursor_column)`,
    });
  if (source.sync_mode === 'dedup' && !('primary_key' in metadata))
    errors.push({
      pointer: '/sync_mode',
      in: 'body',
      message: 'dedup needs metadata.primary_key: the dot path(s) of the field(s) that identify a record',
    });
  return errors;
}
