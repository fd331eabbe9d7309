/**
 * Crash-safe file replacement: readers see either the old file or the new one, never a torn write.
 */
import { randomBytes } from 'node:crypto';
import type { FileHandle } from 'node:fs/promises';
import { open, rename, unlink } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';

/** Options for writeFileAtomic. */
export interface WriteFileAtomicOptions {
  /** Exact permission bits of the new file (e.g. 0o600); the umask is overridden. Default 0o666 minus umask. */
  mode?: number;
}

/** Write `data` to `path` through a temp file in the same folder, fsync, then rename over `path`. */
export async function writeFileAtomic(
  path: string,
  data: string | Uint8Array,
  options: WriteFileAtomicOptions = {},
): Promise<void> {
  // Same folder, so the rename never crosses a file system; dot prefix keeps it out of casual listings.
  const temp = join(dirname(path), `.${basename(path)}.${randomBytes(6).toString('hex')}.tmp`);
  let handle: FileHandle | undefined;
  try {
    // 'wx': never follow or reuse something already sitting at the temp name.
    handle = await open(temp, 'wx', options.mode ?? 0o666);
    if (options.mode !== undefined && process.platform !== 'win32') {
      // open()'s mode is masked by the umask; fchmod sets the exact bits asked for.
      await handle.chmod(options.mode);
    }
    await handle.writeFile(data);
    await handle.sync();
    await handle.close();
    handle = undefined;
    await rename(temp, path);
  } catch (error) {
    await handle?.close().catch(() => {});
    await unlink(temp).catch(() => {});
    throw error;
  }
  await syncDirectory(dirname(path));
}

/** Make the rename itself durable; not every platform can fsync a folder, so failures are ignored. */
async function syncDirectory(dir: string): Promise<void> {
  let handle: FileHandle | undefined;
  try {
    handle = await open(dir, 'r');
    await handle.sync();
  } catch {
    // Best effort: Windows and some file systems refuse to open or sync a directory.
  } finally {
    await handle?.close().catch(() => {});
  }
}
