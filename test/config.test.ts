import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { readFileSync } from "node:fs";
import { describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import { ConfigError, defaultOptions, loadOptions } from "../src/config.js";

const CLI = fileURLToPath(new URL("../src/cli.js", import.meta.url));
const README = fileURLToPath(new URL("../../README.md", import.meta.url));

const envName = (key: string): string => key.replace(/[A-Z]/g, (c) => `_${c}`).toUpperCase();
const flagName = (key: string): string => `--${key.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`;

function configError(argv: string[], env: NodeJS.ProcessEnv = {}): string {
  try {
    loadOptions(argv, env);
  } catch (err) {
    assert.ok(err instanceof ConfigError, `a ConfigError, got ${String(err)}`);
    return err.message;
  }
  throw new Error(`accepted ${JSON.stringify({ argv, env })}`);
}

/** Runs the command line with a clean environment (plus `env`) and collects what it printed. */
function runCli(args: string[], env: Record<string, string> = {}): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = execFile(process.execPath, [CLI, ...args], { env: { PATH: process.env.PATH ?? "", ...env }, timeout: 10_000 }, (err, stdout, stderr) =>
      resolve({ code: err ? (typeof err.code === "number" ? err.code : null) : 0, stdout, stderr }),
    );
    child.stdin?.end();
  });
}

