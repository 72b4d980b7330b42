#!/usr/bin/env node
import { createRequire } from "node:module";
import { ConfigError, loadOptions, optionsHelp } from "./config.js";
import { createChatServer } from "./server.js";

const USAGE = `roomcast: real-time chat server

Usage:
  roomcast [serve] [options]        run the server (every option also reads its environment variable)
  roomcast chat --url URL --room ROOM --name NAME   terminal chat client

Options:
${optionsHelp()}

Durations: 500ms, 15s, 10m, 24h, 1d, or a number of seconds. Flags win over variables.`;

async function main(argv: string[]): Promise<void> {
  const [command, ...rest] = argv;
  if (command === "--help" || command === "-h" || command === "help") {
    process.stdout.write(`${USAGE}\n`);
    return;
  }
  if (command === "--version" || command === "-v") {
    const { version } = createRequire(import.meta.url)("../../package.json") as { version: string };
    process.stdout.write(`roomcast ${version}\n`);
    return;
  }
  if (command === "chat") {
    const { runChatClient } = await import("./clients/terminal/chat-cli.js");
    process.exitCode = await runChatClient(rest);
    return;
  }
  const serveArgs = command === "serve" ? rest : argv;
  if (serveArgs.includes("--help") || serveArgs.includes("-h")) {
    process.stdout.write(`${USAGE}\n`);
    return;
  }
  await serve(serveArgs);
}

async function serve(args: string[]): Promise<void> {
  let options;
  try {
    options = loadOptions(args, process.env);
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    process.stderr.write(`roomcast: ${err.message}\n`);
    process.exit(2);
  }
  const server = await createChatServer(options);
  const address = await server.listen().catch((err: NodeJS.ErrnoException) => {
    if (err.code === "EADDRINUSE") throw new Error(`port ${options.port} is already in use: set PORT (or --port) to another one`);
    throw err;
  });
  const shown = address.family === "IPv6" && address.address === "::" ? "localhost" : address.address;
  server.logger.info({ port: address.port, bus: options.redisUrl ? "redis" : "memory" }, `roomcast listening on http://${shown.includes(":") ? `[${shown}]` : shown}:${address.port}`);

  const shutdown = (signal: string): void => {
    server.logger.info({ signal }, "shutting down");
    const timer = setTimeout(() => {
      server.logger.error("shutdown timed out");
      process.exit(1);
    }, options.shutdownTimeout);
    timer.unref(); // must not keep the process alive
    server.close().then(
      () => process.exit(0),
      (err: unknown) => {
        server.logger.error({ err }, "shutdown failed");
        process.exit(1);
      },
    );
  };
  process.once("SIGTERM", () => shutdown("SIGTERM"));
  process.once("SIGINT", () => shutdown("SIGINT"));
}

main(process.argv.slice(2)).catch((err: unknown) => {
  process.stderr.write(`roomcast: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
