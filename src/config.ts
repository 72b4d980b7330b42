import { parseArgs } from "node:util";
import { z } from "zod";

/** Accepts "500ms", "15s", "10m", "24h", "1d", or a bare number of seconds. */
const Duration = z.string().transform((raw, ctx) => {
  const match = /^(\d+(?:\.\d+)?)(ms|s|m|h|d)?$/.exec(raw.trim());
  if (!match) {
    ctx.addIssue({ code: "custom", message: "expected a duration: 500ms, 15s, 10m, 24h, 1d, or a number of seconds" });
    return z.NEVER;
  }
  const unit = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 }[match[2] ?? "s"]!;
  return Math.round(Number(match[1]) * unit);
});
/** Node's timers hold at most 2^31 - 1 ms (about 24.8 days); longer ones fire at once. */
const TIMER_MAX_MS = 2 ** 31 - 1;
const duration = (minMs: number, maxMs = TIMER_MAX_MS) =>
  Duration.pipe(
    z
      .number()
      .min(minMs, `must be at least ${minMs} ms`)
      .max(maxMs, maxMs === TIMER_MAX_MS ? "must be under 24 days (Node's timer limit)" : `must be at most ${maxMs} ms`),
  );
const int = (min: number, max: number) =>
  z
    .string()
    .regex(/^\d+$/, "expected a whole number")
    .transform(Number)
    .pipe(z.number().int().min(min).max(max));
const rate = z
  .string()
  .regex(/^\d+(\.\d+)?$/, "expected a number of events per second")
  .transform(Number)
  .pipe(z.number().positive().max(1_000_000));
const oneOf = <T extends string>(...values: [T, ...T[]]) => z.enum(values);

/**
 * Every option: its environment variable is the SCREAMING_CASE of the key, its flag the
 * kebab-case (`maxMessageLength` -> MAX_MESSAGE_LENGTH, --max-message-length). Flags win.
 */
