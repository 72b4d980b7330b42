/** The command line of `roomcast chat`. */
import { parseArgs } from "node:util";
import { ROOM_NAME_PATTERN } from "../../protocol.js";

export interface ChatArgs {
  url: string;
  rooms: string[];
  name: string | undefined;
  token: string | undefined;
  /** Non-interactive: after stdin ends and every send is confirmed, keep listening this long. */
  waitMs: number;
  /** Non-interactive: keep listening after stdin ends, until interrupted. */
  stay: boolean;
  /** Recent messages to print when a room is first joined. */
  history: number | undefined;
  /** Non-interactive: give up when not connected and joined after this long. */
  connectTimeoutMs: number;
  help: boolean;
}

export const CHAT_USAGE = `Usage: roomcast chat [--url URL] [--room ROOM]... [--name NAME] [options]

A line-oriented chat client. Typed lines go to the current room; received messages print as
  [lobby] 12:03 ann: hello

Options:
  --url URL              server (default http://localhost:3000, or ROOMCAST_URL)
  --room ROOM            room to join; repeat it or use commas for several (default lobby)
  --name NAME            your name (default: a guest name from the server)
  --token TOKEN          a JWT, for servers that require one
  --history N            recent messages to show on join (default 20 interactive, 0 piped)
  --wait-ms N            piped: after stdin ends, keep printing messages for N ms, then exit
  --stay                 piped: after stdin ends, keep printing messages until interrupted
  --connect-timeout-ms N piped: exit 1 if not joined within N ms (default 10000)
  -h, --help             this help

Commands: /join ROOM, /leave [ROOM], /who, /rooms, /history [N], /help, /quit
          (a line starting with // sends a message starting with /)

Without a terminal on stdin (piped), each line read is sent and acknowledged in order, received
messages print one per line on stdout (newlines in a message as \\n), errors go to stderr with
their code, and it exits once stdin ends and every line is confirmed: 0 if all were sent, 1 if not.`;

export class ArgsError extends Error {}

export function parseChatArgs(argv: string[], env: NodeJS.ProcessEnv): ChatArgs {
  let values;
  try {
    ({ values } = parseArgs({
      args: argv,
      options: {
        url: { type: "string" },
        room: { type: "string", multiple: true },
        name: { type: "string" },
        token: { type: "string" },
        history: { type: "string" },
        "wait-ms": { type: "string" },
        stay: { type: "boolean" },
        "connect-timeout-ms": { type: "string" },
        help: { type: "boolean", short: "h" },
      },
      strict: true,
      allowPositionals: false,
    }));
  } catch (err) {
    throw new ArgsError(err instanceof Error ? err.message : String(err));
  }
  const url = values.url ?? env.ROOMCAST_URL ?? "http://localhost:3000";
  if (!/^https?:\/\/[^/]+/.test(url)) throw new ArgsError(`--url: expected http://host:port, got ${JSON.stringify(url)}`);
  const rooms = (values.room ?? ["lobby"]).flatMap((r) => r.split(",")).map((r) => r.trim().replace(/^#/, "")).filter(Boolean);
  for (const room of rooms) {
    if (!ROOM_NAME_PATTERN.test(room)) throw new ArgsError(`--room: ${JSON.stringify(room)} is not a room name (1-64 characters of A-Z a-z 0-9 _ . : -)`);
  }
  if (rooms.length === 0) rooms.push("lobby");
  return {
    url,
    rooms: [...new Set(rooms)],
    name: values.name,
    token: values.token,
    history: values.history === undefined ? undefined : count("--history", values.history, 1000),
    waitMs: values["wait-ms"] === undefined ? 0 : count("--wait-ms", values["wait-ms"], 86_400_000),
    stay: values.stay ?? false,
    connectTimeoutMs: values["connect-timeout-ms"] === undefined ? 10_000 : count("--connect-timeout-ms", values["connect-timeout-ms"], 86_400_000),
    help: values.help ?? false,
  };
}

function count(flag: string, text: string, max: number): number {
  const n = Number(text);
  if (!/^\d+$/.test(text) || n > max) throw new ArgsError(`${flag}: expected a whole number 0..${max}, got ${JSON.stringify(text)}`);
  return n;
}
