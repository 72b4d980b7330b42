/**
 * The web page: a welcome screen, then the chat. State and protocol live in the shared
 * ChatClient; this file wires it to the DOM (TimelineView per room, SidebarView, the composer).
 */
import { ROOM_NAME_PATTERN, type ErrorBody } from "../../protocol.js";
import { ChatClient, type ChatEvent, type ConnectionState } from "../shared/chat-client.js";
import { describeError } from "../shared/format.js";
import type { RoomState } from "../shared/room-state.js";
import { byId, el } from "./dom.js";
import { rememberedPrefs, roomsFor, savePrefs, saveToken, sessionPrefs, sessionToken, type Prefs } from "./prefs.js";
import { Notifier } from "./notifier.js";
import { SidebarView } from "./sidebar-view.js";
import { TimelineView } from "./timeline-view.js";

const DEFAULT_ROOM = "lobby";
const TOAST_MS = 6000;

const CONNECTION_LABELS: Record<ConnectionState, string> = {
  connecting: "connecting…",
  connected: "connected",
  reconnecting: "reconnecting…",
  offline: "offline",
};

class ChatPage {
  private readonly client: ChatClient;
  private readonly views = new Map<string, TimelineView>();
  private readonly unread = new Map<string, number>();
  private readonly sidebar: SidebarView;
  private active: string | undefined;
  private name: string;
  private token: string | undefined;
  /** Why the server refused the connection (a bad or missing token); cleared once connected. */
  private refused: ErrorBody | undefined;
  /** Rooms to redraw at the end of this task; true when older messages were prepended. */
  private readonly dirty = new Map<string, boolean>();
  private chromeDirty = false;
  private typingTimer: ReturnType<typeof setInterval> | undefined;
  private readonly notifier = new Notifier(byId<HTMLButtonElement>("notify-toggle"), (room) => this.switchTo(room));

  private readonly timelines = byId("timelines");
  private readonly input = byId<HTMLTextAreaElement>("input");

  constructor(prefs: Prefs, token: string | undefined) {
    this.name = prefs.name;
    this.token = token;
    this.client = new ChatClient({ name: prefs.name, token });
    this.sidebar = new SidebarView({ switchTo: (room) => this.switchTo(room), leave: (room) => void this.leave(room) });
    this.client.on((event) => this.onEvent(event));
    this.bindControls();
    for (const room of prefs.rooms) this.join(room, false);
    this.switchTo(prefs.active ?? prefs.rooms[0]);
    this.client.connect();
    this.renderConnection();
  }

  private onEvent(event: ChatEvent): void {
    switch (event.type) {
      case "connection":
        if (event.state === "connected") {
          this.refused = undefined;
          byId("signin").hidden = true;
        }
        this.renderConnection();
        break;
      case "hello":
        byId("me-name").textContent = event.hello.user.name;
        this.chromeDirty = true;
        break;
      case "joined":
        if (event.outcome.rejoin) this.countUnread(event.room, event.outcome.added.filter((m) => !this.client.selfIds.has(m.from.id)).length);
        this.markDirty(event.room.name);
        break;
      case "join-failed":
        this.toast(`Could not ${event.rejoin ? "rejoin" : "join"} #${event.room.name}: ${describeError(event.error)}`);
        if (!event.rejoin) this.removeRoom(event.room.name);
        else this.markDirty(event.room.name);
        break;
      case "left":
        this.removeRoom(event.room.name);
        break;
      case "messages":
        if (event.source === "live") {
          const fromOthers = event.messages.filter((m) => !this.client.selfIds.has(m.from.id));
          this.countUnread(event.room, fromOthers.length);
          this.notifier.arrived(event.room.name, fromOthers);
        }
        this.markDirty(event.room.name, event.source === "history");
        break;
      case "presence":
      case "members":
      case "typing":
      case "pending":
        this.markDirty(event.room.name);
        if (event.type === "typing") this.startTypingTimer();
        break;
      case "error":
        if (event.action === "connect") {
          // Final: Socket.IO does not retry a refusal. Say why where it stays, and ask for a token.
          this.refused = event.error;
          this.renderConnection();
          if (event.error.code === "unauthorized") this.askToken();
          break;
        }
        if (event.room) this.markDirty(event.room.name);
        if (!event.room || event.room.name !== this.active) this.toast(describeError(event.error));
        break;
    }
  }

  // ------------------------------------------------------------------ rooms

