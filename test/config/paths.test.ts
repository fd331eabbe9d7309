import assert from 'node:assert/strict';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { configDir, xdgConfigHome } from '../../src/config/paths.js';

test('XDG_CONFIG_HOME counts only when absolute: empty or relative values fall back to ~/.config', () => {
  assert.equal(xdgConfigHome('/srv/conf'), '/srv/conf');
  assert.equal(xdgConfigHome(undefined), join(homedir(), '.config'));
  assert.equal(xdgConfigHome(''), join(homedir(), '.config'));
  assert.equal(
    xdgConfigHome('conf'),
    join(homedir(), '.config'),
    'a relative path would land in the working folder',
  );
});

test('configDir: MTT_CONFIG_DIR first, then the XDG folder', (t) => {
  const saved = { MTT_CONFIG_DIR: process.env.MTT_CONFIG_DIR, XDG_CONFIG_HOME: process.env.XDG_CONFIG_HOME };
  t.after(() => {
    for (const [k, v] of Object.entries(saved)) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
  });
  process.env.MTT_CONFIG_DIR = '/tmp/mtt-here';
  assert.equal(configDir(), '/tmp/mtt-here');
  delete process.env.MTT_CONFIG_DIR;
  process.env.XDG_CONFIG_HOME = '';
  assert.equal(configDir(), join(homedir(), '.config', 'mtt'));
  process.env.XDG_CONFIG_HOME = '/srv/conf';
  assert.equal(configDir(), '/srv/conf/mtt');
});
