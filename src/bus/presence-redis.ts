import { randomBytes } from "node:crypto";
import type { Logger } from "pino";
import type { Member } from "../protocol.js";
import type { AddResult, PresenceChangeHandler, PresenceEntry, PresenceStore, RemoveResult } from "./presence.js";
import type { RedisConnection } from "./redis-connection.js";
import type { RedisKeys } from "./redis-keys.js";
import { SCRIPTS, withTimeout } from "./redis-scripts.js";

export interface RedisPresenceOptions {
  /**
   * This process's id in presence, new at every start (see presenceInstanceId): a process
   * restarted under the same NODE_ID must not heartbeat for its crashed predecessor, whose users
   * would then never be reaped.
   */
  instanceId: string;
  /** A process that stops heartbeating has its users removed within this time. */
  presenceTimeoutMs: number;
  logger: Logger;
}

type RemoveReply = null | [number, string, string];
type AddReply = [number, number, string[]];

/**
 * Presence commands sent at once while reaping or re-asserting: node-redis pipelines them into
 * one write. One at a time, a dead process's 10,000 entries took seconds (two round trips each).
 */
const BATCH = 200;

/**
 * Cluster-wide presence in Redis. Each process heartbeats into a sorted set; every process
 * reaps the entries of processes whose heartbeat expired (one process at a time, under a lease),
 * and reports the users that left that way. A process that finds it was claimed or removed from
 * the set meanwhile (it was late, not dead), or that reconnects, re-asserts its own entries.
 */
export class RedisPresence implements PresenceStore {
  private handler: PresenceChangeHandler = () => {};
  /** This process's entries, by room and connection: what to re-assert after a reconnect. */
  private readonly local = new Map<string, { room: string; entry: PresenceEntry }>();
  /** Entries whose removal failed (Redis down): retried, or they would stay as ghosts. */
  private readonly orphans = new Map<string, { room: string; entry: PresenceEntry }>();
  private readonly timer: NodeJS.Timeout;
  private closed = false;
  private beating = false;
  private started = false;
  /**
   * Heartbeat scores this process sent since the last one known to have landed (a heartbeat whose
   * wait timed out may still land): any other score found there is a survivor's claim.
   */
  private written: number[] = [];
  /** The reap running, if any (one at a time). */
  private reaping: Promise<void> | undefined;
  /** The re-assert running, if any; `reassertAgain` asks it to run once more when done. */
  private reasserting: Promise<void> | undefined;
  private reassertAgain = false;
  /** Entries a re-assert could not write back (their shard down): retried after each heartbeat. */
  private readdFailed = new Set<string>();
  /** A re-assert waiting for a survivor's claim on this process to run out (see beat). */
  private reassertTimer: NodeJS.Timeout | undefined;
  /** When this process's last heartbeat that went through was sent. */
  private lastBeat = 0;
  /** No reaping before this: after an outage the others need time to heartbeat again. */
  private reapFrom = 0;
  /** When the graces since the last reap began: together they never hold reaping off past two timeouts. */
  private holdingSince: number | undefined;

  constructor(
    private readonly redis: RedisConnection,
    private readonly keys: RedisKeys,
    private readonly options: RedisPresenceOptions,
  ) {
    // Heartbeat five times per timeout, and reap after each heartbeat that went through; an entry
    // expires half a timeout after the last heartbeat, so a dead process's users are gone within
    // about 0.7 of the timeout.
    const every = Math.max(100, Math.floor(options.presenceTimeoutMs / 5));
    this.timer = setInterval(() => void this.beat(), every);
    this.timer.unref(); // must not keep the process alive
    redis.onReconnect(() => void this.reassert());
  }

  onChange(handler: PresenceChangeHandler): void {
    this.handler = handler;
  }

  async start(): Promise<void> {
    const beat = Date.now();
    await this.heartbeat();
    this.lastBeat = beat;
    this.started = true;
  }

