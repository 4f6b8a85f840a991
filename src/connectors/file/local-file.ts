import { constants, type Stats } from 'node:fs';
import { realpathSync } from 'node:fs';
import { open, readlink, realpath, stat, type FileHandle } from 'node:fs/promises';
import { basename, resolve, sep } from 'node:path';
import type { Readable } from 'node:stream';
import { PermanentSyncError } from '../connector';

export interface LocatedFile {
  /** The path with every link resolved: what is actually read. */
  realPath: string;
  /** The base name, for messages (the full path is part of the source's connection string). */
  name: string;
  size: number;
  stats: Stats;
}

export interface OpenedFile extends LocatedFile {
  handle: FileHandle;
  stream(): Readable;
}

/**
 * Finds `path` below one of `roots` after resolving links, so neither `..` nor a symlink can reach
 * outside (no /etc/shadow). A path outside every root is refused before the file system is asked
 * about it, so a source cannot probe which files exist elsewhere.
 */
export async function locateLocalFile(path: string, roots: string[]): Promise<LocatedFile> {
  if (!roots.length)
    throw new PermanentSyncError('no FILE_ROOTS are configured, so no local file may be read', 'permission');
  const realRoots = await realRootsOf(roots);
  if (!isBelowRoots(path, roots, realRoots)) throw outsideRoots();
  const lexical = resolve(path);
  let realPath: string;
  try {
    realPath = await realpath(lexical);
  } catch (err) {
    throw fileError(err, basename(lexical));
  }
  if (!realRoots.some((root) => isWithin(realPath, root))) throw outsideRoots();
  const stats = await stat(realPath).catch((err: unknown) => {
    throw fileError(err, basename(lexical));
  });
  // Refused before open(): opening a FIFO would block until a writer comes; a device never ends.
  if (!stats.isFile())
    throw new PermanentSyncError(`${basename(lexical)} is not a regular file`, 'invalid_config');
  return { realPath, name: basename(lexical), size: stats.size, stats };
}

/**
 * Whether `path` as written is below one of `roots` or of the directories they link to: the first
 * check of locateLocalFile, made without asking the file system anything about `path` (only about
 * the roots), so sources can be checked at create and update without probing. Links inside the
 * roots are only resolved when the file is read.
 */
export function isBelowRoots(path: string, roots: string[], realRoots = realRootsSync(roots)): boolean {
  const lexical = resolve(path);
  return [...roots.map((r) => resolve(r)), ...realRoots].some((root) => isWithin(lexical, root));
}

/**
 * Opens a located file and checks that what was opened is still the file below the roots (a
 * directory on the way could have been swapped for a link between the check and the open).
 */
export async function openLocalFile(path: string, roots: string[]): Promise<OpenedFile> {
  const located = await locateLocalFile(path, roots);
  let handle: FileHandle;
  try {
    handle = await open(located.realPath, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
  } catch (err) {
    throw fileError(err, located.name);
  }
  try {
    const opened = await handle.stat();
    if (!opened.isFile() || opened.ino !== located.stats.ino || opened.dev !== located.stats.dev)
      throw new PermanentSyncError(`${located.name} changed while it was being opened`, 'permission');
    // Linux names what the descriptor really points at; it must still be below a root.
    const actual = await readlink(`/proc/self/fd/${handle.fd}`).catch(() => undefined);
    if (actual !== undefined && !(await realRootsOf(roots)).some((root) => isWithin(actual, root)))
      throw outsideRoots();
    return {
      ...located,
      size: opened.size,
      handle,
      stream: () => handle.createReadStream({ start: 0, autoClose: true, highWaterMark: 64 * 1024 }),
    };
  } catch (err) {
    await handle.close().catch(() => undefined);
    throw err;
  }
}

function isWithin(path: string, root: string): boolean {
  return root === sep ? path.startsWith(sep) : path === root || path.startsWith(`${root}${sep}`);
}

/** The roots with their links resolved; a root that does not exist (yet) holds no file. */
function realRootsSync(roots: string[]): string[] {
  return roots.flatMap((r) => {
    try {
      return [realpathSync(resolve(r))];
    } catch {
      return [];
    }
  });
}

async function realRootsOf(roots: string[]): Promise<string[]> {
  const real = await Promise.all(roots.map((r) => realpath(resolve(r)).catch(() => undefined)));
  return real.filter((r): r is string => r !== undefined);
}

function outsideRoots(): PermanentSyncError {
  return new PermanentSyncError('the file is outside the directories FILE_ROOTS allows', 'permission');
}

/** ENOENT → not_found, EACCES/ELOOP → permission, with the base name only. */
function fileError(err: unknown, name: string): PermanentSyncError | Error {
  const code = String((err as { code?: unknown }).code ?? '');
  if (code === 'ENOENT' || code === 'ENOTDIR')
    return new PermanentSyncError(`${name} does not exist`, 'not_found');
  if (code === 'EACCES' || code === 'EPERM')
    return new PermanentSyncError(`${name} may not be read (${code})`, 'permission');
  if (code === 'ELOOP')
    return new PermanentSyncError(`${name} is a link loop or a link opened as a file`, 'permission');
  return err instanceof Error ? err : new Error(String(err));
}
