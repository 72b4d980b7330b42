import type { Logger } from "pino";
import type { Member } from "../protocol.js";
import type { AddResult, PresenceChangeHandler, PresenceEntry, PresenceStore, RemoveResult } from "./presence.js";
import type { RedisConnection } from "./redis-connection.js";
import type { RedisKeys } from "./redis-keys.js";
import { SCRIPTS } from "./redis-scripts.js";

export interface RedisPresenceOptions {
  nodeId: string;
  /** A process that stops heartbeating has its users removed within this time. */
  presenceTimeoutMs: number;
  logger: Logger;
}

type RemoveReply = null | [number, string, string];

/**
 * Cluster-wide presence in Redis. Each process heartbeats into a sorted set; every process
 * reaps the entries of processes whose heartbeat expired (one at a time, under a lease), and
 * reports the users that left that way. After a lost connection a process re-asserts its own
 * entries, since it may have been reaped meanwhile.
 */
export class RedisPresence implements PresenceStore {
  private handler: PresenceChangeHandler = () => {};
  /** This process's entries, by room and connection: what to re-assert after a reconnect. */
  private readonly local = new Map<string, { room: string; entry: PresenceEntry }>();
  /** Entries whose removal failed (Redis down): retried, or they would stay as ghosts. */
  private readonly orphans = new Map<string, { room: string; entry: PresenceEntry }>();
  private readonly timer: NodeJS.Timeout;
  private closed = false;
  private ticking = false;
  private started = false;
  /** When this process's last heartbeat that went through was sent. */
  private lastBeat = 0;
  /** No reaping before this: after an outage the others need time to heartbeat again. */
  private reapFrom = 0;
  /** When a reap last ran to its end: a grace never holds reaping off for longer than two timeouts. */
  private lastReap = Date.now();

