import { connect, createServer, type Server, type Socket } from "node:net";

// Pub/sub deliveries as Redis writes them, in RESP2 (*3\r\n$7\r\nmessage...) and RESP3 (>3\r\n...):
// the type name is a bulk string right after the array header. No JSON or msgpack payload holds "\r\n".
const PUSHES = ["\r\n$7\r\nmessage\r\n", "\r\n$8\r\npmessage\r\n", "\r\n$8\r\nsmessage\r\n"].map((s) => Buffer.from(s));
const CARRY = Math.max(...PUSHES.map((p) => p.length)) - 1;

/**
 * A counting TCP proxy between one server process and Redis: how many pub/sub messages Redis sent
 * that process, whatever its client library or adapter. One tap per process, so the counts are per
 * process. Used in fanout-scale only (it adds a hop).
 */
export class RedisTap {
  pushes = 0;
  bytesFromRedis = 0;
  private readonly sockets = new Set<Socket>();

  private constructor(
    private readonly server: Server,
    readonly port: number,
  ) {}

  static start(redisPort: number): Promise<RedisTap> {
    return new Promise((resolve, reject) => {
      let tap: RedisTap;
      const server = createServer((client) => {
        const upstream = connect(redisPort, "127.0.0.1");
        for (const s of [client, upstream]) {
          s.setNoDelay(true);
          tap.sockets.add(s);
          s.once("close", () => {
            tap.sockets.delete(s);
            client.destroy();
            upstream.destroy();
          });
          s.on("error", () => {});
        }
        client.pipe(upstream);
        let carry = Buffer.alloc(0);
        upstream.on("data", (chunk: Buffer) => {
          tap.bytesFromRedis += chunk.length;
          const window = carry.length ? Buffer.concat([carry, chunk]) : chunk;
          for (const pattern of PUSHES) {
            // Count only matches that end inside the new chunk: the carried bytes were searched before.
            for (let at = window.indexOf(pattern); at >= 0; at = window.indexOf(pattern, at + 1)) {
              if (at + pattern.length > carry.length) tap.pushes++;
            }
          }
          carry = Buffer.from(window.subarray(Math.max(0, window.length - CARRY)));
          if (!client.write(chunk)) {
            upstream.pause();
            client.once("drain", () => upstream.resume());
          }
        });
      });
      server.once("error", reject);
      server.listen(0, "127.0.0.1", () => {
        tap = new RedisTap(server, (server.address() as { port: number }).port);
        resolve(tap);
      });
    });
  }

  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  /** Local ports of the tap's connections to Redis, to match them in CLIENT LIST. */
  upstreamPorts(): number[] {
    return [...this.sockets].filter((s) => s.remotePort !== undefined && s.localPort !== this.port).map((s) => s.localPort!);
  }

  close(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }
}
