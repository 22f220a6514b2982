// What an agent sends of its replicas' logs (`outpost logs`, the dashboard's
// log view). A followed log may be written faster than the agent's connection
// may carry it: the gateway cuts an agent off past 500 messages or 1 MiB a
// second, and the connection carries the node's status reports too. So each
// stream's output is gathered for GATHER_MS into one message, and all streams
// together keep within a budget of characters a second: what a log writes
// beyond it is dropped at a line's end, and a line in its place says how
// much. Logs are for reading; a replica that writes megabytes a second is
// read on its node.
export const LOG_GATHER_MS = 25;
/** the most every stream together sends, per second (JSON may double a few characters: well within 1 MiB/s) */
export const LOG_CHARS_PER_S = 256 * 1024;
/** ... and at once, after a quiet while (a tail of long lines); under the protocol's 1 MiB per message */
export const LOG_BURST_CHARS = 512 * 1024;
/** how long the start of a line waits for its end (a prompt, a progress bar) before it is sent as it is */
export const LOG_PARTIAL_MS = 300;

export interface LogOut {
  data(s: string): void;
  /** sends what waits now (the stream ended) */
  flush(): void;
  /** drops what waits (the stream was cancelled) */
  cancel(): void;
}

export class LogPacer {
  private tokens = LOG_BURST_CHARS;
  private last: number;

  constructor(private readonly now: () => number = Date.now) {
    this.last = now();
  }

  /** One stream's output, sent through `send` a gathered message at a time. */
  stream(send: (data: string) => void): LogOut {
    let held = '';
    let timer: NodeJS.Timeout | null = null;
    /** the timer waits for a line's end, not for more output to gather */
    let waitsForLine = false;
    let dropped = 0;
    /** the last text sent ended inside a line (one that waited LOG_PARTIAL_MS for its end) */
    let open = false;
    /** when the line held now began to wait for its end: a line written a piece at a time (a progress bar) waits LOG_PARTIAL_MS in all, not after each piece */
    let partialSince: number | null = null;
    const stop = (): void => {
      if (timer) clearTimeout(timer);
      timer = null;
    };
    const arm = (ms: number, forLine: boolean): void => {
      waitsForLine = forLine;
      timer = setTimeout(() => { timer = null; flush(forLine); }, ms);
    };
    const flush = (all: boolean): void => {
      stop();
      let text = held;
      held = '';
      // A line still being written waits for its end: a pipe splits writes anywhere, and a
      // drop between the halves of a line sent in two would make a line the replica never wrote.
      const end = text.lastIndexOf('\n') + 1;
      // the line that waited has ended: the one after it waits afresh
      if (end > 0) partialSince = null;
      if (!all && end < text.length && text.length - end < LOG_BURST_CHARS) {
        const t = this.now();
        partialSince ??= t;
        if (t - partialSince < LOG_PARTIAL_MS) {
          held = text.slice(end);
          text = text.slice(0, end);
          arm(LOG_PARTIAL_MS - (t - partialSince), true);
        }
      }
      if (!held) partialSince = null;
      if (!text) return;
      const room = Math.floor(this.take(text.length));
      if (room < text.length) {
        // whole lines only: a line cut in two would read as two lines that never were
        const cut = room > 0 ? text.lastIndexOf('\n', room - 1) + 1 : 0;
        dropped += text.length - cut;
        text = text.slice(0, cut);
      }
      this.tokens -= text.length;
      if (dropped && text.length < room) {
        text += `${open && !text ? '\n' : ''}(outpost: ${dropped} characters of this log were dropped: it was written faster than the ${LOG_CHARS_PER_S / 1024} KiB a second logs may take of the node's connection)\n`;
        dropped = 0;
      }
      if (text) {
        open = !text.endsWith('\n');
        send(text);
      }
    };
    return {
      data: (s) => {
        held += s;
        // more came: it is gathered as usual, the line's end likely with it
        if (timer && waitsForLine) stop();
        if (!timer) arm(LOG_GATHER_MS, false);
      },
      flush: () => flush(true),
      cancel: () => {
        stop();
        held = '';
      },
    };
  }

  /** The budget now (refilled at LOG_CHARS_PER_S), at most what is asked. */
  private take(want: number): number {
    const t = this.now();
    this.tokens = Math.min(LOG_BURST_CHARS, this.tokens + ((t - this.last) / 1000) * LOG_CHARS_PER_S);
    this.last = t;
    return Math.max(0, Math.min(want, this.tokens));
  }
}
