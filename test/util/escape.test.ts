/** The shared terminal-escaping helper: C0, DEL, C1 and bidi controls never reach a terminal raw. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { escapeControls, escapeJsonControls, hasControls } from '../../src/util/escape.js';

test('every C0, DEL and C1 character is escaped, printable text is kept', () => {
  for (let c = 0; c < 0x100; c++) {
    const ch = String.fromCharCode(c);
    const out = escapeControls(`a${ch}b`);
    const control = c < 0x20 || (c >= 0x7f && c <= 0x9f);
    if (control) {
      assert.doesNotMatch(out, /[\u0000-\u001f\u007f-\u009f]/, `U+${c.toString(16)}`);
      assert.ok(hasControls(ch));
    } else {
      assert.equal(out, `a${ch}b`);
      assert.ok(!hasControls(ch));
    }
  }
  assert.equal(escapeControls('evil\x1b]0;owned\x07\x9b2J'), 'evil\\x1b]0;owned\\x07\\x9b2J');
  assert.equal(escapeControls('a\nb\r\tc\x7f'), 'a\\nb\\r\\tc\\x7f');
  assert.equal(escapeControls('naïve ☃ 日本 C:\\x'), 'naïve ☃ 日本 C:\\x');
});

test('bidi controls and line separators are escaped too (they reorder or split what a line shows)', () => {
  assert.equal(escapeControls('key \u202egpj.exe'), 'key \\u202egpj.exe');
  assert.equal(
    escapeControls('\u2066\u2069\u200e\u200f\u061c\u2028\u2029'),
    '\\u2066\\u2069\\u200e\\u200f\\u061c\\u2028\\u2029',
  );
});

test("keepNewlines keeps the program's own line structure and escapes everything else", () => {
  assert.equal(
    escapeControls('config is not valid:\n  - a: \x1b[2J', { keepNewlines: true }),
    'config is not valid:\n  - a: \\x1b[2J',
  );
  assert.equal(escapeControls('\r\n', { keepNewlines: true }), '\\r\n');
});

test('escapeJsonControls keeps valid JSON with the same value and no raw DEL, C1 or bidi', () => {
  const value = { msg: 'x\x7f\x85\x9b\u202e\u2028y', n: 1, nested: ['\x1b'] };
  const json = escapeJsonControls(JSON.stringify(value));
  assert.doesNotMatch(json, /[\u0000-\u001f\u007f-\u009f\u202e\u2028]/);
  assert.deepEqual(JSON.parse(json), value);
});
