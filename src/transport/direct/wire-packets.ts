import { Decoder, PacketType, type Packet } from "socket.io-parser";

/**
 * The Socket.IO wire protocol over one WebSocket, as the direct transport speaks it: engine.io v4
 * packets (a type digit, then data) carrying socket.io v5 packets (type, namespace, ack id, JSON).
 * https://github.com/socketio/socket.io/tree/main/docs (engine.io-protocol v4, socket.io-protocol v5).
 * Decoding is socket.io-parser's; encoding is the same text, built directly because every packet
 * the server sends is plain JSON (socket.io-parser's encoder walks each payload looking for binary).
 */

/** engine.io packet types, as the first character of a text frame. */
export const EngineType = { open: "0", close: "1", ping: "2", pong: "3", message: "4", upgrade: "5", noop: "6" } as const;

export { PacketType, type Packet };

// engine.io "message" (4) + socket.io type digit.
const EVENT = `4${PacketType.EVENT}`;
const ACK = `4${PacketType.ACK}`;
const CONNECT = `4${PacketType.CONNECT}`;
const CONNECT_ERROR = `4${PacketType.CONNECT_ERROR}`;

const nspPrefix = (nsp: string): string => (nsp === "/" ? "" : `${nsp},`);

export const openPacket = (sid: string, pingInterval: number, pingTimeout: number, maxPayload: number): string =>
  EngineType.open + JSON.stringify({ sid, upgrades: [], pingInterval, pingTimeout, maxPayload });
export const connectPacket = (nsp: string, sid: string): string => `${CONNECT}${nspPrefix(nsp)}${JSON.stringify({ sid })}`;
export const connectErrorPacket = (nsp: string, message: string, data: unknown): string =>
  `${CONNECT_ERROR}${nspPrefix(nsp)}${JSON.stringify({ message, data })}`;
export const eventPacket = (nsp: string, event: string, payload: unknown): string => `${EVENT}${nspPrefix(nsp)}${JSON.stringify([event, payload])}`;
export const ackPacket = (nsp: string, id: number, payload: unknown): string => `${ACK}${nspPrefix(nsp)}${id}${JSON.stringify([payload])}`;

/**
 * One unmasked WebSocket text frame (RFC 6455 5.2), header and payload in one buffer: built once
 * per packet and written as it is to every recipient (ws would frame and copy per recipient).
 */
export function textFrame(packet: string): Buffer {
  const length = Buffer.byteLength(packet);
  const header = length < 126 ? 2 : length < 65536 ? 4 : 10;
  const frame = Buffer.allocUnsafe(header + length);
  frame[0] = 0x81; // FIN, opcode 1 (text)
  if (header === 2) {
    frame[1] = length;
  } else if (header === 4) {
    frame[1] = 126;
    frame.writeUInt16BE(length, 2);
  } else {
    frame[1] = 127;
    frame.writeBigUInt64BE(BigInt(length), 2);
  }
  frame.write(packet, header);
  return frame;
}

/** The engine.io frame for a ping: the same bytes for every connection. */
export const PING_FRAME = textFrame(EngineType.ping);

// One decoder for every connection: a text packet decodes synchronously, so the shared decoder
// holds no state between calls. Binary packets, which span frames, get their own (BinaryPacket).
const decoder = new Decoder();
let decoded: Packet | undefined;
decoder.on("decoded", (packet: Packet) => (decoded = packet));

/** Whether a socket.io packet announces binary attachments, which arrive as the frames that follow. */
export const hasAttachments = (text: string): boolean => text[0] === "5" || text[0] === "6";

/** A socket.io packet without attachments from the text of an engine.io message. Throws on a malformed one. */
export function decodePacket(text: string): Packet {
  decoded = undefined;
  decoder.add(text);
  const packet = decoded as Packet | undefined;
  if (!packet) throw new Error("packet expects attachments");
  decoded = undefined;
  return packet;
}

/** Collects a binary packet's attachments (the frames that follow it) with socket.io-parser's reconstructor. */
export class BinaryPacket {
  private readonly decoder = new Decoder();
  private done: Packet | undefined;

  constructor(text: string) {
    this.decoder.on("decoded", (packet: Packet) => (this.done = packet));
    this.decoder.add(text);
  }

  /** Adds one attachment; returns the whole packet after the last one. Throws on a malformed one. */
  add(attachment: Buffer): Packet | undefined {
    this.decoder.add(attachment);
    return this.done;
  }
}
