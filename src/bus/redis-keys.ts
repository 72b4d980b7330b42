/**
 * Every Redis key and channel roomcast uses. A room's keys share the hash tag {room}, so in a
 * Redis Cluster they live on one shard and its scripts stay single-slot.
 */
export class RedisKeys {
  constructor(private readonly prefix: string) {}

  /** Hash {seq, epoch}: the room's last seq and the id of its current life. */
  meta(room: string): string {
    return `${this.prefix}{${room}}:meta`;
  }
  /** List of the newest messages as JSON, oldest first. */
  history(room: string): string {
    return `${this.prefix}{${room}}:history`;
  }
  /**
   * The room's pub/sub channel: one per room, never a pattern. It has the history key's name
   * (channels and keys do not share a namespace), so publish.lua publishes to KEYS[2] and needs
   * no argument, one Lua string fewer per message.
   */
  channel(room: string): string {
    return this.history(room);
  }
  /**
   * Hashes {sentField: "seq:ts"} of the messages senders tagged with a clientMsgId, so that a
   * resend is stored once: the current generation and the previous one (publish.lua rotates them).
   */
  sent(room: string): [current: string, previous: string] {
    return [`${this.prefix}{${room}}:sent`, `${this.prefix}{${room}}:sent:old`];
  }
  /** A message's field in the `sent` hashes: its sender and clientMsgId, unambiguously. */
  sentField(userId: string, clientMsgId: string): string {
    return `${userId.length}:${userId}${clientMsgId}`;
  }
  /** Hash {userId: name} of the room's members. */
  users(room: string): string {
    return `${this.prefix}{${room}}:users`;
  }
  /** Hash {instance/connId: userId}: every connection in the room (instance: the process's presence id). */
  conns(room: string): string {
    return `${this.prefix}{${room}}:conns`;
  }
  /** Hash {userId: connection count}. */
  counts(room: string): string {
    return `${this.prefix}{${room}}:counts`;
  }
  /** Sorted set {presence instance id: heartbeat expiry in ms}: one member per process start. */
  nodes(): string {
    return `${this.prefix}nodes`;
  }
  /** Hash {room \n connId: userId}: a process's presence entries, for cleaning up after it dies. */
  nodeEntries(instance: string): string {
    return `${this.prefix}node:{${instance}}:entries`;
  }
  connKey(instance: string, connId: string): string {
    return `${instance}/${connId}`;
  }
}
