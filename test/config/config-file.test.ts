/**
 * Reading a config file (src/config/config-file.ts), which the client's config, the server's and
 * the client's live ConfigSync share: a missing file, a folder and text that is not JSON are each
 * one ConfigError on --config that names the file and the fix.
 */
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { ConfigSync } from '../../src/client/config-sync.js';
import { loadClientConfig } from '../../src/config/client-config-file.js';
import { ConfigError } from '../../src/config/config-error.js';
import { loadServerConfig } from '../../src/config/server-config.js';

/** Asserts that `p` rejects with a ConfigError on --config whose message is exactly `message`. */
async function refuses(p: Promise<unknown>, message: string): Promise<void> {
  await assert.rejects(p, (e: unknown) => {
    assert.ok(e instanceof ConfigError, String(e));
    assert.equal(e.field, '--config');
    assert.equal(e.message, message);
    return true;
  });
}

test('a missing file, a folder or text that is not JSON names the file and the fix, for either kind', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'mtt-cfg-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const none = join(dir, 'none.json');
  await refuses(
    loadClientConfig(none),
    `config file ${none} does not exist; create it (see the README, "Config reference") or run mtt gui to set one up`,
  );
  await refuses(
    ConfigSync.open(none),
    `config file ${none} does not exist; create it (see the README, "Config reference") or run mtt gui to set one up`,
  );
  await refuses(
    loadServerConfig(none),
    `config file ${none} does not exist; create it (see the README, "mtt server") or leave out --config`,
  );

  const folder = join(dir, 'folder.json');
  await mkdir(folder);
  for (const load of [loadClientConfig, loadServerConfig]) {
    await refuses(load(folder), `config file ${folder} is a folder; pass the path of the JSON file`);
  }

  const broken = join(dir, 'broken.json');
  await writeFile(broken, '{ "server": ');
  for (const load of [loadClientConfig, loadServerConfig, (p: string) => ConfigSync.open(p)]) {
    await assert.rejects(
      load(broken),
      (e: unknown) =>
        e instanceof ConfigError &&
        e.field === '--config' &&
        e.message.startsWith(`${broken} is not valid JSON: `),
    );
  }
});