  async add(room: string, entry: PresenceEntry, capacity: number): Promise<AddResult> {
    const { instanceId } = this.options;
    // The process index is written first: if we die in between, the reaper finds nothing to undo.
    await this.bounded(this.redis.commands.hSet(this.keys.nodeEntries(instanceId), indexField(room, entry.connId), entry.user.id), "presence index");
    const [admitted, first, flat] = await this.bounded(
      SCRIPTS.presenceAdd.run<[number, number, string[]]>(this.redis, this.roomKeys(room), [
        entry.user.id,
        entry.user.name,
        this.keys.connKey(instanceId, entry.connId),
        capacity,
      ]),
      "presence add",
    );
    if (!admitted) {
      await this.redis.commands.hDel(this.keys.nodeEntries(instanceId), indexField(room, entry.connId)).catch(() => {});
      return { ok: false, reason: "room_full" };
    }
    this.local.set(indexField(room, entry.connId), { room, entry });
    this.orphans.delete(indexField(room, entry.connId)); // back in: an old failed removal must not undo it
    return { ok: true, firstOfUser: first === 1, members: pairs(flat) };
  }

  async remove(room: string, entry: PresenceEntry): Promise<RemoveResult> {
    const field = indexField(room, entry.connId);
    this.local.delete(field);
    try {
      const result = await this.removeNow(room, entry);
      this.orphans.delete(field);
      return result;
    } catch (err) {
      // Only what the retry needs: the entry may be a whole closed Session.
      this.orphans.set(field, { room, entry: { connId: entry.connId, user: entry.user } });
      throw err;
    }
  }

  private async removeNow(room: string, entry: PresenceEntry): Promise<RemoveResult> {
    const removal = SCRIPTS.presenceRemove.run<RemoveReply>(this.redis, this.roomKeys(room), [this.keys.connKey(this.options.instanceId, entry.connId)]);
    let reply: RemoveReply;
    try {
      reply = await this.bounded(removal, "presence remove");
    } catch (err) {
      // The wait gave up, but the removal may still run (Redis stalled, not gone): its leave is
      // reported when it answers, as the reaper's are, or nobody would ever hear of it (a retry
      // finds nothing left to remove).
      removal.then((late) => this.reportLeave(room, asRemoved(late)), () => {});
      throw err;
    }
    await this.bounded(this.redis.commands.hDel(this.keys.nodeEntries(this.options.instanceId), indexField(room, entry.connId)), "presence index");
    return asRemoved(reply);
  }

  async members(room: string): Promise<Member[]> {
    const users = await this.bounded(this.redis.commands.hGetAll(this.keys.users(room)), "members");
    return Object.entries(users).map(([id, name]) => ({ id, name }));
  }

  async settled(): Promise<void> {
    // Many batches of bounded commands, each answered: a long re-assert is no stall of Redis, so
    // this wait has its own timer rather than a command's deadline (which would mark one).
    if (this.reasserting) await withTimeout(this.reasserting, 2 * this.redis.commandTimeoutMs, "presence re-assert");
  }

  async close(): Promise<void> {
    this.closed = true;
    clearInterval(this.timer);
    clearTimeout(this.reassertTimer);
    // A reap cut off midway would leave the process it claimed to wait out a whole lease; on a
    // stalled Redis that wait is bounded like any command.
    await this.bounded(Promise.allSettled([this.reaping, this.reasserting]), "presence close").catch(() => {});
    // Removals that failed (their shard down, Redis away) get a last try. Whatever is still there
    // is left to the survivors: the heartbeat is made to expire now, not removed, so the next reap
    // takes the rest; nothing else would ever look at this start's entries again.
    await this.bounded(this.retryOrphans(), "presence close").catch(() => {});
    const left = this.orphans.size + this.local.size;
    if (left === 0) {
      await this.redis.commands.zRem(this.keys.nodes(), this.options.instanceId).catch(() => {});
      return;
    }
    this.options.logger.warn({ entries: left }, "presence entries could not be removed at shutdown; left for the other processes to reap");
    await this.redis.commands.zAdd(this.keys.nodes(), { score: Date.now(), value: this.options.instanceId }).catch(() => {});
  }

