import { createReadStream, existsSync, statSync } from "node:fs";
import type { IncomingMessage, ServerResponse } from "node:http";
import { extname, join, normalize, resolve, sep } from "node:path";
import type { Readiness } from "../bus/broker.js";
import type { Metrics } from "../metrics.js";

export interface HttpHandlerDeps {
  nodeId: string;
  metrics: Metrics;
  /** Ready to take traffic: the bus is up (or serves some rooms: degraded) and the server is not draining. */
  readiness: () => Readiness;
  connections: () => number;
  /** Folder of the built web client; served at /. */
  webRoot?: string | undefined;
}

export type HttpHandler = (req: IncomingMessage, res: ServerResponse, next?: () => void) => void;

const TYPES: Record<string, string> = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".css": "text/css; charset=utf-8",
  ".svg": "image/svg+xml",
  ".png": "image/png",
  ".ico": "image/x-icon",
  ".json": "application/json",
  ".map": "application/json",
};

/**
 * Health, readiness, metrics and the web client. Usable as a plain request listener or as
 * express/connect middleware (it calls `next` for paths it does not serve).
 */
export function createHttpHandler(deps: HttpHandlerDeps): HttpHandler {
  const started = Date.now();
  // Absolute and without a trailing separator: the containment check below compares prefixes.
  const webRoot = deps.webRoot ? resolve(deps.webRoot) : undefined;
  return (req, res, next) => {
    const path = (req.url ?? "/").split("?")[0]!;
    if (req.method !== "GET" && req.method !== "HEAD") return notFound(res, next);
    switch (path) {
      case "/healthz":
        return json(res, 200, { status: "ok", node: deps.nodeId, connections: deps.connections(), uptimeSeconds: Math.round((Date.now() - started) / 1000) });
      case "/readyz": {
        // Degraded stays in rotation: every process shares the same cluster, so taking them out
        // would stop the rooms that still work as well.
        const status = deps.readiness();
        return json(res, status === "unavailable" ? 503 : 200, { status, node: deps.nodeId });
      }
      case "/metrics":
        deps.metrics.registry.metrics().then(
          (text) => {
            res.writeHead(200, { "content-type": deps.metrics.registry.contentType });
            res.end(text);
          },
          () => json(res, 500, { status: "error" }),
        );
        return;
      default:
        if (!serveStatic(webRoot, path, res)) notFound(res, next);
    }
  };
}

function serveStatic(root: string | undefined, path: string, res: ServerResponse): boolean {
  if (!root) return false;
  let file: string;
  try {
    file = normalize(join(root, decodeURIComponent(path === "/" ? "/index.html" : path)));
  } catch {
    return false;
  }
  if (!file.startsWith(root + sep) || !existsSync(file) || !statSync(file).isFile()) return false;
  res.writeHead(200, {
    "content-type": TYPES[extname(file)] ?? "application/octet-stream",
    "cache-control": "no-cache",
    "x-content-type-options": "nosniff",
  });
  createReadStream(file).pipe(res);
  return true;
}

function json(res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { "content-type": "application/json" });
  res.end(JSON.stringify(body));
}

function notFound(res: ServerResponse, next?: () => void): void {
  if (next) return next();
  json(res, 404, { status: "not found" });
}
