/**
 * Text for a terminal: anything a peer or a file supplied (a key comment, a tunnel name, an error
 * message) may hold control characters that move the cursor, rewrite the screen, set the window
 * title or ring the bell. Every human-facing output (pretty logs, CLI errors and listings, the
 * dashboard's strings from peers) passes such text through escapeControls() first.
 *
 * Escaped: C0 (U+0000–U+001F), DEL (U+007F), C1 (U+0080–U+009F; U+009B is a one-character CSI in
 * terminals that honour 8-bit controls), and the Unicode bidirectional controls (U+061C, U+200E,
 * U+200F, U+202A–U+202E, U+2066–U+2069), which reorder what a line shows, plus the line and paragraph
 * separators U+2028/U+2029. They print as `\n`, `\r`, `\t`, `\xNN` or `\uNNNN`. Backslashes are kept as
 * they are: the output is for reading, not for parsing back.
 *
 * @example
 * escapeControls('evil\x1b]0;owned\x07'); // 'evil\\x1b]0;owned\\x07'
 */

// One class for everything escaped; the 'g' copy is for replace, the plain one for test().
const CONTROLS = /[\u0000-\u001f\u007f-\u009f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069\u2028\u2029]/;
const CONTROLS_G = new RegExp(CONTROLS.source, 'g');
const CONTROLS_BUT_NEWLINE_G =
  /[\u0000-\u0009\u000b-\u001f\u007f-\u009f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069\u2028\u2029]/g;
const NAMED: Record<string, string> = { '\n': '\\n', '\r': '\\r', '\t': '\\t' };

function escapeOne(ch: string): string {
  const named = NAMED[ch];
  if (named !== undefined) return named;
  const code = ch.charCodeAt(0);
  return code <= 0xff
    ? `\\x${code.toString(16).padStart(2, '0')}`
    : `\\u${code.toString(16).padStart(4, '0')}`;
}

/** Options of escapeControls. */
export interface EscapeOptions {
  /**
   * Keep `\n` as a real line break: for messages whose line structure is the program's own (a config
   * error listing each wrong field). Peer-supplied text inside them must already be escaped.
   */
  keepNewlines?: boolean;
}

/** `text` with every control character (see the file header) replaced by a visible escape. */
export function escapeControls(text: string, options: EscapeOptions = {}): string {
  return text.replace(options.keepNewlines ? CONTROLS_BUT_NEWLINE_G : CONTROLS_G, escapeOne);
}

/** True when `text` holds a character that escapeControls() would escape. */
export function hasControls(text: string): boolean {
  return CONTROLS.test(text);
}

/**
 * A serialized JSON text with DEL, C1, the bidi controls and U+2028/U+2029 written as `\uNNNN`:
 * JSON.stringify already escapes C0, but leaves those raw, and a JSON log read with `cat` or `tail -f`
 * reaches a terminal too. The result is still valid JSON for the same value (these characters can
 * only occur inside strings).
 */
export function escapeJsonControls(json: string): string {
  return json.replace(
    /[\u007f-\u009f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069\u2028\u2029]/g,
    (ch) => `\\u${ch.charCodeAt(0).toString(16).padStart(4, '0')}`,
  );
}
