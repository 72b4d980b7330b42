/** Error replies of a Redis that is up but serves no command now. */
const UNSERVED = /^(BUSY|LOADING|MASTERDOWN) /;

/**
 * Bounds many waits of one length with one timer. A Redis command used to get its own
 * setTimeout and Promise.race (and node-redis its own AbortSignal.timeout); in the dm benchmark
 * those timers, their promises and the garbage they left were a visible share of server CPU.
 * Deadlines of equal length expire in the order they were set, so a queue swept a few times per
 * timeout is enough; a wait may outlive its bound by up to a tenth of it.
 */
export class Deadlines {
  private readonly queue: Array<{ at: number; settled: boolean; reject: (err: Error) => void; what: string }> = [];
  private head = 0;
  private timer: NodeJS.Timeout | undefined;
  /**
   * A wait ran out, or Redis answered that it cannot serve now (BUSY: a long script; LOADING: its
   * data set still loading; MASTERDOWN), and no command has succeeded since: Redis stalled without
   * the connection dropping, which the connection's own state does not show.
   */
  stalled = false;

  constructor(private readonly timeoutMs: number) {}

  bound<T>(promise: Promise<T>, what: string): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const entry = { at: Date.now() + this.timeoutMs, settled: false, reject, what };
      this.queue.push(entry);
      if (!this.timer) {
        this.timer = setInterval(() => this.sweep(), Math.max(5, Math.floor(this.timeoutMs / 10)));
        this.timer.unref(); // must not keep the process alive
      }
      promise.then(
        (value) => {
          entry.settled = true;
          this.stalled = false;
          resolve(value);
        },
        (err: unknown) => {
          entry.settled = true;
          if (UNSERVED.test((err as Error | undefined)?.message ?? "")) this.stalled = true;
          reject(err);
        },
      );
    });
  }

  close(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }

  private sweep(): void {
    const now = Date.now();
    while (this.head < this.queue.length) {
      const entry = this.queue[this.head]!;
      if (!entry.settled && entry.at > now) break;
      this.head++;
      if (!entry.settled) {
        entry.settled = true;
        this.stalled = true;
        entry.reject(new Error(`redis ${entry.what} timed out after ${this.timeoutMs} ms`));
      }
    }
    if (this.head > 1024 && this.head * 2 > this.queue.length) {
      this.queue.splice(0, this.head); // compact now and then, so the array does not grow forever
      this.head = 0;
    }
    if (this.head === this.queue.length) {
      this.queue.length = 0;
      this.head = 0;
      this.close();
    }
  }
}
