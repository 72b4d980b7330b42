/** The side panel: the rooms joined (with unread counts) and the members of the room on screen. */
import type { Member } from "../../protocol.js";
import type { RoomState } from "../shared/room-state.js";
import { avatar, byId, el } from "./dom.js";

export interface SidebarActions {
  switchTo(room: string): void;
  leave(room: string): void;
}

export class SidebarView {
  private readonly roomList = byId("room-list");
  private readonly memberList = byId("member-list");
  private readonly memberCount = byId("member-count");

  constructor(private readonly actions: SidebarActions) {}

  renderRooms(rooms: Iterable<RoomState>, active: string | undefined, unread: ReadonlyMap<string, number>): void {
    const items: HTMLElement[] = [];
    for (const room of rooms) {
      const count = unread.get(room.name) ?? 0;
      const open = el("button", { class: "room-open", attrs: { type: "button", title: `Open #${room.name}` } }, el("span", { class: "hash", text: "#" }), el("span", { class: "room-name", text: room.name }));
      if (count > 0) open.append(el("span", { class: "badge", text: count > 99 ? "99+" : String(count), attrs: { "aria-label": `${count} unread` } }));
      if (room.status === "failed") open.append(el("span", { class: "room-warn", text: "!", attrs: { title: "could not rejoin" } }));
      open.addEventListener("click", () => this.actions.switchTo(room.name));
      const leave = el("button", { class: "room-leave", text: "×", attrs: { type: "button", title: `Leave #${room.name}`, "aria-label": `Leave #${room.name}` } });
      leave.addEventListener("click", () => this.actions.leave(room.name));
      const li = el("li", { class: room.name === active ? "room-item active" : "room-item", attrs: { "data-room": room.name } }, open, leave);
      items.push(li);
    }
    this.roomList.replaceChildren(...items);
  }

  renderMembers(room: RoomState | undefined, selfIds: ReadonlySet<string>): void {
    const members: Member[] = room ? [...room.members.values()].sort((a, b) => a.name.localeCompare(b.name)) : [];
    this.memberCount.textContent = room ? String(members.length) : "";
    this.memberList.replaceChildren(
      ...members.map((m) => {
        const li = el("li", { class: "member", attrs: { "data-id": m.id } }, avatar(m.name), el("span", { class: "member-name", text: m.name }));
        if (selfIds.has(m.id)) li.append(el("span", { class: "you", text: "you" }));
        return li;
      }),
    );
  }
}
