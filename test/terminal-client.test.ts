import assert from "node:assert/strict";
import { execFile, execFileSync, spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, afterEach, before, describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { TestClient, waitUntil, waitUntilAsync } from "./helpers/client.js";
import { AdmissionGate, dropConnections, startServer, type RunningServer } from "./helpers/server.js";

/** Holds a user's reconnect at the door, so that what it misses is missed for real. */
const gate = new AdmissionGate();
const CLI = fileURLToPath(new URL("../src/cli.js", import.meta.url));
const LINE = (room: string, name: string, text: string) => new RegExp(`^\\[${room}\\] \\d\\d:\\d\\d ${name}: ${text.replace(/[\\^$.*+?()[\]{}|]/g, "\\$&")}$`);

/** `node dist/src/cli.js chat ...` as a child process with piped stdio. */
class ChatProcess {
  stdout = "";
  stderr = "";
  readonly exited: Promise<number | null>;
  private readonly child: ChildProcess;

  constructor(args: string[]) {
    this.child = spawn(process.execPath, [CLI, "chat", ...args], { stdio: ["pipe", "pipe", "pipe"] });
    this.child.stdout!.on("data", (chunk: Buffer) => (this.stdout += chunk.toString()));
    this.child.stderr!.on("data", (chunk: Buffer) => (this.stderr += chunk.toString()));
    this.exited = new Promise((resolve) => this.child.once("exit", (code) => resolve(code)));
  }

  get lines(): string[] {
    return this.stdout.split("\n").filter(Boolean);
  }

  write(text: string): void {
    this.child.stdin!.write(text);
  }

  end(text = ""): void {
    this.child.stdin!.end(text);
  }

  async exit(timeoutMs = 10_000): Promise<number | null> {
    const timer = setTimeout(() => this.child.kill("SIGKILL"), timeoutMs);
    const code = await this.exited;
    clearTimeout(timer);
    return code;
  }

  kill(): void {
    if (this.child.exitCode === null) this.child.kill("SIGKILL");
  }
}

describe("terminal client, piped (scripts)", () => {
  let srv: RunningServer;
  const procs: ChatProcess[] = [];
  const clients: TestClient[] = [];
  const chat = (...args: string[]) => {
    const p = new ChatProcess(["--url", srv.url, ...args]);
    procs.push(p);
    return p;
  };
  const connect = async (name: string) => {
    const c = await TestClient.connect(srv.url, { name });
    clients.push(c);
    return c;
  };
  /**
   * The child says "here" and `watcher` hears it: the child's join is complete, so whatever is
   * sent from now on reaches it live (a presence event alone comes before the join's handover).
   */
  const hereFrom = async (watcher: TestClient, child: ChatProcess, end = false) => {
    if (end) child.end("here\n");
    else child.write("here\n");
    await watcher.until(() => watcher.messages.some((m) => m.text === "here"), "the child's first line");
  };

  before(async () => (srv = await startServer({ maxMessageLength: 100, admit: gate.admit })));
  afterEach(() => {
    for (const p of procs.splice(0)) p.kill();
    for (const c of clients.splice(0)) c.close();
  });
  after(() => srv.close());

  it("sends each piped line in order, prints them as received, and exits 0", async () => {
    const bob = await connect("bob");
    await bob.joinOk("pipe");
    const ann = chat("--room", "pipe", "--name", "ann");
    ann.end("one\ntwo\n\nthree\n");
    assert.equal(await ann.exit(), 0, ann.stderr);
    assert.equal(ann.stderr, "");
    await bob.until(() => bob.messages.length === 3, "three messages");
    assert.deepEqual(bob.messages.map((m) => [m.from.name, m.text]), [["ann", "one"], ["ann", "two"], ["ann", "three"]]);
    assert.equal(ann.lines.length, 3, ann.stdout);
    ann.lines.forEach((line, i) => assert.match(line, LINE("pipe", "ann", ["one", "two", "three"][i]!)));
  });

  it("prints what others send, one message per line, control characters defused", async () => {
    const bob = await connect("bob");
    await bob.joinOk("listen");
    const ann = chat("--room", "listen", "--name", "ann");
    await hereFrom(bob, ann);
    await bob.sendOk("listen", "hello ann");
    await bob.sendOk("listen", "two\nlines");
    await bob.sendOk("listen", "\u001b[31mred\u001b[0m");
    await waitUntil(() => ann.lines.length === 4, `four lines, got ${JSON.stringify(ann.stdout)}`);
    assert.match(ann.lines[0]!, LINE("listen", "ann", "here"));
    assert.match(ann.lines[1]!, LINE("listen", "bob", "hello ann"));
    assert.match(ann.lines[2]!, LINE("listen", "bob", "two\\nlines"));
    assert.match(ann.lines[3]!, LINE("listen", "bob", "^[[31mred^[[0m"));
    assert.ok(!ann.stdout.includes("\u001b"), "no escape character reaches the terminal");
    ann.end();
    assert.equal(await ann.exit(), 0);
  });

  it("keeps listening for --wait-ms after stdin ends, and shows --history on join", async () => {
    const bob = await connect("bob");
    await bob.joinOk("waiting");
    await bob.sendOk("waiting", "old news");
    const ann = chat("--room", "waiting", "--name", "ann", "--wait-ms", "1500", "--history", "5");
    await hereFrom(bob, ann, true);
    await bob.sendOk("waiting", "fresh");
    assert.equal(await ann.exit(), 0);
    assert.equal(ann.lines.length, 3, ann.stdout);
    assert.match(ann.lines[0]!, LINE("waiting", "bob", "old news"));
    assert.match(ann.lines[1]!, LINE("waiting", "ann", "here"));
    assert.match(ann.lines[2]!, LINE("waiting", "bob", "fresh"));
  });

  it("runs commands from stdin: /join sends to the new room, /who answers on stdout", async () => {
    const bob = await connect("bob");
    await bob.joinOk("second");
    const ann = chat("--room", "first", "--name", "ann");
    ann.end("in first\n/join second\nin second\n/who\n//slash\n");
    assert.equal(await ann.exit(), 0, ann.stderr);
    await bob.until(() => bob.messages.length === 2, "two messages in second");
    assert.deepEqual(bob.messages.map((m) => m.text), ["in second", "/slash"]);
    assert.ok(ann.lines.includes("#second: 2 members: ann (you), bob"), ann.stdout);
  });

  it("reports a refused message on stderr with its code, sends the rest, and exits 1", async () => {
    const bob = await connect("bob");
    await bob.joinOk("refused");
    const ann = chat("--room", "refused", "--name", "ann");
    ann.end(`fine\n${"x".repeat(150)}\nalso fine\n`);
    assert.equal(await ann.exit(), 1);
    assert.match(ann.stderr, /too_large/);
    await bob.until(() => bob.messages.length === 2, "the two good lines");
    assert.deepEqual(bob.messages.map((m) => m.text), ["fine", "also fine"]);
  });

  it("exits 1 when the server cannot be reached, and 2 on a bad command line", async () => {
    const closed = await startServer();
    const url = closed.url;
    await closed.close();
    const nobody = new ChatProcess(["--url", url, "--room", "x", "--connect-timeout-ms", "800"]);
    procs.push(nobody);
    nobody.end("hello\n");
    assert.equal(await nobody.exit(), 1);
    assert.match(nobody.stderr, /could not join #x/);
    const bad = chat("--room", "not a room");
    assert.equal(await bad.exit(), 2);
    assert.match(bad.stderr, /--room/);
  });

  it("reconnects after a dropped connection and prints what it missed, once, in order", async () => {
    const bob = await connect("bob");
    await bob.joinOk("again");
    const ann = chat("--room", "again", "--name", "ann");
    await hereFrom(bob, ann);
    await bob.sendOk("again", "before");
    await waitUntil(() => ann.lines.length === 2, "before");

    // Hold ann's reconnect until bob has sent, so the messages are missed for real.
    const release = gate.hold("ann");
    const leaves = bob.received("presence").length;
    assert.equal(dropConnections(srv, "ann"), 1);
    await bob.until(() => bob.received("presence").length > leaves, "ann drops");
    for (const text of ["missed 1", "missed 2", "missed 3"]) await bob.sendOk("again", text);
    release();

    await waitUntil(() => ann.lines.length === 5, `five lines, got ${JSON.stringify(ann.stdout)}`);
    await bob.sendOk("again", "after");
    await waitUntil(() => ann.lines.length === 6, `six lines, got ${JSON.stringify(ann.stdout)}`);
    assert.match(ann.lines[0]!, LINE("again", "ann", "here"));
    ann.lines.slice(1).forEach((line, i) => assert.match(line, LINE("again", "bob", ["before", "missed 1", "missed 2", "missed 3", "after"][i]!)));
    ann.end();
    assert.equal(await ann.exit(), 0);
  });
});

describe("terminal client, interactive under tmux", () => {
  const exec = promisify(execFile);
  const socket = `roomcast-test-${process.pid}`;
  const tmux = (...args: string[]) => exec("tmux", ["-L", socket, ...args]);
  let srv: RunningServer;
  let dir: string;
  const clients: TestClient[] = [];

  const screen = async (session: string) => (await tmux("capture-pane", "-p", "-t", session)).stdout;
  const waitScreen = async (session: string, what: string, test: (text: string) => boolean) => {
    let last = "";
    try {
      await waitUntilAsync(async () => test((last = await screen(session))), what);
    } catch (err) {
      throw new Error(`${(err as Error).message}; the screen:\n${last}`);
    }
  };

  before(async () => {
    try {
      execFileSync("tmux", ["-V"]);
    } catch {
      throw new Error("tmux not found: install it (apt-get install -y tmux). The interactive tests do not skip.");
    }
    srv = await startServer();
    dir = mkdtempSync(join(tmpdir(), "roomcast-tty-"));
  });
  after(async () => {
    for (const c of clients) c.close();
    await tmux("kill-server").catch(() => {});
    rmSync(dir, { recursive: true, force: true });
    await srv.close();
  });

  it("chats at a prompt: sends typed lines, shows others' messages, answers commands, quits", async () => {
    const bob = await TestClient.connect(srv.url, { name: "bob" });
    clients.push(bob);
    await bob.joinOk("tty");
    await bob.sendOk("tty", "earlier");
    const status = join(dir, "exit-status");
    const command = `'${process.execPath}' '${CLI}' chat --url ${srv.url} --room tty --name ann; echo $? > '${status}'`;
    await tmux("new-session", "-d", "-s", "ann", "-x", "100", "-y", "30", command);

    await waitScreen("ann", "joined", (s) => s.includes("* joined #tty: 2 members") && /^tty>\s*$/m.test(s));
    assert.match(await screen("ann"), /^\[tty\] \d\d:\d\d bob: earlier$/m, "recent history on join");

    await tmux("send-keys", "-t", "ann", "hello from a terminal", "Enter");
    await bob.until(() => bob.messages.some((m) => m.text === "hello from a terminal"), "ann's line");
    // The typed line gives way to the confirmed message: it shows once.
    await waitScreen("ann", "own message", (s) => /^\[tty\] \d\d:\d\d ann: hello from a terminal$/m.test(s));
    assert.equal((await screen("ann")).split("hello from a terminal").length - 1, 1);

    // A message arriving mid-typing keeps the half-typed line at the prompt.
    await tmux("send-keys", "-t", "ann", "half typ");
    await waitScreen("ann", "typed", (s) => s.includes("tty> half typ"));
    await bob.sendOk("tty", "hi ann");
    await waitScreen("ann", "bob's message", (s) => /^\[tty\] \d\d:\d\d bob: hi ann$/m.test(s) && /tty> half typ$/m.test(s));
    await tmux("send-keys", "-t", "ann", "C-u");

    // Others typing show in the prompt, and go when their message arrives.
    bob.socket.emit("typing", { room: "tty" });
    await waitScreen("ann", "bob typing", (s) => /^tty \(bob typing\)>\s*$/m.test(s));
    await bob.sendOk("tty", "done typing");
    await waitScreen("ann", "typing ends", (s) => /bob: done typing$/m.test(s) && /^tty>\s*$/m.test(s));

    await tmux("send-keys", "-t", "ann", "/who", "Enter");
    await waitScreen("ann", "/who", (s) => s.includes("* #tty: 2 members: ann (you), bob"));
    await tmux("send-keys", "-t", "ann", "/join side", "Enter");
    await waitScreen("ann", "/join", (s) => s.includes("* joined #side") && /^side>\s*$/m.test(s));
    await tmux("send-keys", "-t", "ann", "/rooms", "Enter");
    await waitScreen("ann", "/rooms", (s) => s.includes("* rooms: #tty, #side (current)"));
    await tmux("send-keys", "-t", "ann", "/quit", "Enter");
    await waitUntilAsync(async () => readStatus(status) !== undefined, "exit");
    assert.equal(readStatus(status), "0");
  });
});

function readStatus(file: string): string | undefined {
  try {
    return readFileSync(file, "utf8").trim() || undefined;
  } catch {
    return undefined;
  }
}
