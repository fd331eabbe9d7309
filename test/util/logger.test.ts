/** The logger's two formats: escaped, dated pretty lines and JSON lines that stay valid JSON. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createLogger } from '../../src/util/logger.js';

function capture(format: 'json' | 'pretty') {
  const lines: string[] = [];
  return { lines, log: createLogger({ format, level: 'debug', write: (l) => lines.push(l) }) };
}

test('pretty lines carry the local date and time and escape every control character', () => {
  const { lines, log } = capture('pretty');
  log.warn('peer said \x1b]0;owned\x07', { name: 'tun\x9bnel', note: 'two words', n: 3, text: 'a\u2028b' });
  const [line] = lines;
  assert.match(line!, /^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3} WARN {2}/);
  const d = new Date();
  assert.ok(line!.startsWith(`${d.getFullYear()}-${String(d.getMonth() + 1).padStart(2, '0')}-`));
  assert.doesNotMatch(line!, /[\u0000-\u001f\u007f-\u009f\u2028]/);
  assert.match(
    line!,
    /peer said \\x1b\]0;owned\\x07 {2}name=tun\\x9bnel note="two words" n=3 text=a\\u2028b$/,
  );
});

test('JSON lines escape DEL, C1 and bidi controls and parse back to the same text; secrets are masked', () => {
  const { lines, log } = capture('json');
  log.info('m\x7f\x85', { comment: 'x\u202ey', token: 'hunter2', big: 2n ** 70n });
  const [line] = lines;
  assert.doesNotMatch(line!, /[\u0000-\u001f\u007f-\u009f\u202e]/);
  const parsed = JSON.parse(line!) as Record<string, unknown>;
  assert.equal(parsed.msg, 'm\x7f\x85');
  assert.equal(parsed.comment, 'x\u202ey');
  assert.equal(parsed.token, 'MASKED');
  assert.equal(parsed.big, '1180591620717411303424');
});
