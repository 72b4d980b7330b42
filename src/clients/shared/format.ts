/** Small formatting helpers the web page and the terminal client share. */
import type { ErrorBody, ErrorCode } from "../../protocol.js";

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
