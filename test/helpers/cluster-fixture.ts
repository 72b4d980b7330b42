import { after, before } from "node:test";
import type { CreateChatServerOptions } from "../../src/server.js";
import type { TestClient } from "./client.js";
import { UNLIMITED_RATE } from "./fixture.js";
import { RedisClusterNodes, type ClusterOptions } from "./redis-cluster-nodes.js";
import { startServer, type RunningServer } from "./server.js";

/** What the tests of one describe block share on a Redis Cluster. */
export interface ClusterFixture {
  /** Set once the block's `before` has run. */
  nodes: RedisClusterNodes;
  /** Two roomcast servers in cluster mode, in the order of `nodeIds`. */
  readonly servers: RunningServer[];
  /** Clients pushed here are closed when the block ends. */
  readonly clients: TestClient[];
  /** Unhandled promise rejections while the block ran: each would end a real process. */
  readonly unhandled: unknown[];
}

/**
 * A real Redis Cluster on free loopback ports and two roomcast servers on it, started before the
 * calling describe block's tests and stopped after them.
 */
export function clusterFixture(options: {
  cluster?: ClusterOptions;
  nodeIds: [string, string];
  server: CreateChatServerOptions & { redisPrefix: string };
}): ClusterFixture {
  const fx: ClusterFixture = { nodes: undefined as unknown as RedisClusterNodes, servers: [], clients: [], unhandled: [] };
  const onUnhandled = (reason: unknown): void => void fx.unhandled.push(reason);
  before(async () => {
    process.on("unhandledRejection", onUnhandled);
    fx.nodes = await RedisClusterNodes.start(3, options.cluster);
    for (const nodeId of options.nodeIds) {
      fx.servers.push(await startServer({ ...UNLIMITED_RATE, redisUrl: fx.nodes.url, redisMode: "cluster", nodeId, roomCapacity: 0, ...options.server }));
    }
  });
  after(async () => {
    for (const client of fx.clients) client.close();
    for (const server of fx.servers) await server.close();
    await fx.nodes?.stop();
    process.off("unhandledRejection", onUnhandled);
  });
  return fx;
}