  private join(name: string, show = true): void {
    // Failures come back as a join-failed event; the client has the room from this call on.
    void this.client.join(name);
    const room = this.client.rooms.get(name);
    if (!room) return;
    if (!this.views.has(name)) {
      const view = new TimelineView(room, {
        loadOlder: () => void this.client.loadOlder(name),
        retry: (id) => this.client.retry(name, id),
        discard: (id) => this.client.discard(name, id),
      });
      this.views.set(name, view);
      this.timelines.append(view.el);
    }
    if (show) this.switchTo(name);
    this.markDirty(name);
    this.save();
  }

  private async leave(name: string): Promise<void> {
    await this.client.leave(name);
    this.removeRoom(name);
  }

  private removeRoom(name: string): void {
    const view = this.views.get(name);
    if (!view) return;
    view.el.remove();
    this.views.delete(name);
    this.unread.delete(name);
    this.dirty.delete(name);
    if (this.active === name) this.switchTo(this.views.keys().next().value);
    this.chromeDirty = true;
    this.save();
    this.flushSoon();
  }

  private switchTo(name: string | undefined): void {
    this.active = name !== undefined && this.views.has(name) ? name : undefined;
    for (const [room, view] of this.views) view.setActive(room === this.active);
    if (this.active) this.unread.delete(this.active);
    byId("empty").hidden = this.active !== undefined;
    byId("composer").hidden = this.active === undefined;
    this.input.placeholder = this.active ? `Message #${this.active}` : "Message";
    if (this.active) history.replaceState(null, "", `#${this.active}`);
    document.body.classList.remove("sidebar-open");
    byId("menu-toggle").setAttribute("aria-expanded", "false");
    this.chromeDirty = true;
    this.save();
    this.flushSoon();
  }

  private countUnread(room: RoomState, count: number): void {
    if (count === 0 || (room.name === this.active && !document.hidden)) return;
    this.unread.set(room.name, (this.unread.get(room.name) ?? 0) + count);
    this.chromeDirty = true;
  }

  // ------------------------------------------------------------------ rendering

  private markDirty(room: string, prepended = false): void {
    this.dirty.set(room, (this.dirty.get(room) ?? false) || prepended);
    this.chromeDirty = true;
    this.flushSoon();
  }

  private flushQueued = false;
  private flushSoon(): void {
    if (this.flushQueued) return;
    this.flushQueued = true;
    queueMicrotask(() => {
      this.flushQueued = false;
      this.flush();
    });
  }

  private flush(): void {
    for (const [name, prepended] of this.dirty) {
      const view = this.views.get(name);
      const room = this.client.rooms.get(name);
      if (!view || !room) continue;
      view.render(this.client.selfIds, prepended);
    }
    this.dirty.clear();
    if (this.chromeDirty) this.renderChrome();
  }

  private renderChrome(): void {
    this.chromeDirty = false;
    const room = this.active ? this.client.rooms.get(this.active) : undefined;
    this.sidebar.renderRooms(
      [...this.views.values()].map((view) => view.room),
      this.active,
      this.unread,
    );
    this.sidebar.renderMembers(room, this.client.selfIds);
    byId("room-title").textContent = this.active ? `#${this.active}` : "roomcast";
    const members = room?.members.size ?? 0;
    byId("room-sub").textContent = room ? (room.status === "joined" || room.status === "rejoining" ? `${members} ${members === 1 ? "member" : "members"}` : room.status === "failed" ? "could not rejoin" : "joining…") : "";
    this.renderTyping();
    const unread = [...this.unread.values()].reduce((a, b) => a + b, 0);
    document.title = `${unread > 0 ? `(${unread}) ` : ""}${this.active ? `#${this.active} · ` : ""}roomcast`;
  }

  private renderTyping(): void {
    const room = this.active ? this.client.rooms.get(this.active) : undefined;
    const names = room?.typingNames(this.client.user?.id) ?? [];
    const node = byId("typing");
    if (names.length === 0) {
      node.replaceChildren();
      return;
    }
    const who = names.length === 1 ? names[0]! : names.length === 2 ? `${names[0]} and ${names[1]}` : `${names[0]}, ${names[1]} and ${names.length - 2} more`;
    node.replaceChildren(el("span", { class: "dots", attrs: { "aria-hidden": "true" } }, el("i"), el("i"), el("i")), el("span", { class: "typing-text", text: `${who} ${names.length === 1 ? "is" : "are"} typing…` }));
  }