describe("loadOptions", () => {
  it("has defaults for everything", () => {
    const options = loadOptions([], {});
    assert.equal(options.port, 3000);
    assert.equal(options.host, "");
    assert.equal(options.redisUrl, "");
    assert.equal(options.maxMessageLength, 4000);
    assert.equal(options.maxRoomsPerConnection, 50);
    assert.equal(options.roomCapacity, 0);
    assert.equal(options.historyLimit, 1000);
    assert.equal(options.historyTtl, 86_400_000);
    assert.equal(options.messageRate, 10);
    assert.equal(options.messageBurst, 20);
    assert.equal(options.unsubscribeDelay, 2000);
    assert.equal(options.presenceTimeout, 15_000);
    assert.equal(options.shutdownTimeout, 10_000);
    assert.equal(options.jwtSecret, "");
    assert.equal(options.logLevel, "info");
    assert.deepEqual(defaultOptions({ roomCapacity: 2 }), { ...options, roomCapacity: 2 });
  });

  it("reads the environment variable and the flag of every option, the flag winning", () => {
    assert.equal(loadOptions([], { PORT: "4000" }).port, 4000);
    assert.equal(loadOptions(["--port", "5000"], { PORT: "4000" }).port, 5000);
    assert.equal(loadOptions(["--port=5001"], {}).port, 5001);
    // The flag wins even over a bad environment value, which is then never read.
    assert.equal(loadOptions(["--room-capacity", "2"], { ROOM_CAPACITY: "lots" }).roomCapacity, 2);
    assert.equal(loadOptions([], { MAX_ROOMS_PER_CONNECTION: "7" }).maxRoomsPerConnection, 7);
    assert.equal(loadOptions(["--max-rooms-per-connection", "8"], {}).maxRoomsPerConnection, 8);
    assert.equal(loadOptions([], { MESSAGE_RATE: "0.5" }).messageRate, 0.5);
    assert.equal(loadOptions(["--log-level", "silent"], { LOG_LEVEL: "debug" }).logLevel, "silent");
    assert.equal(loadOptions([], { JWT_SECRET: "0123456789abcdef" }).jwtSecret, "0123456789abcdef");
    assert.equal(loadOptions([], { REDIS_URL: "redis://localhost:6379" }).redisUrl, "redis://localhost:6379");

    // Every option has both names.
    for (const key of Object.keys(loadOptions([], {}))) {
      assert.match(configError([flagName(key)]), /argument missing|expected|invalid/, `${flagName(key)} without a value`);
    }
  });

  it("reads durations in ms, s, m, h, d, or bare seconds", () => {
    const ttl = (raw: string): number => loadOptions([], { UNSUBSCRIBE_DELAY: raw }).unsubscribeDelay;
    assert.equal(ttl("500ms"), 500);
    assert.equal(ttl("15s"), 15_000);
    assert.equal(ttl("1.5s"), 1500);
    assert.equal(ttl("10m"), 600_000);
    assert.equal(ttl("24h"), 86_400_000);
    assert.equal(ttl("2d"), 172_800_000);
    assert.equal(ttl("30"), 30_000);
    assert.equal(loadOptions(["--shutdown-timeout", "250ms"], {}).shutdownTimeout, 250);
    for (const bad of ["10 minutes", "1w", "-5s", "s", "1.2.3s", ""]) {
      assert.match(configError([], { UNSUBSCRIBE_DELAY: bad }), /^invalid UNSUBSCRIBE_DELAY: expected a duration/, JSON.stringify(bad));
    }
    assert.match(configError(["--unsubscribe-delay", "soon"]), /^invalid --unsubscribe-delay: /);
  });

  it("refuses bad values with a message naming the variable or the flag", () => {
    const cases: Array<[string[], NodeJS.ProcessEnv, RegExp]> = [
      [["--port", "abc"], {}, /^invalid --port: expected a whole number \(got "abc"\)$/],
      [[], { PORT: "abc" }, /^invalid PORT: /],
      [[], { PORT: "70000" }, /^invalid PORT: /],
      [[], { PORT: "-1" }, /^invalid PORT: /],
      [[], { PORT: "80.5" }, /^invalid PORT: /],
      [[], { MAX_MESSAGE_LENGTH: "0" }, /^invalid MAX_MESSAGE_LENGTH: /],
      [[], { ROOM_CAPACITY: "-2" }, /^invalid ROOM_CAPACITY: /],
      [[], { HISTORY_LIMIT: "many" }, /^invalid HISTORY_LIMIT: /],
      [[], { MESSAGE_RATE: "0" }, /^invalid MESSAGE_RATE: /],
      [[], { MESSAGE_RATE: "fast" }, /^invalid MESSAGE_RATE: /],
      [["--typing-burst", "0"], {}, /^invalid --typing-burst: /],
      [[], { REDIS_URL: "http://localhost:6379" }, /^invalid REDIS_URL: expected redis:\/\//],
      [[], { REDIS_PREFIX: "has space" }, /^invalid REDIS_PREFIX: /],
      [[], { JWT_SECRET: "short" }, /^invalid JWT_SECRET: expected at least 16 characters/],
      [[], { LOG_LEVEL: "loud" }, /^invalid LOG_LEVEL: /],
      // Durations have bounds: 0 would ping without pause, 30 days overflows Node's timers.
      [[], { PING_INTERVAL: "0" }, /^invalid PING_INTERVAL: must be at least 100 ms/],
      [[], { PING_TIMEOUT: "30d" }, /^invalid PING_TIMEOUT: must be under 24 days/],
      [[], { HISTORY_TTL: "500ms" }, /^invalid HISTORY_TTL: must be at least 1000 ms/],
      [["--redis-timeout", "0"], {}, /^invalid --redis-timeout: must be at least 10 ms/],
      [[], { NODE_ID: "a b" }, /^invalid NODE_ID: /],
      [["--max-buffered-packets", "x"], { MAX_BUFFERED_PACKETS: "5" }, /^invalid --max-buffered-packets: /],
      [["--bogus", "1"], {}, /--bogus/],
      [["serve-me"], {}, /serve-me/],
    ];
    for (const [argv, env, expected] of cases) {
      const message = configError(argv, env);
      assert.match(message, expected, JSON.stringify({ argv, env }));
      assert.ok(!message.includes("\n"), "one line");
    }
  });
});

describe("command line", () => {
  it("exits 2 with one clear line on stderr for a bad flag", async () => {
    const { code, stdout, stderr } = await runCli(["--port", "abc"]);
    assert.equal(code, 2);
    assert.equal(stdout, "");
    assert.equal(stderr, 'roomcast: invalid --port: expected a whole number (got "abc")\n');
  });

  it("exits 2 with one clear line on stderr for a bad environment variable", async () => {
    for (const [name, value] of [["PORT", "abc"], ["HISTORY_TTL", "forever"], ["JWT_SECRET", "short"]] as const) {
      const { code, stdout, stderr } = await runCli([], { [name]: value });
      assert.equal(code, 2, name);
      assert.equal(stdout, "", name);
      assert.match(stderr, new RegExp(`^roomcast: invalid ${name}: [^\\n]+\\n$`), name);
    }
  });

  it("prints every option with its flag and variable on --help", async () => {
    const { code, stdout } = await runCli(["--help"]);
    assert.equal(code, 0);
    for (const key of Object.keys(loadOptions([], {}))) {
      assert.ok(stdout.includes(flagName(key)), flagName(key));
      assert.ok(stdout.includes(envName(key)), envName(key));
    }
  });

  it("is documented: the README names every option's variable and flag", () => {
    const readme = readFileSync(README, "utf8");
    for (const key of Object.keys(loadOptions([], {}))) {
      assert.ok(readme.includes(envName(key)), `README mentions ${envName(key)}`);
      assert.ok(readme.includes(flagName(key)), `README mentions ${flagName(key)}`);
    }
  });
});
