import type { Server, Socket } from "socket.io";

type EngineServer = Server["engine"];
type EngineSocket = Socket["conn"];
type Flush = (this: EngineSocket) => void;

/**
 * Sends each connection's packets of one event-loop turn in one socket write.
 *
 * engine.io hands a packet to the WebSocket as soon as it is created, and ws writes every frame
 * with its own syscall; engine.io then holds the next packet until that write's callback. So a
 * message's ack and its echo to the sender (both produced by one Redis read) cost two writes, and
 * on loopback and in VMs a write that wakes its reader costs more than all our JavaScript for the
 * message. Here a connection's flush waits for setImmediate (the end of this turn's I/O: no timer,
 * no added latency beyond the turn) and its TCP socket is corked while engine.io hands over the
 * batch, so the frames leave in one writev. Measured in `npm run bench` (docs/benchmark.md).
 */
export function batchWrites(engine: EngineServer): void {
  const due = new Set<EngineSocket>();
  let scheduled = false;
  let engineFlush: Flush | undefined;

  const flushDue = (): void => {
    scheduled = false;
    try {
      for (const socket of due) {
        due.delete(socket);
        const tcp = tcpSocketOf(socket);
        tcp?.cork();
        try {
          engineFlush!.call(socket);
        } finally {
          tcp?.uncork();
        }
      }
    } finally {
      // Only after a throw (a bug) are sockets left: they must not wait for someone else's packet.
      if (due.size > 0 && !scheduled) {
        scheduled = true;
        setImmediate(flushDue);
      }
    }
  };
  // One function for every connection (it reads `this`): no closure per connection.
  const deferredFlush: Flush = function (this: EngineSocket) {
    due.add(this);
    if (!scheduled) {
      scheduled = true;
      setImmediate(flushDue);
    }
  };

  engine.on("connection", (socket: EngineSocket) => {
    engineFlush ??= (Object.getPrototypeOf(socket) as { flush: Flush }).flush;
    // An own property shadows Socket.prototype.flush, which sendPacket and the transport's ready handler call.
    (socket as unknown as { flush: Flush }).flush = deferredFlush;
  });
}

interface Corkable {
  cork(): void;
  uncork(): void;
}

/** The TCP socket under a WebSocket transport; polling transports answer a request instead. */
function tcpSocketOf(socket: EngineSocket): Corkable | undefined {
  const transport = socket.transport as unknown as { name: string; socket?: { _socket?: Corkable } };
  return transport.name === "websocket" ? transport.socket?._socket : undefined;
}
