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
  /** A ping went out and its pong has not come back. */
  awaitingPong = false;
  /** Frames written while the socket was already over its high-water mark. */
  backlog = 0;
  private corked = false;

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
    const tcp = this.tcp;
    if (!this.corked) {
      this.corked = true;
      tcp.cork();
      corked.push(this);
      if (corked.length === 1) setImmediate(uncorkAll);
    }
    // writableNeedDrain: an earlier write found the buffer past its high-water mark and the
    // kernel has not taken it since; only a reader that stops keeps it so for long.
    this.backlog = tcp.writableNeedDrain ? this.backlog + 1 : 0;
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
