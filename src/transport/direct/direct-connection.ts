import type { Socket as TcpSocket } from "node:net";
import WebSocket from "ws";
import type { Session } from "../../chat/session.js";
import type { Member } from "../../protocol.js";
import type { BinaryPacket } from "./wire-packets.js";

/**
 * One WebSocket client of the direct transport: the engine.io connection and, once the client
 * has connected to the chat namespace, its Session. Kept small: a server holds tens of thousands.
 */
export class DirectConnection {
  /** The chat namespace's socket id (the Session's connection id), set when the namespace connects. */
  id: string | undefined;
  session: Session | undefined;
  /** Connected to the main namespace "/", which Socket.IO accepts by default and roomcast leaves idle. */
  inMainNamespace = false;
  /** A CONNECT to the chat namespace is being authenticated. */
  connecting = false;
  /** A packet with binary attachments still collecting them. */
  partial: BinaryPacket | undefined;
  /** When the ping whose pong has not come back went out; 0 when none is owed. */
  pingSentAt = 0;
  /** Frames written in loop turns that began with the previous turns' data still unsent. */
  backlog = 0;
  private corked = false;
  /** This turn began with the socket over its high-water mark, as left by earlier turns. */
  private stalled = false;

  constructor(
    readonly ws: WebSocket,
    readonly tcp: TcpSocket,
    readonly openedAt: number,
  ) {}

  get open(): boolean {
    return this.ws.readyState === WebSocket.OPEN;
  }

  /**
   * Writes a ready-made frame (one buffer shared by every recipient of a broadcast). The TCP
   * socket stays corked until the end of the loop turn, so a turn's frames to one client leave in
   * one writev (as src/transport/write-batching.ts does for engine.io). Returns the backlog.
   */
  write(frame: Buffer): number {
    if (!this.open) return 0;
    // Straight to the TCP socket, past ws's Sender: safe while compression is off (it is, see
    // DirectTransport), since the Sender then never holds frames back and each write is whole.
    const tcp = this.tcp;
    if (!this.corked) {
      // Judged once per turn, before this turn's frames pile up behind the cork (a burst of one
      // turn passes the high-water mark by itself): only data that earlier turns left unsent,
      // which the kernel would not take, means a reader that stopped.
      this.stalled = tcp.writableNeedDrain;
      if (!this.stalled) this.backlog = 0;
      this.corked = true;
      tcp.cork();
      corked.push(this);
      if (corked.length === 1) setImmediate(uncorkAll);
    }
    if (this.stalled) this.backlog++;
    tcp.write(frame);
    return this.backlog;
  }

  uncork(): void {
    this.corked = false;
    this.tcp.uncork();
  }
}

const corked: DirectConnection[] = [];

function uncorkAll(): void {
  // A write during an uncork (none today) would schedule its own turn: take the list first.
  const batch = corked.splice(0);
  for (const connection of batch) connection.uncork();
}
