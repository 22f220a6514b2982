import { test } from 'node:test';
import assert from 'node:assert/strict';
import { neutraliseControls } from './text.js';

test('escape sequences lose their ESC and show as text', () => {
  // clear screen, a colour, a window title (OSC ... BEL), a clipboard write (OSC 52)
  const hostile = 'ok\x1b[2J\x1b[31mred\x1b]0;owned\x07\x1b]52;c;ZWNobyBoaQ==\x07';
  const out = neutraliseControls(hostile);
  assert.equal(out, 'ok^[[2J^[[31mred^[]0;owned^G^[]52;c;ZWNobyBoaQ==^G');
  assert.doesNotMatch(out, /[\x00-\x08\x0b-\x1f\x7f-\x9f]/);
});

test('C1 controls (CSI as U+009B) and DEL are made visible', () => {
  assert.equal(neutraliseControls('a\u009b2Jb\u0085c\x7f'), 'a\\x9b2Jb\\x85c^?');
});

test('newlines, tabs, CRLF line ends and ordinary text are untouched', () => {
  const s = 'line 1\tcol\r\nline 2 é ☃ 中文\n';
  assert.equal(neutraliseControls(s), s);
});

test('a lone carriage return (which would overwrite the line) shows as ^M; so do NUL and backspace', () => {
  assert.equal(neutraliseControls('secret\rpublic\n'), 'secret^Mpublic\n');
  assert.equal(neutraliseControls('a\x00b\x08c'), 'a^@b^Hc');
});
