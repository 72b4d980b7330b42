import { existsSync } from "node:fs";
import { chromium, type Browser, type BrowserContext, type Page } from "playwright-core";

/** Debian's chromium; CHROMIUM_PATH overrides. The tests fail (never skip) without it. */
export const CHROMIUM_PATH = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";

// Without the background-networking flags Chromium keeps dialling Google on a closed network.
const FLAGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];

export async function launchChromium(): Promise<Browser> {
  if (!existsSync(CHROMIUM_PATH)) {
    throw new Error(`Chromium not found at ${CHROMIUM_PATH}: install it (apt-get install -y chromium) or set CHROMIUM_PATH. The browser tests do not skip.`);
  }
  // playwright-core makes its own fresh --user-data-dir for each launch.
  return chromium.launch({ executablePath: CHROMIUM_PATH, args: FLAGS, timeout: 30_000 });
}

/** A chat page in its own browser context (own storage: another person), with its problems recorded. */
export class ChatPage {
  readonly errors: string[] = [];
  readonly dialogs: string[] = [];

  private constructor(
    readonly context: BrowserContext,
    readonly page: Page,
    /** A tab opened with newTab shares its context (storage) with the page it came from. */
    private readonly ownsContext = true,
  ) {
    page.setDefaultTimeout(10_000);
    page.on("pageerror", (err) => this.errors.push(err.message));
    page.on("dialog", (dialog) => {
      this.dialogs.push(dialog.message());
      void dialog.dismiss();
    });
  }

  static async open(browser: Browser, url: string, viewport = { width: 1100, height: 720 }): Promise<ChatPage> {
    const context = await browser.newContext({ viewport });
    const page = await context.newPage();
    const chat = new ChatPage(context, page);
    await page.goto(url);
    return chat;
  }

  /** Another tab of the same browser: same localStorage, its own sessionStorage. */
  async newTab(url: string): Promise<ChatPage> {
    const chat = new ChatPage(this.context, await this.context.newPage(), false);
    await chat.page.goto(url);
    return chat;
  }

  /** Fills in the welcome card as a newcomer would, and waits until the room is joined. */
  async enter(name: string, room: string): Promise<void> {
    await this.page.fill("#welcome-name", name);
    await this.page.fill("#welcome-room", room);
    await this.page.press("#welcome-name", "Enter");
    await this.waitJoined(room);
  }

  async waitJoined(room: string): Promise<void> {
    await this.page.waitForSelector(`.timeline.active[data-room="${room}"] .timeline-top:is([data-state="start"], [data-state="more"])`);
    await this.page.waitForSelector(`#conn[data-state="connected"]`);
  }

  async type(text: string): Promise<void> {
    await this.page.fill("#input", text);
  }

  async send(text: string): Promise<void> {
    await this.page.fill("#input", text);
    await this.page.press("#input", "Enter");
  }

  /** Texts of the confirmed messages in the room on screen, top to bottom. */
  texts(): Promise<string[]> {
    return this.page.$$eval(".timeline.active .msg:not(.pending) .text", (els) => els.map((e) => e.textContent ?? ""));
  }

  /** Waits until the room on screen shows exactly these messages; the error shows what it had. */
  async waitTexts(expected: string[], timeoutMs = 10_000): Promise<void> {
    try {
      await this.page.waitForFunction(
        (want) => {
          const got = Array.from(document.querySelectorAll(".timeline.active .msg:not(.pending) .text"), (e) => e.textContent);
          return got.length === want.length && got.every((t, i) => t === want[i]);
        },
        expected,
        { timeout: timeoutMs, polling: 50 },
      );
    } catch (err) {
      throw new Error(`page shows ${JSON.stringify(await this.texts())}, wanted ${JSON.stringify(expected)}: ${(err as Error).message.split("\n")[0]}`);
    }
  }

  async waitText(selector: string, text: string): Promise<void> {
    await this.page.waitForFunction(([sel, want]) => Array.from(document.querySelectorAll(sel!)).some((e) => e.textContent?.includes(want!)), [selector, text], { polling: 50 });
  }

  async close(): Promise<void> {
    await (this.ownsContext ? this.context.close() : this.page.close());
  }
}
