// Admission of agent connections: a token bucket over handshakes. When a
// whole fleet reconnects at once (a control-plane restart, a network that
// comes back) the ones over the rate are told at once when to come back
// (HTTP 503 with Retry-After), spread over the time the queue needs, instead
// of all timing out together and retrying together.
export interface AdmissionOptions {
  /** handshakes admitted per second */
  rate: number;
  /** handshakes admitted at once after a quiet spell */
  burst: number;
}

export const DEFAULT_ADMISSION: AdmissionOptions = { rate: 2000, burst: 500 };

export class Admission {
  private tokens: number;
  private last: number;
  /** handshakes turned away and told to come back, by the time they were told */
  private waiting = 0;
  private waitingSince = 0;
  admitted = 0;
  deferred = 0;

  constructor(readonly o: AdmissionOptions = DEFAULT_ADMISSION, private readonly now: () => number = Date.now) {
    this.tokens = o.burst;
    this.last = now();
  }

  /** 0: come in; otherwise ms to wait before trying again */
  take(): number {
    const t = this.now();
    this.tokens = Math.min(this.o.burst, this.tokens + ((t - this.last) / 1000) * this.o.rate);
    this.last = t;
    if (this.tokens >= 1) {
      this.tokens -= 1;
      this.admitted++;
      return 0;
    }
    this.deferred++;
    // those already told to wait come back first: the queue's length over the rate,
    // counting the deferrals of the last few seconds only (older ones came back or gave up)
    if (t - this.waitingSince > 5000) { this.waiting = 0; this.waitingSince = t; }
    this.waiting++;
    return Math.max(100, Math.ceil((this.waiting / this.o.rate) * 1000));
  }
}
