import { io, type Socket } from "socket.io-client";
import type {
  Ack,
  ChatMessage,
  ClientToServerEvents,
  Hello,
  HistoryResult,
  JoinResult,
  SendResult,
  ServerToClientEvents,
} from "../../src/protocol.js";
import { CHAT_NAMESPACE } from "../../src/protocol.js";

export type ChatSocket = Socket<ServerToClientEvents, ClientToServerEvents>;

const ACK_TIMEOUT_MS = 5000;

/** A real socket.io-client connection, plus what it has received so far. */
export interface ClientOptions {
  reconnection?: boolean;
  /** Default: WebSocket only, as roomcast's own clients connect. */
  transports?: Array<"websocket" | "polling">;
}

export class TestClient {
  readonly socket: ChatSocket;
  readonly messages: ChatMessage[] = [];
  readonly events: Array<{ event: string; payload: unknown }> = [];
  hello: Hello | undefined;

  constructor(url: string, auth: Record<string, unknown> = {}, options: ClientOptions = {}) {
    this.socket = io(`${url}${CHAT_NAMESPACE}`, {
      auth,
      transports: options.transports ?? ["websocket"],
      reconnection: options.reconnection ?? false,
      forceNew: true,
      reconnectionDelay: 50,
      reconnectionDelayMax: 200,
    });
    this.socket.on("hello", (hello) => (this.hello = hello));
    this.socket.on("message", (m) => this.messages.push(m));
    this.socket.onAny((event: string, payload: unknown) => this.events.push({ event, payload }));
  }

  static async connect(url: string, auth: Record<string, unknown> = {}, options: ClientOptions = {}): Promise<TestClient> {
    const client = new TestClient(url, auth, options);
    await client.until(() => client.hello !== undefined, "hello");
    return client;
  }

  /** As browsers connect with socket.io-client's defaults: long-polling first, then the upgrade to WebSocket. */
  static async connectUpgraded(url: string, auth: Record<string, unknown> = {}): Promise<TestClient> {
    const client = await TestClient.connect(url, auth, { transports: ["polling", "websocket"] });
    await client.until(() => client.socket.io.engine.transport.name === "websocket", "the upgrade to WebSocket");
    return client;
  }

  get id(): string {
    return this.hello!.user.id;
  }

  /** Emits with an ack callback and resolves with the ack; rejects if none comes. */
  request<T = object>(event: string, ...args: unknown[]): Promise<Ack<T>> {
    return (this.socket as unknown as { timeout(ms: number): { emitWithAck(e: string, ...a: unknown[]): Promise<Ack<T>> } })
      .timeout(ACK_TIMEOUT_MS)
      .emitWithAck(event, ...args);
  }

  join(room: string, extra: Record<string, unknown> = {}): Promise<Ack<JoinResult>> {
    return this.request<JoinResult>("join", { room, ...extra });
  }

  async joinOk(room: string, extra: Record<string, unknown> = {}): Promise<JoinResult> {
    const ack = await this.join(room, extra);
    if (!ack.ok) throw new Error(`join ${room} failed: ${ack.error.code} ${ack.error.message}`);
    return ack;
  }

  send(room: string, text: string, extra: Record<string, unknown> = {}): Promise<Ack<SendResult>> {
    return this.request<SendResult>("message", { room, text, ...extra });
  }

  async sendOk(room: string, text: string): Promise<SendResult> {
    const ack = await this.send(room, text);
    if (!ack.ok) throw new Error(`send to ${room} failed: ${ack.error.code}`);
    return ack;
  }

  history(room: string, extra: Record<string, unknown> = {}): Promise<Ack<HistoryResult>> {
    return this.request<HistoryResult>("history", { room, ...extra });
  }

  received(event: string): unknown[] {
    return this.events.filter((e) => e.event === event).map((e) => e.payload);
  }

  messagesIn(room: string): ChatMessage[] {
    return this.messages.filter((m) => m.room === room);
  }

  /** Waits until `condition` holds, checking on every event and on a short poll. */
  until(condition: () => boolean, what: string, timeoutMs = 5000): Promise<void> {
    return waitUntil(condition, what, timeoutMs);
  }

  close(): void {
    this.socket.disconnect();
  }
}

export async function waitUntil(condition: () => boolean, what: string, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

/** The same for a condition that needs I/O to check (Redis, HTTP, a tmux screen); polled less often. */
export async function waitUntilAsync(condition: () => Promise<boolean>, what: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}
