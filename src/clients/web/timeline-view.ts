/**
 * One room's messages and notices on screen. Rendering is keyed: a message's element is made once
 * and moved into place, so appending, merging missed messages and prepending older ones keep the
 * rest of the page (and the reader's scroll position) as it was.
 */
import type { ChatMessage, ErrorBody } from "../../protocol.js";
import { describeError, formatTime } from "../shared/format.js";
import type { PendingMessage, RoomState, TimelineItem } from "../shared/room-state.js";
import { avatar, colorFor, el } from "./dom.js";

/** Messages from the same person within this time share one header. */
const GROUP_MS = 5 * 60_000;
/** Closer than this to the top starts loading older messages. */
const LOAD_OLDER_PX = 120;
const AT_BOTTOM_PX = 60;

export interface TimelineActions {
  loadOlder(): void;
  retry(clientMsgId: string): void;
  discard(clientMsgId: string): void;
}

export class TimelineView {
  readonly el: HTMLElement;
  private readonly top: HTMLElement;
  private readonly list: HTMLElement;
  private readonly nodes = new Map<string, HTMLElement>();
  /** Follow new messages while the reader is at the bottom. */
  private stick = true;
  private savedScrollTop = 0;

  constructor(
    readonly room: RoomState,
    private readonly actions: TimelineActions,
  ) {
    this.top = el("div", { class: "timeline-top" });
    this.list = el("div", { class: "timeline-list" });
    this.el = el("div", { class: "timeline", attrs: { role: "log", "aria-live": "polite", "data-room": room.name } }, this.top, this.list);
    this.el.addEventListener("scroll", () => {
      if (!this.el.classList.contains("active")) return;
      this.stick = this.distanceToBottom() < AT_BOTTOM_PX;
      this.savedScrollTop = this.el.scrollTop;
      if (this.el.scrollTop < LOAD_OLDER_PX) this.actions.loadOlder();
    });
  }

  setActive(active: boolean): void {
    this.el.classList.toggle("active", active);
    if (!active) return;
    if (this.stick) this.scrollToBottom();
    else this.el.scrollTop = this.savedScrollTop;
    this.maybeLoadOlder();
  }

  scrollToBottom(): void {
    this.stick = true;
    this.el.scrollTop = this.el.scrollHeight;
    this.savedScrollTop = this.el.scrollTop;
  }

  /** Brings the screen in line with the room's state. `prepended`: older messages arrived above. */
  render(selfIds: ReadonlySet<string>, prepended = false): void {
    const heightBefore = this.el.scrollHeight;
    const wasAtBottom = this.stick;
    this.renderTop();

    const wanted: HTMLElement[] = [];
    let previous: ChatMessage | undefined;
    for (const item of this.room.items) {
      const node = this.nodeFor(item, selfIds);
      if (item.kind === "message") {
        const m = item.message;
        const continued = previous !== undefined && previous.from.id === m.from.id && m.ts - previous.ts < GROUP_MS;
        node.classList.toggle("continued", continued);
        previous = m;
      } else {
        previous = undefined;
      }
      wanted.push(node);
    }
    for (const pending of this.room.pending) wanted.push(this.pendingNode(pending));

    const keep = new Set(wanted);
    let cursor = this.list.firstChild;
    for (const node of wanted) {
      if (node === cursor) cursor = cursor.nextSibling;
      else this.list.insertBefore(node, cursor);
    }
    while (cursor) {
      const next = cursor.nextSibling;
      cursor.remove();
      cursor = next;
    }
    for (const [key, node] of this.nodes) if (!keep.has(node)) this.nodes.delete(key);

    if (!this.el.classList.contains("active")) return;
    if (prepended && !wasAtBottom) this.el.scrollTop += this.el.scrollHeight - heightBefore;
    else if (wasAtBottom) this.scrollToBottom();
    this.savedScrollTop = this.el.scrollTop;
    this.maybeLoadOlder();
  }

  /** A page too short to scroll still gets its older messages. */
  private maybeLoadOlder(): void {
    if (this.el.classList.contains("active") && this.el.scrollTop < LOAD_OLDER_PX && this.room.olderBefore() !== undefined) this.actions.loadOlder();
  }

