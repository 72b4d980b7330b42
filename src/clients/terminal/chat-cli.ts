/**
 * `roomcast chat`: the terminal client. Interactive with a terminal on stdin (a prompt, commands,
 * status lines); otherwise a filter for scripts: lines in are sent, messages out one per line.
 * The protocol, the rooms and reconnect recovery are the shared ChatClient's, as in the web page.
 */
import { clearLine, clearScreenDown, createInterface, cursorTo, moveCursor, type Interface } from "node:readline";
import { HISTORY_MAX_LIMIT, ROOM_NAME_PATTERN } from "../../protocol.js";
import { ChatClient, type ChatEvent, type Outcome } from "../shared/chat-client.js";
import { TYPING_SHOW_MS, type JoinOutcome, type RoomState } from "../shared/room-state.js";
import { describeChanges } from "../shared/format.js";
import { ArgsError, CHAT_USAGE, parseChatArgs, type ChatArgs } from "./args.js";
import { formatMessage, Printer, sanitize } from "./output.js";

const COMMANDS = `Commands:
  /join ROOM      join a room (or switch to one you are in); your lines go there
  /leave [ROOM]   leave a room (default: the current one)
  /who            who is in the current room
  /rooms          the rooms you are in
  /history [N]    show N older messages of the current room (default 20)
  /help           this list
  /quit           leave (Ctrl+D and Ctrl+C too)
A line starting with // sends a message starting with /.`;

const INTERACTIVE_HISTORY = 20;

export async function runChatClient(argv: string[]): Promise<number> {
  let args: ChatArgs;
  try {
    args = parseChatArgs(argv, process.env);
  } catch (err) {
    if (!(err instanceof ArgsError)) throw err;
    process.stderr.write(`roomcast chat: ${err.message}\n\n${CHAT_USAGE}\n`);
    return 2;
  }
  if (args.help) {
    process.stdout.write(`${CHAT_USAGE}\n`);
    return 0;
  }
  return new TerminalChat(args, Boolean(process.stdin.isTTY)).run();
}

class TerminalChat {
  private readonly client: ChatClient;
  private readonly printer = new Printer();
  private readonly historyOnJoin: number;
  private rl: Interface | undefined;
  private current: string | undefined;
  private failures = 0;
  private finished = false;
  private resolveRun!: (code: number) => void;
  private readonly timers: Array<ReturnType<typeof setTimeout>> = [];
  /** Redraws the prompt when "X typing" runs out. */
  private typingTimer: ReturnType<typeof setTimeout> | undefined;

  constructor(
    private readonly args: ChatArgs,
    private readonly interactive: boolean,
  ) {
    this.client = new ChatClient({ url: args.url, name: args.name, token: args.token, retryRateLimited: true });
    this.historyOnJoin = args.history ?? (interactive ? INTERACTIVE_HISTORY : 0);
    this.current = args.rooms[0];
  }

  run(): Promise<number> {
    const done = new Promise<number>((resolve) => (this.resolveRun = resolve));
    this.client.on((event) => this.onEvent(event));
    process.once("SIGTERM", () => this.finish());
    this.client.connect();
    const joins = Promise.all(this.args.rooms.map((room) => this.client.join(room)));
    if (this.interactive) this.startInteractive();
    else void this.runPiped(joins);
    return done;
  }

  // ------------------------------------------------------------------ modes

  private startInteractive(): void {
    const rl = createInterface({ input: process.stdin, output: process.stdout, terminal: true, historySize: 200, prompt: this.prompt() });
    this.rl = rl;
    this.printer.attach(rl);
    this.info(`connecting to ${this.args.url}… (/help for commands)`);
    rl.on("line", (line) => {
      this.eraseTypedLine(line);
      void this.handleLine(line, false);
    });
    rl.on("SIGINT", () => this.finish());
    rl.on("close", () => this.finish());
    // readline turns stdin into keypress events: each one tells the room we are typing.
    process.stdin.on("keypress", (_text: string | undefined, key: { name?: string } | undefined) => {
      if (this.current && key?.name !== "return" && !this.rl?.line.startsWith("/")) this.client.typing(this.current);
    });
    rl.prompt();
  }

