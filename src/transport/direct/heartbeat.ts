/**
 * Calls `beat` once per `intervalMs` for each member, from one timer for all of them: Socket.IO
 * keeps two timers per connection; here a member costs one Set entry. Members are spread over
 * one-second buckets by when they joined, so a second's work is a bucket, not every connection.
 */
export class Heartbeat<T> {
  private readonly buckets: Set<T>[];
  private readonly bucketOf = new Map<T, Set<T>>();
  private current = 0;
  private readonly timer: NodeJS.Timeout;

  constructor(
    intervalMs: number,
    private readonly beat: (member: T, now: number) => void,
    tickMs = Math.min(1000, intervalMs),
  ) {
    this.buckets = Array.from({ length: Math.max(1, Math.round(intervalMs / tickMs)) }, () => new Set<T>());
    this.timer = setInterval(() => this.tick(), tickMs).unref();
  }

  add(member: T): void {
    // Into the bucket just done: its next turn is a whole interval away.
    const bucket = this.buckets[(this.current + this.buckets.length - 1) % this.buckets.length]!;
    bucket.add(member);
    this.bucketOf.set(member, bucket);
  }

  remove(member: T): void {
    this.bucketOf.get(member)?.delete(member);
    this.bucketOf.delete(member);
  }

  *all(): Generator<T> {
    for (const bucket of this.buckets) yield* [...bucket];
  }

  stop(): void {
    clearInterval(this.timer);
  }

  private tick(): void {
    const bucket = this.buckets[this.current]!;
    this.current = (this.current + 1) % this.buckets.length;
    const now = Date.now();
    for (const member of bucket) this.beat(member, now); // a Set iterates safely while members leave
  }
}