  private async beat(): Promise<void> {
    // One at a time: with Redis slow, heartbeats would otherwise pile up behind each other.
    // Degraded (a cluster master down) still beats: the heartbeat's shard may well be up.
    if (this.closed || this.beating || this.redis.readiness() === "unavailable") return;
    this.beating = true;
    try {
      const timeout = this.options.presenceTimeoutMs;
      const sent = Date.now();
      const found = await this.heartbeat();
      if (this.closed) return;
      // Claimed or reaped while still alive (a heartbeat came too late): put our users back. A
      // claim is the survivor's lease end: until then it may still be removing our entries, and
      // whatever we re-added before would go again. Removed from the set, it has finished.
      if (found.kind === "claimed") this.reassertAt(found.until);
      else if (found.kind === "removed") void this.reassert();
      else if (this.readdFailed.size > 0 && !this.reasserting) void this.reassert([...this.readdFailed]);
      // Our own entry went stale (more than half a timeout from one heartbeat going out to the next
      // one's answer): Redis was unreachable or stalled, most likely for every process alike.
      // Reaping now would take the others for dead before they could heartbeat again (their users
      // leaving and rejoining): give them a timeout, once, and never hold off past two.
      const answered = Date.now();
      if (answered - this.lastBeat > timeout / 2 && answered >= this.reapFrom) {
        this.reapFrom = answered + timeout;
        this.holdingSince ??= answered;
        this.options.logger.info({ staleMs: answered - this.lastBeat }, "presence heartbeats stalled: reaping waits one timeout");
      }
      this.lastBeat = sent;
      const due = answered >= this.reapFrom || (this.holdingSince !== undefined && answered - this.holdingSince > 2 * timeout);
      // Not awaited: a long reap (a dead process with many users) must not hold up the next
      // heartbeat, or the others would take this process for dead as well. It starts only now,
      // with Redis just seen answering, so its view is not one taken during a stall.
      if (!this.reaping) this.reaping = this.reapAll(due).finally(() => (this.reaping = undefined));
    } catch (err) {
      this.options.logger.warn({ err }, "presence heartbeat failed");
    } finally {
      this.beating = false;
    }
  }

  private async reapAll(due: boolean): Promise<void> {
    if (due) {
      try {
        await this.reap();
      } catch (err) {
        this.options.logger.warn({ err }, "presence reaping failed");
      } finally {
        this.holdingSince = undefined; // a reap ran: the next stall's grace starts its own count
      }
    }
    // After the reap, whose view of the others must be fresh: one orphan at a time can take a while.
    await this.retryOrphans().catch((err: unknown) => this.options.logger.warn({ err }, "presence removals still failing; retried next tick"));
  }

  /**
   * Writes this process's heartbeat, and says what it found in its place: a score it sent itself
   * ("mine"); none ("removed": a survivor took it for dead and removed its entries, or Redis lost
   * them); or another one ("claimed": a survivor's lease on cleaning it up, which may have
   * removed some or all of its entries, and may still be at it until `until`).
   */
  private async heartbeat(): Promise<{ kind: "mine" | "removed" } | { kind: "claimed"; until: number }> {
    const expiresAt = Date.now() + Math.floor(this.options.presenceTimeoutMs / 2);
    this.written.push(expiresAt);
    if (this.written.length > 16) this.written.shift();
    const previous = await this.bounded(
      SCRIPTS.heartbeat.run<string | null>(this.redis, [this.keys.nodes()], [this.options.instanceId, expiresAt]),
      "heartbeat",
    );
    const score = previous === null ? undefined : Number(previous);
    const mine = score !== undefined && this.written.includes(score);
    this.written = [expiresAt];
    if (!this.started || mine) return { kind: "mine" };
    return score === undefined ? { kind: "removed" } : { kind: "claimed", until: score };
  }

