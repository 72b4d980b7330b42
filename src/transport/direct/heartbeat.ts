export interface HeartbeatCallbacks<T> {
  /** A member's ping is due (every interval, unless it still owes a pong). */
  ping(member: T, now: number): void;
  /** Whether the member still owes the pong of a ping sent at least `timeoutMs` ago. */
  overdue(member: T, now: number): boolean;
  /** The member owes a pong past the timeout (engine.io's "ping timeout"). */
  expire(member: T, now: number): void;
}

/**
 * engine.io's heartbeat for many connections from one timer: Socket.IO keeps two timers per
 * connection, here a member costs one Set entry. Time is cut into `ticks` equal slices of the ping
 * interval; a member sits in the slice it joined in, so each tick pings one slice and checks the
 * slice pinged `timeoutMs` earlier for missing pongs (rounded up to the next tick).
 */
export class Heartbeat<T> {
  private readonly slices: Set<T>[];
  private readonly sliceOf = new Map<T, Set<T>>();
  private readonly timeoutSlices: number;
  private current = 0;
  private readonly timer: NodeJS.Timeout;

  constructor(
    intervalMs: number,
    timeoutMs: number,
    private readonly callbacks: HeartbeatCallbacks<T>,
    maxTickMs = 1000,
  ) {
    // Whole slices of the interval, so pings come exactly every interval (the client gives up
    // after interval + timeout without one).
    const count = Math.max(1, Math.ceil(intervalMs / maxTickMs));
    const tickMs = intervalMs / count;
    this.slices = Array.from({ length: count }, () => new Set<T>());
    this.timeoutSlices = Math.ceil(timeoutMs / tickMs);
    this.timer = setInterval(() => this.tick(), tickMs).unref();
  }

  add(member: T): void {
    // Into the slice just pinged: its first ping is a whole interval away.
    const slice = this.slices[(this.current + this.slices.length - 1) % this.slices.length]!;
    slice.add(member);
    this.sliceOf.set(member, slice);
  }

  remove(member: T): void {
    this.sliceOf.get(member)?.delete(member);
    this.sliceOf.delete(member);
  }

  *all(): Generator<T> {
    for (const slice of this.slices) yield* [...slice];
  }

  stop(): void {
    clearInterval(this.timer);
  }

  private tick(): void {
    const count = this.slices.length;
    const now = Date.now();
    // A timeout shorter than the interval: the slice pinged that long ago owes pongs by now.
    if (this.timeoutSlices < count) {
      const pinged = this.slices[(this.current - this.timeoutSlices + count * (this.timeoutSlices + 1)) % count]!;
      for (const member of pinged) if (this.callbacks.overdue(member, now)) this.callbacks.expire(member, now);
    }
    const due = this.slices[this.current]!;
    this.current = (this.current + 1) % count;
    // A Set iterates safely while members leave.
    for (const member of due) {
      if (this.callbacks.overdue(member, now)) this.callbacks.expire(member, now);
      else this.callbacks.ping(member, now);
    }
  }
}
