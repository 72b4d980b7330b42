/**
 * The wire protocol: the one contract between the server, the web client, the terminal client
 * and the tests. Everything a client may send is a zod schema here; everything the server sends
 * is a type here. docs/protocol.md explains the same in prose; keep the two in step.
 */
import { z } from "zod";

/** Socket.IO namespace every chat connection uses. */
export const CHAT_NAMESPACE = "/chat";

export const ROOM_NAME_PATTERN = /^[A-Za-z0-9_.:-]{1,64}$/;
export const NAME_MAX_LENGTH = 32;
export const CLIENT_MSG_ID_MAX_LENGTH = 64;
/** Newest messages a plain `join` returns. */
export const JOIN_MESSAGES = 50;
/** Most messages a `join` with `since` returns. */
export const RECOVERY_MESSAGES = 1000;
export const HISTORY_DEFAULT_LIMIT = 50;
export const HISTORY_MAX_LIMIT = 100;

export const ERROR_CODES = [
  "bad_request",
  "too_large",
  "not_in_room",
  "room_full",
  "too_many_rooms",
  "rate_limited",
  "unauthorized",
  "unavailable",
] as const;
export type ErrorCode = (typeof ERROR_CODES)[number];

// ---------------------------------------------------------------- client -> server

export const RoomName = z.string().regex(ROOM_NAME_PATTERN, "expected 1-64 characters of A-Z a-z 0-9 _ . : -");
const Seq = z.number().int().nonnegative().max(Number.MAX_SAFE_INTEGER);

export const HandshakeAuth = z.object({
  name: z.string().max(1000).optional(),
  token: z.string().max(8192).optional(),
});
export type HandshakeAuth = z.infer<typeof HandshakeAuth>;

export const JoinRequest = z.object({
  room: RoomName,
  /** Last seq the client has seen; asks for every retained message after it. */
  since: Seq.optional(),
  /** The room's epoch from an earlier join ack; a different epoch means history was reset. */
  epoch: z.string().max(64).optional(),
});
export type JoinRequest = z.infer<typeof JoinRequest>;

export const LeaveRequest = z.object({ room: RoomName });
export type LeaveRequest = z.infer<typeof LeaveRequest>;

export const MessageRequest = z.object({
  room: RoomName,
  // Length and emptiness are the chat domain's checks: the bound is configurable and
  // too long must answer too_large, not bad_request.
  text: z.string(),
  clientMsgId: z.string().min(1).max(CLIENT_MSG_ID_MAX_LENGTH).optional(),
});
export type MessageRequest = z.infer<typeof MessageRequest>;

export const HistoryRequest = z.object({
  room: RoomName,
  before: Seq.optional(),
  limit: z.number().int().min(1).max(HISTORY_MAX_LIMIT).optional(),
});
export type HistoryRequest = z.infer<typeof HistoryRequest>;

export const TypingRequest = z.object({ room: RoomName });
export type TypingRequest = z.infer<typeof TypingRequest>;

/** Every event a client may send, with the schema of its payload. */
export const CLIENT_EVENTS = {
  join: JoinRequest,
  leave: LeaveRequest,
  message: MessageRequest,
  history: HistoryRequest,
  typing: TypingRequest,
} as const;
export type ClientEventName = keyof typeof CLIENT_EVENTS;

// ---------------------------------------------------------------- server -> client

export interface Member {
  id: string;
  name: string;
}

export interface ChatMessage {
  room: string;
  seq: number;
  /** Server time, ms since the epoch. */
  ts: number;
  from: Member;
  text: string;
  clientMsgId?: string;
}

export interface Hello {
  user: Member;
  /** Id of the server process this connection landed on. */
  node: string;
}

export interface PresenceEvent {
  room: string;
  event: "join" | "leave";
  member: Member;
}

/**
 * The room's whole member list, sent after the server may have missed presence events (it lost
 * its connection to the bus meanwhile): it replaces the list from the join ack and the events since.
 */
export interface MembersEvent {
  room: string;
  members: Member[];
}

export interface TypingEvent {
  room: string;
  member: Member;
}

export interface ErrorBody {
  code: ErrorCode;
  message: string;
}

/** Sent when an event without an ack callback fails. */
export interface ErrorEvent extends ErrorBody {
  event: string;
}

export type Failure = { ok: false; error: ErrorBody };
export type Ack<T> = ({ ok: true } & T) | Failure;

export interface JoinResult {
  room: string;
  /** The room's last seq (0 for a new room). Live messages continue from head + 1. */
  head: number;
  /** Changes when the room's history starts over (expired or lost); pass it back with `since`. */
  epoch: string;
  members: Member[];
  messages: ChatMessage[];
  /** Only with `since`: true when every message after `since` is in `messages`. */
  recovered?: boolean;
}
export interface SendResult {
  seq: number;
  ts: number;
}
export interface HistoryResult {
  messages: ChatMessage[];
}

export interface ClientToServerEvents {
  join(req: JoinRequest, ack: (res: Ack<JoinResult>) => void): void;
  leave(req: LeaveRequest, ack: (res: Ack<object>) => void): void;
  message(req: MessageRequest, ack: (res: Ack<SendResult>) => void): void;
  history(req: HistoryRequest, ack: (res: Ack<HistoryResult>) => void): void;
  typing(req: TypingRequest): void;
}

export interface ServerToClientEvents {
  hello(hello: Hello): void;
  message(message: ChatMessage): void;
  presence(event: PresenceEvent): void;
  members(event: MembersEvent): void;
  typing(event: TypingEvent): void;
  error(event: ErrorEvent): void;
}
