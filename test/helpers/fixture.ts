import { after, before } from "node:test";
import type { CreateChatServerOptions } from "../../src/server.js";
import { TestClient, type ClientOptions } from "./client.js";
import { RedisProcess } from "./redis.js";
import { startServer, type RunningServer } from "./server.js";

export interface ServerFixture {
  readonly srv: RunningServer;
  readonly url: string;
  connect(name?: string, auth?: Record<string, unknown>, options?: ClientOptions): Promise<TestClient>;
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

export interface PairFixture {
  /** Connects to one of two servers: 0 or 1. With Redis they are two processes' worth of server. */
  connect(name: string, server: 0 | 1): Promise<TestClient>;
}

/** One server serving both sides: the in-memory bus. */
export function singleServerPair(options: CreateChatServerOptions = {}): PairFixture {
  const fx = serverFixture(options);
  return { connect: (name) => fx.connect(name) };
}

/** Two real servers sharing a redis-server of the suite's own: messages cross Redis between them. */
export function redisServerPair(options: CreateChatServerOptions = {}): PairFixture {
  let redis: RedisProcess | undefined;
  let servers: RunningServer[] = [];
  const clients: TestClient[] = [];
  before(async () => {
    redis = await RedisProcess.start();
    const shared = { ...options, redisUrl: redis.url, redisPrefix: "pair:" };
    servers = [await startServer({ ...shared, nodeId: "pair-0" }), await startServer({ ...shared, nodeId: "pair-1" })];
  });
  after(async () => {
    for (const client of clients) client.close();
    await Promise.all(servers.map((s) => s.close()));
    await redis?.stop();
  });
  return {
    async connect(name, server) {
      const client = await TestClient.connect(servers[server]!.url, { name });
      clients.push(client);
      return client;
    },
  };
}

/** Limits high enough that a test sending as fast as it can is never rate limited. */
export const UNLIMITED_RATE = { messageRate: 1e6, messageBurst: 1e6, typingRate: 1e6, typingBurst: 1e6, joinRate: 1e6, joinBurst: 1e6, historyRate: 1e6, historyBurst: 1e6 } as const;

export function range(from: number, to: number): number[] {
  return Array.from({ length: Math.max(0, to - from + 1) }, (_, i) => from + i);
}