  /** Typing notices expire on their own; refresh the line while any is showing. */
  private startTypingTimer(): void {
    if (this.typingTimer) return;
    this.typingTimer = setInterval(() => {
      this.renderTyping();
      const anyone = [...this.client.rooms.values()].some((r) => r.typingNames(this.client.user?.id).length > 0);
      if (!anyone) {
        clearInterval(this.typingTimer);
        this.typingTimer = undefined;
      }
    }, 500);
  }

  private renderConnection(): void {
    const state = this.client.state;
    const conn = byId("conn");
    conn.dataset.state = state;
    byId("conn-label").textContent = CONNECTION_LABELS[state];
    const banner = byId("banner");
    banner.hidden = state === "connected" || (state === "connecting" && !this.refused);
    banner.classList.toggle("refused", this.refused !== undefined && state !== "connected");
    if (this.refused && state !== "connected") {
      const text =
        this.refused.code === "unauthorized"
          ? `Not connected: ${this.token ? "the server did not accept your token" : "this server needs a sign-in token"} (${this.refused.message}).`
          : `Not connected: the server refused the connection. ${describeError(this.refused)}`;
      const children: Node[] = [el("span", { text })];
      if (this.refused.code === "unauthorized") {
        const button = el("button", { class: "link", text: "Enter a token", attrs: { type: "button", id: "banner-token" } });
        button.addEventListener("click", () => this.askToken());
        children.push(button);
      }
      banner.replaceChildren(...children);
      return;
    }
    banner.textContent =
      state === "reconnecting"
        ? "Connection lost. Reconnecting… Messages you send now go out once it is back."
        : state === "offline"
          ? "Offline: the server cannot be reached. Still trying; messages you send now go out once it is back."
          : "";
  }

  /** The sign-in card: why the server refused, and a field for a (new) token. */
  private askToken(): void {
    const overlay = byId("signin");
    const form = byId<HTMLFormElement>("signin-form");
    const field = byId<HTMLInputElement>("signin-token");
    byId("signin-reason").textContent = this.token
      ? `The server did not accept your token: ${this.refused?.message ?? "unauthorized"}. Paste a new one.`
      : "This server only lets in people with a token. Paste the one you were given.";
    field.value = this.token ?? "";
    overlay.hidden = false;
    field.focus();
    field.select();
    overlay.onclick = (e) => {
      if (e.target === overlay) overlay.hidden = true;
    };
    form.onsubmit = (e) => {
      e.preventDefault();
      overlay.hidden = true;
      this.token = field.value.trim() || undefined;
      saveToken(this.token);
      this.refused = undefined;
      this.client.setToken(this.token);
      this.renderConnection();
    };
  }

  // ------------------------------------------------------------------ controls

