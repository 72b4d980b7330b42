/** Small formatting helpers the web page and the terminal client share. */
import type { ErrorBody, ErrorCode, Member } from "../../protocol.js";

const READABLE: Record<ErrorCode, string> = {
  bad_request: "The server did not accept that",
  too_large: "That message is too long",
  not_in_room: "You are not in that room (any more)",
  room_full: "That room is full",
  too_many_rooms: "You are in too many rooms; leave one first",
  rate_limited: "You are sending too fast; wait a moment",
  unauthorized: "The server refused your login",
  unavailable: "The server cannot handle that right now; try again",
};

/** A sentence for a person, with the server's own words and code after it. */
export function describeError(error: ErrorBody): string {
  const readable = (READABLE as Record<string, string | undefined>)[error.code] ?? "Something went wrong";
  const detail = error.message && error.message !== readable ? `: ${error.message}` : "";
  return `${readable}${detail} (${error.code})`;
}

/**
 * `ann, bob joined; cat left`, or a count past five names: a member list's changes in one line.
 * `name` renders a member's name (the terminal makes control characters visible).
 */
export function describeChanges(joined: Member[], left: Member[], name: (m: Member) => string = (m) => m.name): string {
  const names = (members: Member[]) => (members.length > 5 ? `${members.length} people` : members.map(name).join(", "));
  return [joined.length > 0 ? `${names(joined)} joined` : "", left.length > 0 ? `${names(left)} left` : ""].filter(Boolean).join("; ");
}

/** 24-hour local time, "09:05". */
export function formatTime(ts: number): string {
  const d = new Date(ts);
  return `${String(d.getHours()).padStart(2, "0")}:${String(d.getMinutes()).padStart(2, "0")}`;
}

/** A random id for clientMsgId; getRandomValues works in browsers on plain http too (randomUUID does not). */
export function randomId(): string {
  const bytes = new Uint8Array(12);
  globalThis.crypto.getRandomValues(bytes);
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}