  /** Re-asserts once a survivor's claim has run out (a little after, for the clocks). */
  private reassertAt(until: number): void {
    if (this.reassertTimer) return;
    const wait = Math.min(Math.max(0, until - Date.now()) + 100, this.options.presenceTimeoutMs + 100);
    this.reassertTimer = setTimeout(() => {
      this.reassertTimer = undefined;
      void this.reassert();
    }, wait);
    this.reassertTimer.unref(); // must not keep the process alive
  }

  /** Removes the entries of every process whose heartbeat expired, reporting who left. */
  private async reap(): Promise<void> {
    const commands = this.redis.commands;
    const expired = await this.bounded(commands.zRangeByScore(this.keys.nodes(), "-inf", Date.now()), "reap");
    let failure: unknown;
    for (const instance of expired) {
      if (instance === this.options.instanceId) continue;
      // The lease runs from now: a pass over several dead processes takes a while.
      const now = Date.now();
      const claimed = await this.bounded(SCRIPTS.claimNode.run<number>(this.redis, [this.keys.nodes()], [instance, now, this.options.presenceTimeoutMs]), "reap");
      if (!claimed) continue;
      const index = this.keys.nodeEntries(instance);
      const fields = Object.keys(await this.bounded(commands.hGetAll(index), "reap"));
      // An index field goes once its removal went through; one that failed (its room's shard
      // down) stays, with the process's claim, for the next reap after the lease.
      let failed = 0;
      for (let i = 0; i < fields.length; i += BATCH) {
        const batch = await settleAll(fields.slice(i, i + BATCH), (field) => this.reapEntry(instance, field));
        failure ??= batch.failure;
        failed += batch.failed.length;
        if (batch.done.length > 0) await this.bounded(commands.hDel(index, batch.done), "reap");
      }
      if (failed > 0) {
        this.options.logger.warn({ node: instance, failed, entries: fields.length }, "some of a dead process's presence could not be removed; retried after its lease");
        continue;
      }
      await this.bounded(commands.zRem(this.keys.nodes(), instance), "reap");
      this.options.logger.info({ reaped: instance, entries: fields.length }, "removed a dead process's presence");
    }
    if (failure !== undefined) throw failure;
  }

  private async reapEntry(instance: string, field: string): Promise<void> {
    const [room, connId] = field.split("\n") as [string, string];
    // The leave is reported when the removal answers, even after the wait gave up: a removal
    // that ran but was not reported would never be reported (done twice, it answers nothing).
    const removal = SCRIPTS.presenceRemove
      .run<RemoveReply>(this.redis, this.roomKeys(room), [this.keys.connKey(instance, connId)])
      .then((reply) => this.reportLeave(room, asRemoved(reply)));
    await this.bounded(removal, "reap");
  }

  /** Throws the first failure after trying every orphan: one room on a shard that is down must not hold up the rest. */
  private async retryOrphans(): Promise<void> {
    let failure: unknown;
    for (const [field, { room, entry }] of [...this.orphans]) {
      try {
        const removed = await this.removeNow(room, entry);
        this.orphans.delete(field);
        this.reportLeave(room, removed);
      } catch (err) {
        failure ??= err;
      }
    }
    if (failure !== undefined) throw failure;
  }

  /**
   * After a reconnect, or on finding this process claimed: our entries may have been removed
   * while we could not heartbeat. One run at a time; a call during a run makes it run once more,
   * and so does a failed run, at the next heartbeat.
   */
  private reassert(only?: string[]): Promise<void> {
    if (this.closed) return Promise.resolve();
    if (this.reasserting) {
      if (!only) this.reassertAgain = true;
      return this.reasserting;
    }
    const run = async (): Promise<void> => {
      await this.readdAll(only ?? [...this.local.keys()]);
      while (this.reassertAgain && !this.closed) {
        this.reassertAgain = false;
        await this.readdAll([...this.local.keys()]);
      }
    };
    this.reasserting = run().finally(() => (this.reasserting = undefined));
    return this.reasserting;
  }