  /** Sends each line in order, each after the previous one's ack; then exits, or listens on. */
  private async runPiped(joins: Promise<Outcome[]>): Promise<void> {
    process.once("SIGINT", () => this.finish());
    const timeout = setTimeout(() => {
      this.error(`could not join ${this.args.rooms.map((r) => `#${r}`).join(", ")} at ${this.args.url} within ${this.args.connectTimeoutMs} ms (${this.client.state})`);
      this.finish(1);
    }, this.args.connectTimeoutMs);
    this.timers.push(timeout);
    const joined = joins.then((outcomes) => {
      clearTimeout(timeout);
      if (outcomes.some((o) => !o.ok)) this.finish(1); // join-failed already said why
    });
    const rl = createInterface({ input: process.stdin, crlfDelay: Infinity, terminal: false });
    this.rl = rl;
    for await (const line of rl) {
      if (this.finished) return;
      await this.handleLine(line, true);
    }
    await joined;
    if (this.finished) return;
    if (this.args.stay) return; // until SIGINT or SIGTERM
    if (this.args.waitMs > 0) this.timers.push(setTimeout(() => this.finish(), this.args.waitMs));
    else this.finish();
  }

  private finish(code = this.failures > 0 ? 1 : 0): void {
    if (this.finished) return;
    this.finished = true;
    for (const timer of this.timers) clearTimeout(timer);
    clearTimeout(this.typingTimer);
    this.printer.attach(undefined);
    this.client.close();
    this.rl?.close();
    process.stdin.destroy(); // nothing more to read; lets the process exit
    this.resolveRun(code);
  }

  // ------------------------------------------------------------------ input

  private async handleLine(raw: string, wait: boolean): Promise<void> {
    const line = raw.replace(/\r$/, "");
    if (line.trim().length === 0) return this.reprompt();
    if (line.startsWith("//")) return this.sendText(line.slice(1), wait);
    if (line.startsWith("/")) return this.command(line);
    return this.sendText(line, wait);
  }

  private async sendText(text: string, wait: boolean): Promise<void> {
    const room = this.current;
    if (!room) {
      this.error("not in any room: /join ROOM first");
      this.failures++;
      return this.reprompt();
    }
    const sent = this.client.send(room, text).then((outcome) => {
      if (outcome.ok) return;
      this.failures++;
      this.error(`not sent to #${room}: ${outcome.error.code}: ${outcome.error.message}`);
    });
    this.reprompt();
    if (wait) await sent;
  }

  private async command(line: string): Promise<void> {
    const [name = "", ...rest] = line.slice(1).trim().split(/\s+/);
    const arg = rest[0]?.replace(/^#/, "");
    switch (name.toLowerCase()) {
      case "help":
      case "?":
        this.reply(COMMANDS);
        break;
      case "quit":
      case "exit":
      case "q":
        this.finish();
        return;
      case "join":
        await this.joinCommand(arg);
        break;
      case "leave":
      case "part":
        await this.leaveCommand(arg ?? this.current);
        break;
      case "who":
      case "members": {
        const room = this.roomOrSay(arg ?? this.current);
        if (room) {
          const self = this.client.selfIds;
          const names = [...room.members.values()].sort((a, b) => a.name.localeCompare(b.name)).map((m) => sanitize(m.name) + (self.has(m.id) ? " (you)" : ""));
          this.reply(`#${room.name}: ${names.length} ${names.length === 1 ? "member" : "members"}: ${names.join(", ")}`);
        }
        break;
      }
      case "rooms": {
        const rooms = [...this.client.rooms.keys()];
        this.reply(rooms.length === 0 ? "not in any room" : `rooms: ${rooms.map((r) => (r === this.current ? `#${r} (current)` : `#${r}`)).join(", ")}`);
        break;
      }
      case "history": {
        const n = arg === undefined ? INTERACTIVE_HISTORY : Number(arg);
        if (!Number.isInteger(n) || n < 1 || n > HISTORY_MAX_LIMIT) {
          this.error(`/history N: N is 1..${HISTORY_MAX_LIMIT}`);
          break;
        }
        await this.historyCommand(n);
        break;
      }
      default:
        this.error(`unknown command /${name}: /help lists them`);
    }
    this.reprompt();
  }

  private async joinCommand(room: string | undefined): Promise<void> {
    if (!room || !ROOM_NAME_PATTERN.test(room)) {
      this.error("/join ROOM: a room name is 1-64 characters of A-Z a-z 0-9 _ . : -");
      return;
    }
    const previous = this.current;
    this.current = room;
    this.rl?.setPrompt(this.prompt());
    if (this.client.rooms.get(room)?.status === "joined") {
      this.reply(`now talking in #${room}`);
      return;
    }
    const outcome = await this.client.join(room);
    if (!outcome.ok && this.current === room) {
      this.current = previous !== undefined && this.client.rooms.has(previous) ? previous : this.client.rooms.keys().next().value;
      this.rl?.setPrompt(this.prompt());
    }
  }

  private async leaveCommand(room: string | undefined): Promise<void> {
    if (!room || !this.client.rooms.has(room)) {
      this.error(room ? `not in #${room}` : "not in any room");
      return;
    }
    await this.client.leave(room);
    this.reply(`left #${room}`);
    if (this.current === room) {
      this.current = this.client.rooms.keys().next().value;
      this.rl?.setPrompt(this.prompt());
      this.reply(this.current ? `now talking in #${this.current}` : "not in any room: /join ROOM");
    }
  }

  private async historyCommand(limit: number): Promise<void> {
    const room = this.roomOrSay(this.current);
    if (!room) return;
    if (room.olderBefore() === undefined) {
      this.reply(`no older messages in #${room.name}`);
      return;
    }
    const older = await this.client.loadOlder(room.name, limit);
    this.reply(older.length === 0 ? `no older messages in #${room.name}` : `${older.length} older ${older.length === 1 ? "message" : "messages"} in #${room.name}:`);
    for (const m of older) this.printer.out(formatMessage(m, !this.interactive));
  }

  // ------------------------------------------------------------------ events

  private onEvent(event: ChatEvent): void {
    switch (event.type) {
      case "connection":
        if (event.state === "reconnecting") this.warn("connection lost; reconnecting…");
        else if (event.state === "offline" && !this.finished) this.warn(`cannot reach ${this.args.url}; still trying…`);
        break;
      case "hello":
        this.info(`connected to ${this.args.url} as ${sanitize(event.hello.user.name)}`);
        break;
      case "joined":
        this.onJoined(event.room, event.outcome);
        break;
      case "join-failed":
        this.error(`cannot ${event.rejoin ? "rejoin" : "join"} #${event.room.name}: ${event.error.code}: ${event.error.message}`);
        if (!event.rejoin) this.failures++;
        break;
      case "messages":
        if (event.source === "history") break; // /history prints its own
        for (const m of event.messages) this.printer.out(formatMessage(m, !this.interactive));
        if (event.room.name === this.current) this.showTyping(); // a message ends its sender's typing
        break;
      case "presence":
        this.info(`${sanitize(event.event.member.name)} ${event.event.event === "join" ? "joined" : "left"} #${event.room.name}`);
        break;
      case "members":
        this.info(`#${event.room.name} members updated: ${describeChanges(event.joined, event.left, (m) => sanitize(m.name))}`);
        break;
      case "error":
        if (event.action !== "send") this.error(`${event.action}: ${event.error.code}: ${event.error.message}`);
        if (event.action === "connect") this.finish(1);
        break;
      case "typing":
        if (event.room.name === this.current) this.showTyping();
        break;
      case "pending":
      case "left":
        break;
    }
  }

  private onJoined(room: RoomState, outcome: JoinOutcome): void {
    if (outcome.rejoin) {
      if (outcome.reset) this.warn(`the server's history of #${room.name} started over; messages sent while you were away may be missing`);
      else if (outcome.gap) this.warn(`some messages of #${room.name} sent while you were away could not be recovered`);
      this.info(`rejoined #${room.name}${outcome.added.length > 0 ? `; ${outcome.added.length} missed` : ""}`);
      // Missed messages, in order; after a reset the newest of the new history.
      for (const m of outcome.added) this.printer.out(formatMessage(m, !this.interactive));
      return;
    }
    const names = [...room.members.values()].map((m) => sanitize(m.name)).sort((a, b) => a.localeCompare(b));
    this.info(`joined #${room.name}: ${names.length} ${names.length === 1 ? "member" : "members"} (${names.join(", ")})`);
    const shown = this.historyOnJoin > 0 ? outcome.added.slice(-this.historyOnJoin) : [];
    for (const m of shown) this.printer.out(formatMessage(m, !this.interactive));
  }

  // ------------------------------------------------------------------ output

  /** Status: on screen when interactive; scripts get only messages on stdout. */
  private info(text: string): void {
    if (this.interactive && !this.finished) this.printer.out(`* ${text}`);
  }

  /** Asked-for output (/who, /rooms...): stdout in both modes. */
  private reply(text: string): void {
    this.printer.out(this.interactive ? text.replace(/^/gm, "* ") : text);
  }

  private warn(text: string): void {
    if (this.finished) return;
    if (this.interactive) this.printer.out(`* ${text}`);
    else this.printer.err(`roomcast chat: warning: ${text}`);
  }

  private error(text: string): void {
    this.printer.err(this.interactive ? `! ${text}` : `roomcast chat: ${text}`);
  }

  /** `lobby> `, or `lobby (bob typing)> ` while others type in the current room. */
  private prompt(): string {
    if (!this.current) return "> ";
    const names = this.client.rooms.get(this.current)?.typingNames(this.client.user?.id) ?? [];
    if (names.length === 0) return `${this.current}> `;
    const who = names.length <= 2 ? names.map(sanitize).join(", ") : `${names.length} people`;
    return `${this.current} (${who} typing)> `;
  }

  /** Redraws the prompt with who is typing now, and again when that runs out. */
  private showTyping(): void {
    if (!this.interactive || !this.rl || this.finished) return;
    const prompt = this.prompt();
    clearTimeout(this.typingTimer);
    if (prompt.endsWith(" typing)> ")) {
      this.typingTimer = setTimeout(() => this.showTyping(), TYPING_SHOW_MS + 50);
      this.typingTimer.unref();
    }
    if (prompt === this.rl.getPrompt()) return;
    this.rl.setPrompt(prompt);
    if (process.stdout.isTTY) {
      clearLine(process.stdout, 0);
      cursorTo(process.stdout, 0);
      this.rl.prompt(true);
    }
  }

  private reprompt(): void {
    if (this.interactive && !this.finished) this.rl?.prompt(true);
  }

  private roomOrSay(name: string | undefined): RoomState | undefined {
    const room = name === undefined ? undefined : this.client.rooms.get(name);
    if (!room) this.error(name ? `not in #${name}` : "not in any room: /join ROOM");
    return room;
  }

  /** The typed line is replaced by the message as the server confirms it: one copy on screen. */
  private eraseTypedLine(line: string): void {
    if (!process.stdout.isTTY || this.client.state !== "connected" || line.trim() === "" || (line.startsWith("/") && !line.startsWith("//"))) return;
    const columns = process.stdout.columns || 80;
    const rows = Math.max(1, Math.ceil(((this.rl?.getPrompt() ?? "").length + line.length) / columns));
    moveCursor(process.stdout, 0, -rows);
    clearScreenDown(process.stdout);
  }
}