  private renderTop(): void {
    const hasOlder = this.room.olderBefore() !== undefined;
    const state = this.room.loadingOlder ? "loading" : hasOlder ? "more" : this.room.epoch === undefined ? "joining" : "start";
    if (this.top.dataset.state === state) return;
    this.top.dataset.state = state;
    this.top.replaceChildren();
    if (state === "more") {
      const button = el("button", { class: "link", text: "Load older messages", attrs: { type: "button" } });
      button.addEventListener("click", () => this.actions.loadOlder());
      this.top.append(button);
    } else if (state === "loading") {
      this.top.append(el("span", { text: "Loading older messages…" }));
    } else if (state === "start") {
      this.top.append(el("span", { text: `This is the start of #${this.room.name}.` }));
    } else {
      this.top.append(el("span", { text: `Joining #${this.room.name}…` }));
    }
  }

  private nodeFor(item: TimelineItem, selfIds: ReadonlySet<string>): HTMLElement {
    let node = this.nodes.get(item.key);
    if (node) return node;
    if (item.kind === "message") {
      node = messageNode(item.message, selfIds.has(item.message.from.id));
    } else {
      node = el("div", { class: `notice ${item.level}`, attrs: { "data-topic": item.topic } }, el("span", { class: "notice-text", text: item.text }), el("time", { class: "time", text: formatTime(item.ts) }));
    }
    this.nodes.set(item.key, node);
    return node;
  }

  private pendingNode(pending: PendingMessage): HTMLElement {
    const key = `p:${pending.clientMsgId}:${pending.status}:${pending.error?.code ?? ""}`;
    let node = this.nodes.get(key);
    if (node) return node;
    // The reason sits on the message itself: a notice above it scrolls away as the room goes on.
    const status = pending.status === "failed" ? `not sent${pending.error ? `: ${notSentReason(pending.error)}` : ""}` : pending.status === "queued" ? "waiting for connection…" : "sending…";
    const statusNode = el("span", { class: "status", text: status });
    if (pending.error) statusNode.title = describeError(pending.error);
    const meta = el("div", { class: "meta" }, statusNode);
    if (pending.status === "failed") {
      const retry = el("button", { class: "link", text: "Retry", attrs: { type: "button" } });
      retry.addEventListener("click", () => this.actions.retry(pending.clientMsgId));
      const discard = el("button", { class: "link", text: "Discard", attrs: { type: "button" } });
      discard.addEventListener("click", () => this.actions.discard(pending.clientMsgId));
      meta.append(retry, discard);
    }
    node = el("div", { class: `msg mine pending ${pending.status}`, attrs: { "data-client-msg-id": pending.clientMsgId } }, el("div", { class: "avatar-space" }), el("div", { class: "body" }, el("div", { class: "text", text: pending.text }), meta));
    this.nodes.set(key, node);
    return node;
  }

  private distanceToBottom(): number {
    return this.el.scrollHeight - this.el.scrollTop - this.el.clientHeight;
  }
}

/** Why a message was not sent, in a few words for its status line; the full sentence is its tooltip. */
export function notSentReason(error: ErrorBody): string {
  switch (error.code) {
    case "too_large": {
      const max = /(\d+) characters/.exec(error.message)?.[1];
      return max ? `too long (max ${max} characters)` : "too long";
    }
    case "rate_limited":
      return "sending too fast; wait a moment, then Retry";
    case "not_in_room":
      return "not in this room any more";
    case "unavailable":
      return "the server could not take it; Retry";
    case "unauthorized":
      return "not signed in";
    default:
      return describeError(error);
  }
}

function messageNode(m: ChatMessage, mine: boolean): HTMLElement {
  const time = el("time", { class: "time", text: formatTime(m.ts), attrs: { datetime: new Date(m.ts).toISOString(), title: new Date(m.ts).toLocaleString() } });
  const author = el("span", { class: "author", text: m.from.name });
  author.style.color = colorFor(m.from.name);
  return el(
    "div",
    { class: mine ? "msg mine" : "msg", attrs: { "data-seq": String(m.seq), "data-from": m.from.id } },
    avatar(m.from.name),
    el("div", { class: "body" }, el("div", { class: "meta" }, author, time), el("div", { class: "text", text: m.text })),
  );
}
