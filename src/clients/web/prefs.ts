/**
 * What the page remembers. sessionStorage keeps this tab's session (name, rooms, token), so a
 * reload goes straight back into the chat. localStorage keeps, for next time, the last name used
 * (prefilled on the welcome screen) and the rooms of each name: the rooms belong to a person, so a
 * second tab where someone else signs in does not join the first person's rooms (two tabs can be
 * two people). The token stays in the tab only: it is a credential, and it names a person too.
 */
import { NAME_MAX_LENGTH, ROOM_NAME_PATTERN } from "../../protocol.js";

export interface Prefs {
  name: string;
  rooms: string[];
  active: string | undefined;
}

const KEY = "roomcast.prefs";
const TOKEN_KEY = "roomcast.token";
/** Names whose rooms are remembered; the least recently used are forgotten first. */
const MAX_PEOPLE = 20;

interface Remembered {
  /** The name used last, to prefill the welcome screen. */
  name: string;
  /** Rooms per name, least recently used first. */
  people: Record<string, { rooms: string[]; active: string | undefined }>;
}

/** The last name used in this browser, with that name's rooms. */
export function rememberedPrefs(): Prefs | undefined {
  const remembered = readRemembered();
  return remembered && roomsOf(remembered, remembered.name);
}

/** The rooms remembered for `name` (none for an empty name: each guest is someone new). */
export function roomsFor(name: string): Prefs {
  const remembered = readRemembered();
  return (remembered && roomsOf(remembered, name)) ?? { name, rooms: [], active: undefined };
}

export function sessionPrefs(): Prefs | undefined {
  return guard(() => {
    const raw: unknown = JSON.parse(sessionStorage.getItem(KEY) ?? "null");
    if (!raw || typeof raw !== "object") return undefined;
    const { name, rooms, active } = raw as Record<string, unknown>;
    return { name: cleanName(name), ...cleanRooms(rooms, active) };
  });
}

export function savePrefs(prefs: Prefs): void {
  guard(() => sessionStorage.setItem(KEY, JSON.stringify(prefs)));
  guard(() => {
    const remembered = readRemembered() ?? { name: "", people: {} };
    remembered.name = prefs.name;
    if (prefs.name) {
      // Re-inserted last: the most recently used name.
      delete remembered.people[prefs.name];
      remembered.people[prefs.name] = { rooms: prefs.rooms, active: prefs.active };
      const names = Object.keys(remembered.people);
      for (const old of names.slice(0, Math.max(0, names.length - MAX_PEOPLE))) delete remembered.people[old];
    }
    localStorage.setItem(KEY, JSON.stringify(remembered));
  });
}

/** This tab's token for servers that require one (JWT_SECRET); undefined when none was given. */
export function sessionToken(): string | undefined {
  return guard(() => sessionStorage.getItem(TOKEN_KEY) || undefined);
}

export function saveToken(token: string | undefined): void {
  guard(() => (token ? sessionStorage.setItem(TOKEN_KEY, token) : sessionStorage.removeItem(TOKEN_KEY)));
}

function readRemembered(): Remembered | undefined {
  return guard(() => {
    const raw: unknown = JSON.parse(localStorage.getItem(KEY) ?? "null");
    if (!raw || typeof raw !== "object") return undefined;
    const { name, people, rooms, active } = raw as Record<string, unknown>;
    const remembered: Remembered = { name: cleanName(name), people: {} };
    if (people && typeof people === "object") {
      for (const [who, entry] of Object.entries(people as Record<string, unknown>)) {
        if (!entry || typeof entry !== "object") continue;
        const { rooms: r, active: a } = entry as Record<string, unknown>;
        remembered.people[who] = cleanRooms(r, a);
      }
    } else if (remembered.name) {
      // Written by an earlier version: one name and its rooms.
      remembered.people[remembered.name] = cleanRooms(rooms, active);
    }
    return remembered;
  });
}

function roomsOf(remembered: Remembered, name: string): Prefs {
  const entry = name ? remembered.people[name] : undefined;
  return { name, rooms: entry?.rooms ?? [], active: entry?.active };
}

function cleanName(name: unknown): string {
  return typeof name === "string" ? name.slice(0, NAME_MAX_LENGTH) : "";
}

function cleanRooms(rooms: unknown, active: unknown): { rooms: string[]; active: string | undefined } {
  const valid = Array.isArray(rooms) ? rooms.filter((r): r is string => typeof r === "string" && ROOM_NAME_PATTERN.test(r)) : [];
  return { rooms: valid, active: typeof active === "string" && valid.includes(active) ? active : valid[0] };
}

/** Storage can be disabled (private mode, quota) or hold anything: the chat works without it. */
function guard<T>(fn: () => T): T | undefined {
  try {
    return fn();
  } catch {
    return undefined;
  }
}
