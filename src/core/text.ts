// Text from replicas, made safe to print on an operator's terminal. A replica
// writes what it likes to its log; printed raw, an escape sequence could move
// the cursor, rewrite lines already shown, retitle the window, set the
// clipboard (OSC 52) or answer queries into the terminal's input. Every
// control character becomes a visible stand-in instead.

const CONTROL = /[\x00-\x08\x0b-\x1f\x7f-\x9f]/g;

/** The visible form of one control character: `^[` for ESC (caret notation for C0 and DEL), `\x9b` for a C1 character. */
function visible(c: string): string {
  const code = c.charCodeAt(0);
  if (code === 0x7f) return '^?';
  if (code < 0x20) return `^${String.fromCharCode(code + 0x40)}`;
  return `\\x${code.toString(16)}`;
}

/**
 * Replaces ESC and every other C0 or C1 control character (and DEL) with a
 * visible form. Newline and tab stay, and so does a carriage return that ends
 * a line (`\r\n`); a lone `\r` would let a line overwrite itself, so it shows
 * as `^M`.
 */
export function neutraliseControls(s: string): string {
  return s.replace(CONTROL, (c, i: number) => (c === '\r' && s.charCodeAt(i + 1) === 0x0a ? c : visible(c)));
}
