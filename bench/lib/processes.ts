import { spawn, type ChildProcess } from "node:child_process";
import { readFileSync } from "node:fs";
import { createServer } from "node:net";

/** Every process the bench started: stopped in reverse order of start, also on Ctrl-C or a crash. */
const children: ChildProcess[] = [];

export function track(child: ChildProcess): ChildProcess {
  children.push(child);
  child.once("exit", () => children.splice(children.indexOf(child), 1));
  return child;
}

export function exited(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => child.once("exit", () => resolve()));
}

/** SIGTERM, then SIGKILL after graceMs: a process that hangs on shutdown cannot hang the bench. */
export async function stop(child: ChildProcess, graceMs = 5000): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  child.kill("SIGTERM");
  const timer = setTimeout(() => child.kill("SIGKILL"), graceMs);
  await exited(child);
  clearTimeout(timer);
}

export async function stopAll(): Promise<void> {
  for (const child of [...children].reverse()) await stop(child, 3000);
}

/** Last resort when the orchestrator exits: no child may outlive it. */
export function killAllNow(): void {
  for (const child of children) child.kill("SIGKILL");
}

/** A free TCP port on loopback (the kernel picks it). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = createServer();
    probe.once("error", reject);
    probe.listen(0, "127.0.0.1", () => {
      const { port } = probe.address() as { port: number };
      probe.close(() => resolve(port));
    });
  });
}

export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

const CLOCK_TICKS = 100; // getconf CLK_TCK on Linux x86-64 and arm64
const PAGE = 4096;

/** CPU time (user + system, all threads) of a process in microseconds, its RSS in bytes, its read and write syscalls and its event loop's wake-ups so far. */
export function procSample(pid: number): { cpuUs: number; rssBytes: number; syscalls: number; wakeups: number } {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  // The command name (field 2) may contain spaces: fields are counted after its closing parenthesis.
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  const utime = Number(fields[11]);
  const stime = Number(fields[12]);
  const rssPages = Number(fields[21]);
  return { cpuUs: ((utime + stime) * 1e6) / CLOCK_TICKS, rssBytes: rssPages * PAGE, syscalls: readWriteSyscalls(pid), wakeups: mainThreadSleeps(pid) };
}

/** The main thread's voluntary context switches: how often the event loop slept and was woken. */
function mainThreadSleeps(pid: number): number {
  try {
    return Number(/voluntary_ctxt_switches:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, "utf8"))?.[1] ?? NaN);
  } catch {
    return NaN;
  }
}

/** syscr + syscw from /proc/<pid>/io: every read, write, readv, writev... (not epoll_wait). */
function readWriteSyscalls(pid: number): number {
  try {
    const io = readFileSync(`/proc/${pid}/io`, "utf8");
    return Number(/syscr: (\d+)/.exec(io)?.[1] ?? NaN) + Number(/syscw: (\d+)/.exec(io)?.[1] ?? NaN);
  } catch {
    return NaN; // not readable (another user's process): the figure shows as n/a
  }
}

/** Busy and total CPU time of the whole machine (all cores), in microseconds, from /proc/stat. */
export function machineSample(): { busyUs: number; totalUs: number } {
  const line = readFileSync("/proc/stat", "utf8").split("\n")[0]!;
  const values = line.trim().split(/\s+/).slice(1, 9).map(Number);
  const [user, nice, system, idle, iowait, irq, softirq, steal] = values as [number, number, number, number, number, number, number, number];
  const total = user + nice + system + idle + iowait + irq + softirq + steal;
  return { busyUs: ((total - idle - iowait) * 1e6) / CLOCK_TICKS, totalUs: (total * 1e6) / CLOCK_TICKS };
}

export interface Launched {
  child: ChildProcess;
  /** The last lines it printed, for error reports. */
  output: () => string;
}

/** Spawns a process in its own process group (Ctrl-C reaches only the orchestrator, which stops it). */
export function launch(command: string, args: string[], env: Record<string, string>): Launched {
  const child = track(spawn(command, args, { env: { ...process.env, ...env }, stdio: ["ignore", "pipe", "pipe"], detached: true }));
  let tail = "";
  const keep = (chunk: Buffer): void => {
    tail = (tail + chunk.toString()).slice(-4000);
  };
  child.stdout!.on("data", keep);
  child.stderr!.on("data", keep);
  return { child, output: () => tail };
}

/** Polls GET url until it answers 200; throws with the process's output if it exits or times out. */
export async function waitHttpReady(url: string, launched: Launched, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (launched.child.exitCode !== null) throw new Error(`${url}: process exited ${launched.child.exitCode}: ${launched.output()}`);
    try {
      const res = await fetch(url);
      if (res.status === 200) return;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) throw new Error(`${url}: not ready after ${timeoutMs} ms: ${launched.output()}`);
    await sleep(100);
  }
}