  /** Writes these entries back, in batches; every one is tried, and the ones that failed are kept for a retry. */
  private async readdAll(fields: string[]): Promise<void> {
    const failed = new Set<string>();
    let failure: unknown;
    for (let i = 0; i < fields.length && !this.closed; i += BATCH) {
      const batch = await settleAll(fields.slice(i, i + BATCH), async (field) => {
        const held = this.local.get(field);
        if (held) await this.readd(field, held.room, held.entry);
      });
      for (const field of batch.failed) failed.add(field);
      failure ??= batch.failure;
    }
    this.readdFailed = failed;
    if (failure !== undefined) this.options.logger.warn({ err: failure, failed: failed.size }, "presence re-assert failed for some entries; retried after the next heartbeat");
  }

  private async readd(field: string, room: string, entry: PresenceEntry): Promise<void> {
    // Removed meanwhile (checked before each write): re-adding it would leave a ghost. A room's
    // commands go over one connection in order, so a removal sent after a check runs after the write.
    if (!this.local.has(field)) return;
    await this.bounded(this.redis.commands.hSet(this.keys.nodeEntries(this.options.instanceId), field, entry.user.id), "presence index");
    if (!this.local.has(field)) return;
    const add = SCRIPTS.presenceAdd
      .run<AddReply>(this.redis, this.roomKeys(room), [
        entry.user.id,
        entry.user.name,
        this.keys.connKey(this.options.instanceId, entry.connId),
        0, // already admitted once; capacity was checked then
      ])
      .then(([, first]) => {
        if (first === 1) this.handler(room, "join", entry.user);
      });
    await this.bounded(add, "presence re-assert");
  }

  /** A removal that no session reports (a reap, a retry, one answered late): its leave, if it was the user's last connection. */
  private reportLeave(room: string, removed: RemoveResult): void {
    if (removed.lastOfUser) this.handler(room, "leave", removed.member);
  }

  private roomKeys(room: string): string[] {
    return [this.keys.users(room), this.keys.conns(room), this.keys.counts(room)];
  }

  private bounded<T>(promise: Promise<T>, what: string): Promise<T> {
    return this.redis.bounded(promise, what);
  }
}

/**
 * Runs `run` on every item at once (node-redis pipelines the commands into one write) and waits
 * for all of them: which items went through, which failed, and the first failure.
 */
async function settleAll<T>(items: T[], run: (item: T) => Promise<void>): Promise<{ done: T[]; failed: T[]; failure: unknown }> {
  const results = await Promise.allSettled(items.map(run));
  const done: T[] = [];
  const failed: T[] = [];
  let failure: unknown;
  results.forEach((result, k) => {
    if (result.status === "fulfilled") done.push(items[k]!);
    else {
      failed.push(items[k]!);
      failure ??= result.reason;
    }
  });
  return { done, failed, failure };
}

function indexField(room: string, connId: string): string {
  return `${room}\n${connId}`;
}

function asRemoved(reply: RemoveReply): RemoveResult {
  return reply !== null && Number(reply[0]) === 1 ? { lastOfUser: true, member: { id: reply[1], name: reply[2] } } : { lastOfUser: false };
}

function pairs(flat: string[]): Member[] {
  const members: Member[] = [];
  for (let i = 0; i + 1 < flat.length; i += 2) members.push({ id: flat[i]!, name: flat[i + 1]! });
  return members;
}

/**
 * NODE_ID names a process for people (logs, `hello`) and usually stays the same across restarts
 * (systemd's `NODE_ID=%H-%i` with `Restart=on-failure`); presence needs one per process start.
 */
export function presenceInstanceId(nodeId: string): string {
  return `${nodeId}.${randomBytes(4).toString("hex")}`;
}
