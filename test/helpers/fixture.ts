import { after, before } from "node:test";
import type { CreateChatServerOptions } from "../../src/server.js";
import { TestClient } from "./client.js";
import { startServer, type RunningServer } from "./server.js";

export interface ServerFixture {
  readonly srv: RunningServer;
  readonly url: string;
  connect(name?: string, auth?: Record<string, unknown>, options?: { reconnection?: boolean }): Promise<TestClient>;
  /** Registers a client made elsewhere so that it is closed with the fixture. */
  track(client: TestClient): TestClient;
}

/** One real server per suite (started in `before`, closed in `after`) and the clients that used it. */
export function serverFixture(options: CreateChatServerOptions = {}): ServerFixture {
  let srv: RunningServer | undefined;
  const clients: TestClient[] = [];
  before(async () => {
    srv = await startServer(options);
  });
  after(async () => {
    for (const client of clients) client.close();
    await srv?.close();
  });
  const fixture: ServerFixture = {
    get srv() {
      if (!srv) throw new Error("server not started yet");
      return srv;
    },
    get url() {
      return fixture.srv.url;
    },
    async connect(name, auth = {}, connectOptions = {}) {
      const client = await TestClient.connect(fixture.url, name === undefined ? auth : { name, ...auth }, connectOptions);
      clients.push(client);
      return client;
    },
    track(client) {
      clients.push(client);
      return client;
    },
  };
  return fixture;
}

/** Limits high enough that a test sending as fast as it can is never rate limited. */
export const UNLIMITED_RATE = { messageRate: 1e6, messageBurst: 1e6, typingRate: 1e6, typingBurst: 1e6, joinRate: 1e6, joinBurst: 1e6 } as const;

export function range(from: number, to: number): number[] {
  return Array.from({ length: Math.max(0, to - from + 1) }, (_, i) => from + i);
}
