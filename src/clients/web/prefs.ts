/**
 * What the page remembers. localStorage keeps the name and rooms for next time (prefilled on the
 * welcome screen); sessionStorage keeps this tab's session, so a reload goes straight back into
 * the chat while a second tab asks for its own name (two tabs can be two people).
 */
import { NAME_MAX_LENGTH, ROOM_NAME_PATTERN } from "../../protocol.js";

export interface Prefs {
  name: string;
  rooms: string[];
  active: string | undefined;
}

const KEY = "roomcast.prefs";

export function rememberedPrefs(): Prefs | undefined {
  return read(() => localStorage);
}

export function sessionPrefs(): Prefs | undefined {
  return read(() => sessionStorage);
}

export function savePrefs(prefs: Prefs): void {
  const text = JSON.stringify(prefs);
  for (const storage of [() => localStorage, () => sessionStorage]) {
    try {
      storage().setItem(KEY, text);
    } catch {
      // Storage can be disabled (private mode, quota): the chat works without it.
    }
  }
}

function read(storage: () => Storage): Prefs | undefined {
  try {
    const raw: unknown = JSON.parse(storage().getItem(KEY) ?? "null");
    if (!raw || typeof raw !== "object") return undefined;
    const { name, rooms, active } = raw as Record<string, unknown>;
    const validRooms = Array.isArray(rooms) ? rooms.filter((r): r is string => typeof r === "string" && ROOM_NAME_PATTERN.test(r)) : [];
    return {
      name: typeof name === "string" ? name.slice(0, NAME_MAX_LENGTH) : "",
      rooms: validRooms,
      active: typeof active === "string" && validRooms.includes(active) ? active : validRooms[0],
    };
  } catch {
    return undefined;
  }
}
