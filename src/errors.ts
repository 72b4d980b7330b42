import type { ErrorCode, Failure } from "./protocol.js";

/** The error catalogue: every code a client can receive, and what it means. docs/protocol.md lists the same. */
export const ERROR_CATALOGUE: Record<ErrorCode, string> = {
  bad_request: "the payload is malformed: missing or wrong fields, a bad room name, empty text, unknown event",
  too_large: "the message text is longer than the server's MAX_MESSAGE_LENGTH",
  not_in_room: "the connection is not a member of that room",
  room_full: "the room already holds ROOM_CAPACITY members",
  too_many_rooms: "the connection is already in MAX_ROOMS_PER_CONNECTION rooms",
  rate_limited: "too many events of this kind; wait and retry",
  unauthorized: "the handshake token is missing or invalid",
  unavailable: "the server cannot reach its message bus right now; nothing was stored, retry",
};

export function failure(code: ErrorCode, message: string = ERROR_CATALOGUE[code]): Failure {
  return { ok: false, error: { code, message } };
}
