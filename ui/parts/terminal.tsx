// A shell in a replica, in the page: xterm.js over the exec WebSocket
// (GET /v1/apps/NAME/exec, src/contract/exec.ts), the same session
// `outpost exec -it APP -- /bin/sh` opens, through the agent's own connection.
// The token rides in the subprotocol `outpost.bearer.<base64url>` (a browser's
// WebSocket cannot send a header), never in the URL. Keys go to the command
// as typed, within the stdin window; the terminal's size follows its box.
// Closing the tab or leaving the page closes the socket, which kills the
// command. This module (and xterm with it) is loaded only when the terminal
// is opened: import it lazily.
import '@xterm/xterm/css/xterm.css';
import { Terminal as XTerm } from '@xterm/xterm';
import { FitAddon } from '@xterm/addon-fit';
import { useEffect, useRef, useState } from 'preact/hooks';
import { EXEC_BEARER_PREFIX, EXEC_CHANNEL, EXEC_SUBPROTOCOL, EXEC_WINDOW, type ExecClientMessage, type ExecServerMessage } from '../../src/contract/exec.js';
import { api, ApiError, enc, token } from '../api.js';
import { ErrorBox } from './common.js';

type Phase = 'connecting' | 'running' | 'exited' | 'failed' | 'closed';

interface SessionEvents {
  started(m: Extract<ExecServerMessage, { type: 'started' }>): void;
  output(bytes: Uint8Array): void;
  /** the end: the exit status, or why not (an error the server sent, or the close code) */
  ended(end: { code: number } | { error: ApiError } | { closed: number; opened: boolean }): void;
}

const base64url = (s: string): string => btoa(String.fromCharCode(...new TextEncoder().encode(s))).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');

/** One exec session over a WebSocket: stdin within the window the server grants, output as it comes. */
class ExecSocket {
  private readonly ws: WebSocket;
  private inflight = 0;
  private pending: Uint8Array[] = [];
  private over = false;

  constructor(path: string, start: ExecClientMessage, private readonly on: SessionEvents) {
    const url = `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}${path}`;
    this.ws = new WebSocket(url, [EXEC_SUBPROTOCOL, `${EXEC_BEARER_PREFIX}${base64url(token.get() ?? '')}`]);
    this.ws.binaryType = 'arraybuffer';
    let opened = false;
    this.ws.onopen = () => {
      opened = true;
      this.send(start);
    };
    this.ws.onmessage = (m: MessageEvent<ArrayBuffer | string>) => {
      if (typeof m.data !== 'string') {
        const b = new Uint8Array(m.data);
        if (b[0] !== EXEC_CHANNEL.stdin) this.on.output(b.subarray(1));
        return;
      }
      const msg = JSON.parse(m.data) as ExecServerMessage;
      if (msg.type === 'started') this.on.started(msg);
      else if (msg.type === 'ack') {
        this.inflight = Math.max(0, this.inflight - msg.bytes);
        this.pump();
      } else if (msg.type === 'exit') this.end({ code: msg.code });
      else this.end({ error: new ApiError(0, msg.code, msg.message) });
    };
    this.ws.onclose = (e) => this.end({ closed: e.code, opened });
  }

  input(bytes: Uint8Array): void {
    if (this.over) return;
    this.pending.push(bytes);
    this.pump();
  }

  resize(cols: number, rows: number): void {
    this.send({ type: 'resize', cols, rows });
  }

  /** leaves: the server kills the command */
  close(): void {
    this.over = true;
    this.ws.close(1000, 'closed in the page');
  }

  private end(e: Parameters<SessionEvents['ended']>[0]): void {
    if (this.over) return;
    this.over = true;
    this.on.ended(e);
  }

  private pump(): void {
    while (this.pending.length && this.inflight < EXEC_WINDOW && this.ws.readyState === WebSocket.OPEN) {
      const head = this.pending[0]!;
      const n = Math.min(head.length, EXEC_WINDOW - this.inflight);
      if (n === head.length) this.pending.shift();
      else this.pending[0] = head.subarray(n);
      const frame = new Uint8Array(n + 1);
      frame[0] = EXEC_CHANNEL.stdin;
      frame.set(head.subarray(0, n), 1);
      this.inflight += n;
      this.ws.send(frame);
    }
  }

  private send(m: ExecClientMessage): void {
    if (this.ws.readyState === WebSocket.OPEN) this.ws.send(JSON.stringify(m));
  }
}

/** Why an upgrade was refused: the same URL as a plain GET answers the refusal (or E_INVALID when there is none). */
async function refusal(path: string, closed: number): Promise<ApiError> {
  try {
    await api(path);
  } catch (e) {
    if (e instanceof ApiError && e.code !== 'E_INVALID') return e;
  }
  return new ApiError(0, 'E_NO_SERVER', `the connection to the control plane was refused or lost (WebSocket close ${closed})`);
}

/** a line of ours between the command's output, dimmed; the cursor hidden until a command runs again */
const DIM = (s: string): string => `\r\n\x1b[2m${s}\x1b[0m\r\n\x1b[?25l`;