  constructor(
    private readonly redis: RedisConnection,
    private readonly keys: RedisKeys,
    private readonly options: RedisPresenceOptions,
  ) {
    // Heartbeat and reap five times per timeout; an entry expires half a timeout after the last
    // heartbeat, so a dead process's users are gone within about 0.7 of the timeout.
    const every = Math.max(100, Math.floor(options.presenceTimeoutMs / 5));
    this.timer = setInterval(() => void this.tick(), every);
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
    const { nodeId } = this.options;
    // The process index is written first: if we die in between, the reaper finds nothing to undo.
    await this.bounded(this.redis.commands.hSet(this.keys.nodeEntries(nodeId), indexField(room, entry.connId), entry.user.id), "presence index");
    const [admitted, first, flat] = await this.bounded(
      SCRIPTS.presenceAdd.run<[number, number, string[]]>(this.redis, this.roomKeys(room), [
        entry.user.id,
        entry.user.name,
        this.keys.connKey(nodeId, entry.connId),
        capacity,
      ]),
      "presence add",
    );
    if (!admitted) {
      await this.redis.commands.hDel(this.keys.nodeEntries(nodeId), indexField(room, entry.connId)).catch(() => {});
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
    const reply = await this.bounded(
      SCRIPTS.presenceRemove.run<RemoveReply>(this.redis, this.roomKeys(room), [this.keys.connKey(this.options.nodeId, entry.connId)]),
      "presence remove",
    );
    await this.bounded(this.redis.commands.hDel(this.keys.nodeEntries(this.options.nodeId), indexField(room, entry.connId)), "presence index");
    return reply !== null && Number(reply[0]) === 1 ? { lastOfUser: true, member: { id: reply[1], name: reply[2] } } : { lastOfUser: false };
  }

  async members(room: string): Promise<Member[]> {
    const users = await this.bounded(this.redis.commands.hGetAll(this.keys.users(room)), "members");
    return Object.entries(users).map(([id, name]) => ({ id, name }));
  }

  async close(): Promise<void> {
    this.closed = true;
    clearInterval(this.timer);
    await this.redis.commands.zRem(this.keys.nodes(), this.options.nodeId).catch(() => {});
  }

  private async tick(): Promise<void> {
    // One tick at a time: with Redis slow, ticks would otherwise pile up behind each other.
    // Degraded (a cluster master down) still ticks: the heartbeat's shard may well be up.
    if (this.closed || this.ticking || this.redis.readiness() === "unavailable") return;
    this.ticking = true;
    try {
      const timeout = this.options.presenceTimeoutMs;
      const sent = Date.now();
      // Reaped while still alive (a heartbeat came too late): put our users back.
      if (await this.heartbeat()) await this.reassert();
      // Our own entry went stale (more than half a timeout from one heartbeat going out to the next
      // one's answer): Redis was unreachable or stalled, most likely for every process alike.
      // Reaping now would take the others for dead before they could heartbeat again (their users
      // leaving and rejoining): give them a timeout, once, and never hold off past two.
      const answered = Date.now();
      if (answered - this.lastBeat > timeout / 2 && answered >= this.reapFrom) {
        this.reapFrom = answered + timeout;
        this.options.logger.info({ staleMs: answered - this.lastBeat }, "presence heartbeats stalled: reaping waits one timeout");
      }
      this.lastBeat = sent;
      await this.retryOrphans().catch((err: unknown) => this.options.logger.warn({ err }, "presence removals still failing; retried next tick"));
      if (answered >= this.reapFrom || answered - this.lastReap > 2 * timeout) {
        await this.reap();
        this.lastReap = Date.now();
      }
    } catch (err) {
      this.options.logger.warn({ err }, "presence heartbeat failed");
    } finally {
      this.ticking = false;
    }
  }

  /** Returns true when this process was missing from the set: a survivor reaped it as dead. */
  private async heartbeat(): Promise<boolean> {
    const expiresAt = Date.now() + Math.floor(this.options.presenceTimeoutMs / 2);
    const added = await this.bounded(this.redis.commands.zAdd(this.keys.nodes(), { score: expiresAt, value: this.options.nodeId }), "heartbeat");
    return Number(added) === 1 && this.started;
  }

  /** Removes the entries of every process whose heartbeat expired, reporting who left. */
  private async reap(): Promise<void> {
    const commands = this.redis.commands;
    const now = Date.now();
    const expired = await this.bounded(commands.zRangeByScore(this.keys.nodes(), "-inf", now), "reap");
    for (const nodeId of expired) {
      if (nodeId === this.options.nodeId) continue;
      const claimed = await SCRIPTS.claimNode.run<number>(this.redis, [this.keys.nodes()], [nodeId, now, this.options.presenceTimeoutMs]);
      if (!claimed) continue;
      const entries = await commands.hGetAll(this.keys.nodeEntries(nodeId));
      for (const field of Object.keys(entries)) {
        const [room, connId] = field.split("\n") as [string, string];
        const reply = await SCRIPTS.presenceRemove.run<RemoveReply>(this.redis, this.roomKeys(room), [this.keys.connKey(nodeId, connId)]);
        if (reply && Number(reply[0]) === 1) this.handler(room, "leave", { id: reply[1], name: reply[2] });
        await commands.hDel(this.keys.nodeEntries(nodeId), field);
      }
      await commands.zRem(this.keys.nodes(), nodeId);
      this.options.logger.info({ reaped: nodeId, entries: Object.keys(entries).length }, "removed a dead process's presence");
    }
  }

  /** Throws the first failure after trying every orphan: one room on a shard that is down must not hold up the rest. */
  private async retryOrphans(): Promise<void> {
    let failure: unknown;
    for (const [field, { room, entry }] of [...this.orphans]) {
      try {
        const removed = await this.removeNow(room, entry);
        this.orphans.delete(field);
        if (removed.lastOfUser) this.handler(room, "leave", removed.member);
      } catch (err) {
        failure ??= err;
      }
    }
    if (failure !== undefined) throw failure;
  }

  /** After a reconnect: our entries may have been reaped while we could not heartbeat. */
  private async reassert(): Promise<void> {
    try {
      await this.heartbeat();
      await this.retryOrphans();
      for (const [field, { room, entry }] of [...this.local]) {
        await this.bounded(this.redis.commands.hSet(this.keys.nodeEntries(this.options.nodeId), field, entry.user.id), "presence index");
        // Removed while we were awaiting: re-adding it now would leave a ghost. Commands on the one
        // connection run in order, so a removal sent after this check runs after the add.
        if (!this.local.has(field)) continue;
        const [, first] = await SCRIPTS.presenceAdd.run<[number, number, string[]]>(this.redis, this.roomKeys(room), [
          entry.user.id,
          entry.user.name,
          this.keys.connKey(this.options.nodeId, entry.connId),
          0, // already admitted once; capacity was checked then
        ]);
        if (first === 1) this.handler(room, "join", entry.user);
      }
    } catch (err) {
      this.options.logger.warn({ err }, "presence re-assert failed");
    }
  }

  private roomKeys(room: string): string[] {
    return [this.keys.users(room), this.keys.conns(room), this.keys.counts(room)];
  }

  private bounded<T>(promise: Promise<T>, what: string): Promise<T> {
    return this.redis.bounded(promise, what);
  }
}

function indexField(room: string, connId: string): string {
  return `${room}\n${connId}`;
}

function pairs(flat: string[]): Member[] {
  const members: Member[] = [];
  for (let i = 0; i + 1 < flat.length; i += 2) members.push({ id: flat[i]!, name: flat[i + 1]! });
  return members;
}
