import { spawn, type ChildProcess } from "node:child_process";
import { fileURLToPath } from "node:url";
import { freePort, killOnExit } from "./redis.js";

const CLI = fileURLToPath(new URL("../../src/cli.js", import.meta.url));

/** A roomcast server as a real child process (`node dist/src/cli.js`), so it can be killed. */
export class ServerProcess {
  private stderr = "";
  /** Its log (JSON lines on stdout, LOG_LEVEL warn unless the test sets it). */
  logs = "";

  private constructor(
    readonly child: ChildProcess,
    readonly port: number,
    readonly nodeId: string,
  ) {}

  static async start(env: Record<string, string>, nodeId: string): Promise<ServerProcess> {
    const port = await freePort();
    const child = spawn(process.execPath, [CLI], {
      env: { ...process.env, PORT: String(port), HOST: "127.0.0.1", NODE_ID: nodeId, LOG_LEVEL: "warn", UNSUBSCRIBE_DELAY: "0", ...env },
      stdio: ["ignore", "pipe", "pipe"],
    });
    killOnExit(child);
    const server = new ServerProcess(child, port, nodeId);
    child.stderr!.on("data", (chunk: Buffer) => (server.stderr += chunk.toString()));
    child.stdout!.on("data", (chunk: Buffer) => (server.logs += chunk.toString()));
    await server.waitReady();
    return server;
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  private async waitReady(): Promise<void> {
    const deadline = Date.now() + 15_000;
    for (;;) {
      if (this.child.exitCode !== null) throw new Error(`server ${this.nodeId} exited ${this.child.exitCode}: ${this.stderr}`);
      try {
        const res = await fetch(`${this.url}/readyz`);
        if (res.status === 200) return;
      } catch {
        // not listening yet
      }
      if (Date.now() > deadline) throw new Error(`server ${this.nodeId} not ready: ${this.stderr}`);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }

  async kill(signal: NodeJS.Signals = "SIGKILL"): Promise<number | null> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return this.child.exitCode;
    const exited = new Promise<number | null>((resolve) => this.child.once("exit", (code) => resolve(code)));
    this.child.kill(signal);
    return exited;
  }
}
