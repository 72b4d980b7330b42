import WebSocket from "ws";

/**
 * A lean Socket.IO client: engine.io v4 over a plain WebSocket, no reconnection, no polling, no
 * event emitter per packet. It costs the generator a fraction of what socket.io-client does, so
 * the two cores go to the servers. Frames, as the standard client sends and reads them:
 *   engine.io  0{...} open · 2 ping -> 3 pong · 1 close · 4<socket.io packet> message
 *   socket.io  40/chat,{auth} connect · 42/chat,ID["event",{...}] event with ack id ·
 *              43/chat,ID[{...}] ack · 44/chat,{...} connect error · 41/chat, disconnect
 */
export interface WireHandlers {
  /** A `42` event frame that is not an ack (the raw bytes, "42/chat," included). */
  onEvent(frame: Buffer): void;
  /** An ack of a send made without a callback (a chat message): ok or not, and its ack id. */
  onSendAck(ok: boolean, frame: Buffer, client: WireClient, ackId: number): void;
  onClose(reason: string): void;
}

const CH = { zero: 0x30, one: 0x31, two: 0x32, three: 0x33, four: 0x34, comma: 0x2c } as const;
const OK_FALSE = Buffer.from('"ok":false');

export class WireClient {
  private ws: WebSocket | undefined;
  private nextAckId = 0;
  private readonly pending = new Map<number, (frame: Buffer) => void>();
  private readonly prefix: string;
  private readonly ackPrefixLength: number;
  private closed = false;

  constructor(
    private readonly baseUrl: string,
    private readonly namespace: string,
    private readonly auth: object,
    private readonly handlers: WireHandlers,
  ) {
    this.prefix = `42${namespace},`;
    this.ackPrefixLength = `43${namespace},`.length;
  }

  get isOpen(): boolean {
    return !this.closed && this.ws?.readyState === WebSocket.OPEN;
  }

  /** Opens the transport and connects the namespace; rejects on a connect error or after timeoutMs. */
  connect(timeoutMs: number): Promise<void> {
    return new Promise((resolve, reject) => {
      const url = `${this.baseUrl.replace(/^http/, "ws")}/socket.io/?EIO=4&transport=websocket`;
      const ws = new WebSocket(url, { perMessageDeflate: false });
      this.ws = ws;
      let settled = false;
      const settle = (err?: Error): void => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        if (err) {
          ws.terminate();
          reject(err);
        } else resolve();
      };
      const timer = setTimeout(() => settle(new Error("connect timed out")), timeoutMs);
      ws.on("error", (err) => settle(err));
      ws.on("close", (code) => {
        settle(new Error(`closed while connecting (${code})`));
        if (!this.closed) {
          this.closed = true;
          this.handlers.onClose(`closed ${code}`);
        }
      });
      ws.on("message", (data: Buffer) => {
        const type = data[0];
        if (type === CH.four) {
          const sio = data[1];
          if (sio === CH.two) this.handlers.onEvent(data);
          else if (sio === CH.three) this.onAck(data);
          else if (sio === CH.zero) settle();
          else if (sio === CH.four) settle(new Error(`connect error ${data.toString().slice(2 + this.namespace.length + 1, 200)}`));
          else if (sio === CH.one) ws.close();
        } else if (type === CH.two) {
          ws.send("3");
        } else if (type === CH.zero) {
          ws.send(`40${this.namespace},${JSON.stringify(this.auth)}`);
        } else if (type === CH.one) {
          ws.close();
        }
      });
    });
  }

  /** Emits an event and resolves with the ack's raw frame. */
  request(event: string, payload: object, timeoutMs: number): Promise<string> {
    return new Promise((resolve, reject) => {
      const id = this.nextAckId++;
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new Error(`${event} ack timed out`));
      }, timeoutMs);
      this.pending.set(id, (frame) => {
        clearTimeout(timer);
        resolve(frame.toString("utf8", this.ackPrefixLength));
      });
      if (!this.sendRaw(`${this.prefix}${id}${JSON.stringify([event, payload])}`)) {
        clearTimeout(timer);
        this.pending.delete(id);
        reject(new Error("not connected"));
      }
    });
  }

  /**
   * Emits `message` with an ack id but no callback (onSendAck reports the ack); returns the ack id,
   * or -1 when not connected. With clientMsgId, the message carries it (plain ASCII only).
   */
  sendMessage(room: string, text: string, clientMsgId?: string): number {
    const id = this.nextAckId++;
    const extra = clientMsgId === undefined ? "" : `,"clientMsgId":"${clientMsgId}"`;
    return this.sendRaw(`${this.prefix}${id}["message",{"room":"${room}","text":"${text}"${extra}}]`) ? id : -1;
  }

  close(): void {
    this.closed = true;
    this.ws?.terminate();
  }

  /** Sends one engine.io frame as is ("42/chat,..." is engine.io message 4 + socket.io event 2). */
  private sendRaw(frame: string): boolean {
    if (!this.isOpen) return false;
    this.ws!.send(frame);
    return true;
  }

  private onAck(data: Buffer): void {
    let id = 0;
    let i = this.ackPrefixLength;
    for (; i < data.length; i++) {
      const c = data[i]!;
      if (c < CH.zero || c > 0x39) break;
      id = id * 10 + (c - CH.zero);
    }
    const callback = this.pending.get(id);
    if (callback) {
      this.pending.delete(id);
      callback(data);
      return;
    }
    this.handlers.onSendAck(data.indexOf(OK_FALSE, i) < 0, data, this, id);
  }
}
