export interface RateSpec {
  /** Tokens added per second. */
  perSecond: number;
  /** Bucket size: how many events may come at once. */
  burst: number;
}

/** A token bucket; refills lazily on each call, so an idle connection costs no timer. */
export class TokenBucket {
  private tokens: number;
  private refilledAt: number;

  constructor(
    private readonly spec: RateSpec,
    private readonly now: () => number = Date.now,
  ) {
    this.tokens = spec.burst;
    this.refilledAt = now();
  }

  /** Takes one token; false when the bucket is empty. */
  take(): boolean {
    const now = this.now();
    const elapsed = now - this.refilledAt;
    if (elapsed > 0) {
      this.tokens = Math.min(this.spec.burst, this.tokens + (elapsed * this.spec.perSecond) / 1000);
      this.refilledAt = now;
    }
    if (this.tokens < 1) return false;
    this.tokens -= 1;
    return true;
  }
}
