// One timer for thousands of simulated agents: a hashed timer wheel. Tasks
// land in the slot of the tick they are due at (a task due more than one turn
// ahead waits for its turn); a single interval advances the wheel while
// anything is pending and stops when nothing is, so an idle swarm has no
// timer running at all.

interface Task {
  tick: number;
  fn: () => void;
}

export class TimerWheel {
  private readonly slots: Task[][];
  /** the last tick processed */
  private cursor: number;
  private pending = 0;
  private timer: NodeJS.Timeout | null = null;

  constructor(readonly tickMs = 10, private readonly size = 1024, private readonly now: () => number = Date.now) {
    this.slots = Array.from({ length: size }, () => []);
    this.cursor = Math.floor(now() / tickMs);
  }

  /** Runs `fn` once, `delayMs` from now (to the wheel's tick, never sooner than the next tick). */
  schedule(delayMs: number, fn: () => void): void {
    const tick = Math.max(this.cursor + 1, Math.ceil((this.now() + Math.max(0, delayMs)) / this.tickMs));
    this.slots[tick % this.size]!.push({ tick, fn });
    this.pending++;
    if (!this.timer) this.timer = setInterval(() => this.advance(), this.tickMs);
  }

  /** tasks waiting */
  get pendingTasks(): number {
    return this.pending;
  }

  /** Runs every task due by now (catching up on ticks an event-loop stall skipped). */
  advance(): void {
    const nowTick = Math.floor(this.now() / this.tickMs);
    const steps = Math.min(nowTick - this.cursor, this.size);
    const due: Task[] = [];
    for (let s = 1; s <= steps; s++) {
      const slot = this.slots[(this.cursor + s) % this.size]!;
      if (slot.length === 0) continue;
      const later: Task[] = [];
      for (const t of slot) (t.tick <= nowTick ? due : later).push(t);
      this.slots[(this.cursor + s) % this.size] = later;
    }
    if (nowTick > this.cursor) this.cursor = nowTick;
    this.pending -= due.length;
    due.sort((a, b) => a.tick - b.tick);
    for (const t of due) {
      try {
        t.fn();
      } catch (err) {
        console.error('swarm: a timer task failed', err);
      }
    }
    if (this.pending === 0 && this.timer) {
      clearInterval(this.timer);
      this.timer = null;
    }
  }

  close(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    for (let i = 0; i < this.size; i++) this.slots[i] = [];
    this.pending = 0;
  }
}
