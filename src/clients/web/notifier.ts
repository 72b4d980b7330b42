import type { ChatMessage } from "../../protocol.js";

const KEY = "roomcast.notify";

/**
 * Desktop notifications for messages that arrive while the tab is in the background. Off until
 * the person turns them on with the bell (the browser asks for permission then), remembered in
 * this browser. One notification per room, replaced by the next (same tag); clicking it brings
 * the tab forward on that room. The text goes to the OS as plain text, never as markup.
 */
export class Notifier {
  private on = false;
  private readonly supported = "Notification" in window;

  constructor(
    private readonly button: HTMLButtonElement,
    private readonly open: (room: string) => void,
  ) {
    button.hidden = !this.supported;
    if (!this.supported) return;
    this.on = readStored() && Notification.permission === "granted";
    this.render();
    button.addEventListener("click", () => void this.toggle());
  }

  /** New messages of a room from others; notifies of the newest while the tab is hidden. */
  arrived(room: string, messages: ChatMessage[]): void {
    const last = messages.at(-1);
    if (!this.on || !document.hidden || !last) return;
    const more = messages.length > 1 ? ` (+${messages.length - 1} more)` : "";
    const notification = new Notification(`${last.from.name} in #${room}`, { body: `${last.text.slice(0, 200)}${more}`, tag: `roomcast-${room}` });
    notification.onclick = () => {
      window.focus();
      this.open(room);
      notification.close();
    };
  }

  private async toggle(): Promise<void> {
    if (this.on) this.on = false;
    else {
      const permission = Notification.permission === "default" ? await Notification.requestPermission() : Notification.permission;
      this.on = permission === "granted";
    }
    try {
      localStorage.setItem(KEY, this.on ? "1" : "0");
    } catch {
      // storage disabled: the choice lasts for this page only
    }
    this.render();
  }

  private render(): void {
    this.button.setAttribute("aria-pressed", String(this.on));
    this.button.title = this.on
      ? "Desktop notifications are on: click to turn them off"
      : Notification.permission === "denied"
        ? "Notifications are blocked for this site in the browser's settings"
        : "Notify me of new messages while this tab is in the background";
  }
}

function readStored(): boolean {
  try {
    return localStorage.getItem(KEY) === "1";
  } catch {
    return false;
  }
}
