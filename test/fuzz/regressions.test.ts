/**
 * What the fuzzing campaign found in the parsers, one test each, with the input it found. The
 * campaign's own oracle is the property; these keep the exact case.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ConfigError } from '../../src/config/config-error.js';
import { formatHostPort, splitHostPort } from '../../src/config/host-port.js';

test('splitHostPort refuses a bare host with brackets in it (config-values, seed 12 case 92658, seed 13 case 35372)', () => {
  for (const s of [
    '[0000]0000]0000]:6535',
    '[g]g]:9999',
    '[[200[2001]001]:1',
    '[db[db8]:80',
    'a]:1',
    'a[b:1',
  ]) {
    assert.throws(() => splitHostPort(s), ConfigError, s);
  }
  // What it accepts still survives formatting.
  for (const s of ['[::1]:9000', 'a.b:1', '127.0.0.1:80']) {
    const { host, port } = splitHostPort(s);
    assert.deepEqual(splitHostPort(formatHostPort(host, port)), { host, port });
  }
});