  private bindControls(): void {
    const composer = byId<HTMLFormElement>("composer");
    composer.addEventListener("submit", (e) => {
      e.preventDefault();
      this.sendInput();
    });
    this.input.addEventListener("keydown", (e) => {
      if (e.key === "Enter" && !e.shiftKey && !e.isComposing) {
        e.preventDefault();
        this.sendInput();
      }
    });
    this.input.addEventListener("input", () => {
      this.autosize();
      if (this.active && this.input.value.trim()) this.client.typing(this.active);
    });

    for (const [formId, inputId] of [["join-form", "join-input"], ["empty-form", "empty-input"]] as const) {
      byId(formId).addEventListener("submit", (e) => {
        e.preventDefault();
        const field = byId<HTMLInputElement>(inputId);
        const room = field.value.trim().replace(/^#/, "");
        const error = byId("join-error");
        if (!ROOM_NAME_PATTERN.test(room)) {
          error.textContent = "Room names are 1-64 letters, digits or _ . : -";
          if (formId === "empty-form") this.toast(error.textContent);
          return;
        }
        error.textContent = "";
        field.value = "";
        this.join(room);
        this.input.focus();
      });
    }

    byId("menu-toggle").addEventListener("click", () => {
      const open = document.body.classList.toggle("sidebar-open");
      byId("menu-toggle").setAttribute("aria-expanded", String(open));
    });
    byId("backdrop").addEventListener("click", () => {
      document.body.classList.remove("sidebar-open");
      byId("menu-toggle").setAttribute("aria-expanded", "false");
    });
    byId("rename").addEventListener("click", () =>
      showWelcome({ name: this.name, rooms: [], active: undefined }, undefined, (name) => {
        this.name = name;
        this.client.rename(name);
        this.save();
      }),
    );
    window.addEventListener("online", () => this.client.setNetworkOnline(true));
    window.addEventListener("offline", () => this.client.setNetworkOnline(false));
    document.addEventListener("visibilitychange", () => {
      if (!document.hidden && this.active) {
        this.unread.delete(this.active);
        this.chromeDirty = true;
        this.flushSoon();
      }
    });
    window.addEventListener("hashchange", () => {
      const room = decodeURIComponent(location.hash.slice(1));
      if (ROOM_NAME_PATTERN.test(room) && room !== this.active) this.join(room);
    });
  }

  private sendInput(): void {
    const text = this.input.value;
    if (!this.active || text.trim().length === 0) return;
    void this.client.send(this.active, text);
    this.input.value = "";
    this.autosize();
    this.views.get(this.active)?.scrollToBottom();
  }

  private autosize(): void {
    this.input.style.height = "auto";
    this.input.style.height = `${Math.min(this.input.scrollHeight, 160)}px`;
  }

  private toast(text: string): void {
    const node = el("div", { class: "toast", text, attrs: { role: "alert" } });
    byId("toasts").append(node);
    setTimeout(() => node.remove(), TOAST_MS);
  }

  private save(): void {
    savePrefs({ name: this.name, rooms: [...this.views.keys()], active: this.active });
  }
}

/** A link such as /?token=… signs this tab in; the token leaves the address bar (and history) at once. */
function tokenFromLink(): void {
  const url = new URL(location.href);
  const token = url.searchParams.get("token");
  if (token === null) return;
  saveToken(token.trim() || undefined);
  url.searchParams.delete("token");
  history.replaceState(history.state, "", `${url.pathname}${url.search}${url.hash}`);
}

function roomFromHash(): string | undefined {
  const room = decodeURIComponent(location.hash.slice(1));
  return ROOM_NAME_PATTERN.test(room) ? room : undefined;
}

/** The welcome card: name and room, prefilled with what was remembered. With `onRename` it only asks for a name. */
function showWelcome(prefs: Prefs | undefined, room: string | undefined, onRename?: (name: string) => void): void {
  const overlay = byId("welcome");
  const form = byId<HTMLFormElement>("welcome-form");
  const nameField = byId<HTMLInputElement>("welcome-name");
  const roomField = byId<HTMLInputElement>("welcome-room");
  const tokenField = byId<HTMLInputElement>("welcome-token");
  byId("welcome-room-field").hidden = onRename !== undefined;
  byId("welcome-advanced").hidden = onRename !== undefined;
  byId("welcome-text").textContent = onRename ? "Choose a new name. Everyone in your rooms will see it." : "Chat in rooms, in real time. Pick a name and a room to start.";
  byId("welcome-submit").textContent = onRename ? "Change name" : "Start chatting";
  nameField.value = prefs?.name ?? "";
  roomField.value = room ?? prefs?.active ?? DEFAULT_ROOM;
  tokenField.value = sessionToken() ?? "";
  if (tokenField.value) byId<HTMLDetailsElement>("welcome-advanced").open = true;
  overlay.hidden = false;
  nameField.focus();
  nameField.select();
  const close = (): void => {
    overlay.hidden = true;
    form.onsubmit = null;
    overlay.onclick = null;
  };
  if (onRename) overlay.onclick = (e) => e.target === overlay && close();
  form.onsubmit = (e) => {
    e.preventDefault();
    const name = nameField.value.trim();
    if (onRename) {
      close();
      if (name) onRename(name);
      return;
    }
    const chosen = roomField.value.trim().replace(/^#/, "");
    if (!ROOM_NAME_PATTERN.test(chosen)) {
      byId("welcome-error").textContent = "Room names are 1-64 letters, digits or _ . : -";
      return;
    }
    close();
    // The rooms remembered for the name typed, not for the name prefilled: another person in a
    // second tab starts from the room they chose, not in the first person's rooms.
    const rooms = [chosen, ...roomsFor(name).rooms.filter((r) => r !== chosen)];
    const token = tokenField.value.trim() || undefined;
    saveToken(token);
    new ChatPage({ name, rooms, active: chosen }, token);
  };
}

function boot(): void {
  tokenFromLink();
  const session = sessionPrefs();
  const hashRoom = roomFromHash();
  if (session && session.rooms.length > 0) {
    const rooms = hashRoom && !session.rooms.includes(hashRoom) ? [...session.rooms, hashRoom] : session.rooms;
    byId("welcome").hidden = true;
    new ChatPage({ ...session, rooms, active: hashRoom ?? session.active }, sessionToken());
    return;
  }
  showWelcome(rememberedPrefs(), hashRoom);
}

boot();