export function Terminal({ app, replica, container }: { app: string; replica?: string; container?: string }) {
  const host = useRef<HTMLDivElement>(null);
  const term = useRef<{ t: XTerm; fit: FitAddon } | null>(null);
  const [phase, setPhase] = useState<Phase>('connecting');
  const [where, setWhere] = useState('');
  const [exitCode, setExitCode] = useState<number | null>(null);
  const [error, setError] = useState<ApiError | null>(null);
  const [session, setSession] = useState(0);
  const [command, setCommand] = useState('/bin/sh');

  // the terminal, once; its size follows its box
  useEffect(() => {
    const t = new XTerm({
      cursorBlink: true, scrollback: 5000, fontSize: 13,
      fontFamily: 'ui-monospace, "SFMono-Regular", Menlo, Consolas, monospace',
      theme: { background: '#0f131b', foreground: '#d6deeb' },
    });
    const fit = new FitAddon();
    t.loadAddon(fit);
    t.open(host.current!);
    fit.fit();
    const ro = new ResizeObserver(() => fit.fit());
    ro.observe(host.current!);
    term.current = { t, fit };
    return () => {
      ro.disconnect();
      t.dispose();
      term.current = null;
    };
  }, []);

  // a session: at first, and at each Reconnect (which takes the command as it is then)
  useEffect(() => {
    const { t, fit } = term.current!;
    fit.fit();
    const q = new URLSearchParams({ ...(replica ? { replica } : {}), ...(container ? { container } : {}) });
    const path = `/v1/apps/${enc(app)}/exec${q.toString() ? `?${q}` : ''}`;
    const cmd = command.trim().split(/\s+/).filter(Boolean);
    setPhase('connecting');
    setError(null);
    setExitCode(null);
    setWhere('');
    let live = true;
    const s = new ExecSocket(path, { type: 'start', cmd: cmd.length ? cmd : ['/bin/sh'], tty: true, stdin: true, cols: t.cols, rows: t.rows }, {
      started: (m) => {
        setPhase('running');
        t.write('\x1b[?25h');
        setWhere(`${m.replica} on ${m.node}${m.container ? ` (${m.container})` : ''}`);
        t.focus();
      },
      output: (b) => t.write(b),
      ended: (e) => {
        if (!live) return;
        if ('code' in e) {
          setPhase('exited');
          setExitCode(e.code);
          t.write(DIM(`[exited with code ${e.code}]`));
        } else if ('error' in e) {
          setPhase('failed');
          setError(e.error);
          t.write(DIM(`[${e.error.code}: ${e.error.message}]`));
        } else if (!e.opened) {
          // refused before the upgrade: the answer is not the page's to read, so ask again plainly
          setPhase('failed');
          void refusal(path, e.closed).then((x) => {
            if (!live) return;
            setError(x);
            t.write(DIM(`[refused: ${x.code}: ${x.message}]`));
          });
        } else {
          setPhase('closed');
          t.write(DIM(`[the connection closed (WebSocket close ${e.closed}); the command was killed]`));
        }
      },
    });
    const keys = t.onData((d) => s.input(new TextEncoder().encode(d)));
    // bytes that are not text (some mouse reports): one byte per character
    const bin = t.onBinary((d) => s.input(Uint8Array.from(d, (c) => c.charCodeAt(0) & 0xff)));
    const sized = t.onResize(({ cols, rows }) => s.resize(cols, rows));
    return () => {
      live = false;
      keys.dispose();
      bin.dispose();
      sized.dispose();
      s.close();
    };
  }, [app, replica, container, session]);

  const reconnect = (): void => {
    term.current?.t.write(DIM('[a new session]'));
    setSession((n) => n + 1);
  };
  const status = {
    connecting: 'connecting ...',
    running: `running ${where}`,
    exited: `exited with code ${exitCode}`,
    failed: 'failed',
    closed: 'the connection closed',
  }[phase];
  return (
    <div class="terminal" data-testid="terminal" data-state={phase} data-exit-code={exitCode ?? undefined}>
      <div class="terminal-bar">
        <span class={`badge ${phase === 'running' ? 'good' : phase === 'exited' && exitCode === 0 ? '' : phase === 'connecting' ? 'warn' : 'bad'}`} data-testid="terminal-status">{status}</span>
        <span class="spacer" />
        <label class="row">command
          <input value={command} onInput={(e) => setCommand((e.target as HTMLInputElement).value)} onKeyDown={(e) => e.key === 'Enter' && reconnect()}
            aria-label="command to run" spellcheck={false} size={18} data-testid="terminal-command" />
        </label>
        <button onClick={reconnect} data-testid="terminal-reconnect" title="a new session with the command">{phase === 'running' || phase === 'connecting' ? 'Restart' : 'Reconnect'}</button>
      </div>
      <div class="terminal-screen" ref={host} />
      <ErrorBox error={error} />
    </div>
  );
}
