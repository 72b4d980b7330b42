import { randomBytes } from "node:crypto";
import { jwtVerify } from "jose";
import { HandshakeAuth, NAME_MAX_LENGTH, type ErrorBody, type Member } from "../protocol.js";

export interface IdentityOptions {
  /** HS256 secret; when set, every connection must present a valid token. */
  jwtSecret?: string | undefined;
  /**
   * The application's own check, after the name or token: answer an error to refuse the connection
   * (a ban list, a seat limit). Runs for both transports, unlike a Socket.IO middleware.
   */
  admit?: ((user: Member) => ErrorBody | undefined | Promise<ErrorBody | undefined>) | undefined;
}

export type Identity = { ok: true; user: Member } | { ok: false; error: ErrorBody };

// Control characters and line breaks in a name would break the terminal client and logs.
const CONTROL = /[\u0000-\u001f\u007f-\u009f\u2028\u2029]/;

export function validName(raw: string): string | undefined {
  const name = raw.trim();
  if (name.length === 0 || [...name].length > NAME_MAX_LENGTH || CONTROL.test(name)) return undefined;
  return name;
}

/**
 * Who is connecting. Without a JWT secret everyone is a guest with a fresh id per connection;
 * with one, the token's `sub` is the user id, so one user's several connections count once.
 */
export async function identify(auth: unknown, options: IdentityOptions): Promise<Identity> {
  const identity = await authenticate(auth, options);
  if (!identity.ok || !options.admit) return identity;
  const refused = await options.admit(identity.user);
  return refused ? { ok: false, error: refused } : identity;
}

async function authenticate(auth: unknown, options: IdentityOptions): Promise<Identity> {
  const parsed = HandshakeAuth.safeParse(auth ?? {});
  if (!parsed.success) return bad("auth must be { name?: string, token?: string }");
  const { name: rawName, token } = parsed.data;
  const name = rawName === undefined ? undefined : validName(rawName);
  if (rawName !== undefined && name === undefined) {
    return bad(`name must be 1-${NAME_MAX_LENGTH} printable characters after trimming`);
  }
  if (!options.jwtSecret) {
    return { ok: true, user: { id: `u-${randomBytes(9).toString("base64url")}`, name: name ?? guestName() } };
  }
  if (!token) return unauthorized("a token is required");
  try {
    const { payload } = await jwtVerify(token, new TextEncoder().encode(options.jwtSecret), { algorithms: ["HS256"] });
    const sub = payload.sub;
    if (typeof sub !== "string" || sub.length === 0 || sub.length > 128) return unauthorized("token has no subject");
    const claimed = typeof payload.name === "string" ? validName(payload.name) : undefined;
    return { ok: true, user: { id: sub, name: name ?? claimed ?? guestName() } };
  } catch {
    return unauthorized("invalid or expired token");
  }
}

function guestName(): string {
  return `guest-${randomBytes(2).toString("hex")}`;
}

function bad(message: string): Identity {
  return { ok: false, error: { code: "bad_request", message } };
}

function unauthorized(message: string): Identity {
  return { ok: false, error: { code: "unauthorized", message } };
}
