import assert from 'node:assert/strict';
import { mkdir, readdir, readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { writeFileAtomic } from '../../src/util/atomic-write.js';
import { tempDir } from './helpers.js';

test('writeFileAtomic replaces the content and leaves no temp file', async () => {
  const dir = await tempDir();
  const path = join(dir, 'file.txt');
  await writeFile(path, 'old');
  await writeFileAtomic(path, 'new content');
  assert.equal(await readFile(path, 'utf8'), 'new content');
  await writeFileAtomic(path, Buffer.from([1, 2, 3]));
  assert.deepEqual(await readFile(path), Buffer.from([1, 2, 3]));
  assert.deepEqual(await readdir(dir), ['file.txt']);
});

test('writeFileAtomic sets the exact mode despite the umask', {
  skip: process.platform === 'win32',
}, async () => {
  const dir = await tempDir();
  const path = join(dir, 'f');
  const previous = process.umask(0o077);
  try {
    await writeFileAtomic(path, 'x', { mode: 0o644 });
  } finally {
    process.umask(previous);
  }
  assert.equal((await stat(path)).mode & 0o777, 0o644);
  await writeFileAtomic(path, 'y', { mode: 0o600 });
  assert.equal((await stat(path)).mode & 0o777, 0o600);
});

test('writeFileAtomic cleans up its temp file when the rename fails', async () => {
  const dir = await tempDir();
  const target = join(dir, 'a-folder');
  await mkdir(join(target, 'child'), { recursive: true });
  // Renaming a file over a non-empty folder fails after the temp file was written.
  await assert.rejects(writeFileAtomic(target, 'data'));
  assert.deepEqual(await readdir(dir), ['a-folder']);
});