const OPTIONS = {
  port: { schema: int(0, 65535), default: "3000", help: "HTTP port" },
  host: { schema: z.string().min(1), default: "", help: "interface to bind (default: all)" },
  redisUrl: { schema: z.string().regex(/^rediss?:\/\//, "expected redis://host:port"), default: "", help: "Redis for scale-out; empty = in-memory bus" },
  redisMode: { schema: oneOf("single", "cluster"), default: "single", help: "cluster: REDIS_URL is a node of a Redis Cluster; rooms spread over its shards (sharded pub/sub)" },
  redisPrefix: { schema: z.string().regex(/^[\w:.-]{1,64}$/, "expected 1-64 of A-Z a-z 0-9 _ : . -"), default: "roomcast:", help: "prefix of every Redis key and channel" },
  redisTimeout: { schema: duration(10), default: "2s", help: "longest wait for one Redis command before answering unavailable" },
  maxMessageLength: { schema: int(1, 1_000_000), default: "4000", help: "characters per message" },
  maxRoomsPerConnection: { schema: int(1, 10_000), default: "50", help: "rooms one connection may be in" },
  roomCapacity: { schema: int(0, 1_000_000), default: "0", help: "users per room, 0 = unlimited" },
  historyLimit: { schema: int(1, 1_000_000), default: "1000", help: "messages kept per room" },
  historyTtl: { schema: duration(1000, 10 * 365 * 86_400_000), default: "1d", help: "an idle room's history expires after this (over Redis up to 2 min later)" },
  messageRate: { schema: rate, default: "10", help: "messages per second per connection" },
  messageBurst: { schema: int(1, 1_000_000), default: "20", help: "messages at once per connection" },
  typingRate: { schema: rate, default: "2", help: "typing events per second per connection" },
  typingBurst: { schema: int(1, 1_000_000), default: "5", help: "typing events at once per connection" },
  joinRate: { schema: rate, default: "5", help: "joins per second per connection" },
  joinBurst: { schema: int(1, 1_000_000), default: "60", help: "joins at once per connection (a reconnect rejoins every room)" },
  historyRate: { schema: rate, default: "5", help: "history reads per second per connection (history requests, and joins of a room already joined)" },
  historyBurst: { schema: int(1, 1_000_000), default: "30", help: "history reads at once per connection" },
  unsubscribeDelay: { schema: duration(0), default: "2s", help: "keep a room subscribed this long after its last local member left" },
  presenceTimeout: { schema: duration(1000), default: "15s", help: "a dead process's users leave presence within this" },
  websocketTransport: { schema: oneOf("direct", "socketio"), default: "direct", help: "direct: WebSocket clients are served by roomcast's lean Socket.IO layer over ws (less memory and CPU); socketio: by Socket.IO itself" },
  pingInterval: { schema: duration(100), default: "25s", help: "how often the server pings each client (keeps proxies from closing idle connections)" },
  pingTimeout: { schema: duration(100), default: "20s", help: "a client that does not answer a ping within this is disconnected" },
  maxBufferedPackets: { schema: int(1, 10_000_000), default: "1000", help: "unsent packets before a slow connection is closed" },
  shutdownTimeout: { schema: duration(0), default: "10s", help: "longest graceful shutdown before exit" },
  jwtSecret: { schema: z.string().min(16, "expected at least 16 characters"), default: "", help: "HS256 secret; when set, a valid token is required", secret: true },
  corsOrigin: { schema: z.string(), default: "", help: "allowed browser origins, comma-separated; empty = same origin only" },
  nodeId: { schema: z.string().regex(/^[\w.:-]{1,64}$/, "expected 1-64 of A-Z a-z 0-9 _ . : -"), default: "", help: "this process's id (default: host name + random)" },
  logLevel: { schema: oneOf("trace", "debug", "info", "warn", "error", "fatal", "silent"), default: "info", help: "log level" },
} as const;

type OptionKey = keyof typeof OPTIONS;
export type ChatOptions = { [K in OptionKey]: z.output<(typeof OPTIONS)[K]["schema"]> };

export class ConfigError extends Error {}

const envName = (key: string): string => key.replace(/[A-Z]/g, (c) => `_${c}`).toUpperCase();
const flagName = (key: string): string => key.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);

/** Reads options from flags, then the environment, then defaults; throws ConfigError naming the bad one. */
export function loadOptions(argv: string[], env: NodeJS.ProcessEnv): ChatOptions {
  const flags = parseFlags(argv);
  const result: Record<string, unknown> = {};
  for (const [key, spec] of Object.entries(OPTIONS) as [OptionKey, (typeof OPTIONS)[OptionKey]][]) {
    const source = flags[key] !== undefined ? `--${flagName(key)}` : env[envName(key)] !== undefined ? envName(key) : undefined;
    const raw = flags[key] ?? env[envName(key)] ?? spec.default;
    if (raw === "" && spec.default === "") {
      result[key] = "";
      continue;
    }
    const parsed = (spec.schema as z.ZodType).safeParse(raw);
    if (!parsed.success) {
      // A secret's value must not end up in logs: say only how long it was.
      const got = "secret" in spec ? `a value of ${raw.length} characters` : `"${raw}"`;
      throw new ConfigError(`invalid ${source ?? key}: ${parsed.error.issues[0]?.message ?? "bad value"} (got ${got})`);
    }
    result[key] = parsed.data;
  }
  return result as ChatOptions;
}

/** Defaults for library use: `createChatServer({ roomCapacity: 2 })`. */
export function defaultOptions(overrides: Partial<ChatOptions> = {}): ChatOptions {
  return { ...loadOptions([], {}), ...overrides };
}

export function optionsHelp(): string {
  return Object.entries(OPTIONS)
    .map(([key, spec]) => `  --${flagName(key).padEnd(26)} ${envName(key).padEnd(26)} ${spec.help}${spec.default ? ` (default ${spec.default})` : ""}`)
    .join("\n");
}

function parseFlags(argv: string[]): Partial<Record<OptionKey, string>> {
  const spec = Object.fromEntries(Object.keys(OPTIONS).map((key) => [flagName(key), { type: "string" as const }]));
  try {
    const { values } = parseArgs({ args: argv, options: spec, strict: true, allowPositionals: false });
    const out: Partial<Record<OptionKey, string>> = {};
    for (const key of Object.keys(OPTIONS) as OptionKey[]) {
      const value = values[flagName(key)];
      if (typeof value === "string") out[key] = value;
    }
    return out;
  } catch (err) {
    throw new ConfigError(`${(err as Error).message.split("\n")[0] ?? "bad command line"} (see --help)`);
  }
}
