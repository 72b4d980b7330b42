import { fork, type ChildProcess } from "node:child_process";
import { fileURLToPath } from "node:url";
import type { ConnectCommand, GeneratorCommand, GeneratorReport, RunCommand, RunResult } from "./generator-protocol.js";
import { exited, stop, track } from "./processes.js";

const GENERATOR = fileURLToPath(new URL("../generator/generator.js", import.meta.url));

type Report<T extends GeneratorReport["type"]> = Extract<GeneratorReport, { type: T }>;

/** The orchestrator's side of one generator process. */
export class GeneratorHandle {
  private readonly waiters: Array<{ type: string; resolve: (r: GeneratorReport) => void; reject: (e: Error) => void }> = [];
  onProgress: (report: Report<"progress">) => void = () => {};
  onWindow: (edge: "start" | "end") => void = () => {};

  private constructor(private readonly child: ChildProcess) {
    child.on("message", (report: GeneratorReport) => {
      if (report.type === "progress") return this.onProgress(report);
      if (report.type === "window") this.onWindow(report.edge);
      if (report.type === "error") return this.failAll(new Error(`generator: ${report.message}`));
      const at = this.waiters.findIndex((w) => w.type === report.type);
      if (at >= 0) this.waiters.splice(at, 1)[0]!.resolve(report);
    });
    child.once("exit", (code, signal) => this.failAll(new Error(`generator exited (${signal ?? code})`)));
  }

  static async start(): Promise<GeneratorHandle> {
    const child = track(fork(GENERATOR, [], { stdio: ["ignore", "inherit", "inherit", "ipc"], detached: true }));
    const handle = new GeneratorHandle(child);
    await handle.next("ready", 15_000);
    return handle;
  }

  get pid(): number {
    return this.child.pid!;
  }

  async connect(cmd: Omit<ConnectCommand, "cmd">, timeoutMs: number): Promise<Report<"connected">> {
    this.send({ cmd: "connect", ...cmd });
    return this.next("connected", timeoutMs);
  }

  async run(cmd: Omit<RunCommand, "cmd">): Promise<RunResult> {
    this.send({ cmd: "run", ...cmd });
    const report = await this.next("result", cmd.warmupMs + cmd.measureMs + cmd.drainMs + 30_000);
    return report.result;
  }

  async status(): Promise<Report<"status">> {
    this.send({ cmd: "status" });
    return this.next("status", 10_000);
  }

  async close(): Promise<void> {
    if (this.child.connected) this.send({ cmd: "close" });
    const timer = setTimeout(() => void stop(this.child, 2000), 3000);
    await exited(this.child);
    clearTimeout(timer);
  }

  private send(cmd: GeneratorCommand): void {
    this.child.send(cmd);
  }

  private next<T extends GeneratorReport["type"]>(type: T, timeoutMs: number): Promise<Report<T>> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        const at = this.waiters.indexOf(waiter);
        if (at >= 0) this.waiters.splice(at, 1);
        reject(new Error(`generator: no ${type} after ${timeoutMs} ms`));
      }, timeoutMs);
      const waiter = {
        type,
        resolve: (r: GeneratorReport) => {
          clearTimeout(timer);
          resolve(r as Report<T>);
        },
        reject: (e: Error) => {
          clearTimeout(timer);
          reject(e);
        },
      };
      this.waiters.push(waiter);
    });
  }

  private failAll(err: Error): void {
    for (const waiter of this.waiters.splice(0)) waiter.reject(err);
  }
}
