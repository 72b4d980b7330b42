/** One publish waiting on Redis. */
export interface Ticket {
  readonly since: number;
  done: boolean;
}

/**
 * Decides whether a process takes one more publish while others wait on Redis. Under overload,
 * queueing more only made publishes outlive their timeout and answer `unavailable` after all
 * while Redis still stored them (the bench's saturate: 144k such acks, 28k of them delivered
 * anyway, and throughput collapsing to a quarter). So a new message is refused at once while the
 * oldest publish in flight has waited longer than `maxWaitMs` (Redis, or this process, is past
 * what it can take: the sender hears `unavailable` now, not after the timeout), or while
 * `maxInFlight` wait. The wait covers a slow Redis, where a count stands for seconds of backlog;
 * the count covers a fast one under a flood, where the backlog grows faster than the oldest ages.
 */
export class PublishAdmission {
  private readonly waiting: Ticket[] = [];
  private head = 0;

  constructor(
    private readonly maxWaitMs: number,
    private readonly maxInFlight: number,
  ) {}

  /** A ticket for a new publish, to hand back to done(); undefined when it must be refused. */
  admit(now = Date.now()): Ticket | undefined {
    const inFlight = this.waiting.length - this.head;
    if (inFlight >= this.maxInFlight) return undefined;
    if (inFlight > 0 && now - this.waiting[this.head]!.since > this.maxWaitMs) return undefined;
    const ticket = { since: now, done: false };
    this.waiting.push(ticket);
    return ticket;
  }

  done(ticket: Ticket): void {
    ticket.done = true;
    // Replies come in order on one connection, so the head is nearly always the one done.
    while (this.head < this.waiting.length && this.waiting[this.head]!.done) this.head++;
    if (this.head === this.waiting.length) {
      this.waiting.length = 0;
      this.head = 0;
    } else if (this.head > 1024 && this.head * 2 > this.waiting.length) {
      this.waiting.splice(0, this.head);
      this.head = 0;
    }
  }
}
