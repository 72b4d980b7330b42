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
  /** "seq:ts" of a message its sender tagged with clientMsgId, so that a resend is stored once. */
  sent(room: string, userId: string, clientMsgId: string): string {
    return `${this.prefix}{${room}}:sent:${userId}:${clientMsgId}`;
  }
  /** Hash {userId: name} of the room's members. */
  users(room: string): string {
    return `${this.prefix}{${room}}:users`;
  }
  /** Hash {nodeId/connId: userId}: every connection in the room. */
  conns(room: string): string {
    return `${this.prefix}{${room}}:conns`;
  }
  /** Hash {userId: connection count}. */
  counts(room: string): string {
    return `${this.prefix}{${room}}:counts`;
  }
  /** Sorted set {nodeId: heartbeat expiry in ms}. */
  nodes(): string {
    return `${this.prefix}nodes`;
  }
  /** Hash {room \n connId: userId}: a process's presence entries, for cleaning up after it dies. */
  nodeEntries(nodeId: string): string {
    return `${this.prefix}node:{${nodeId}}:entries`;
  }
  connKey(nodeId: string, connId: string): string {
    return `${nodeId}/${connId}`;
  }
}
