import assert from "node:assert/strict";
import { spawn, type ChildProcess } from "node:child_process";
import { existsSync } from "node:fs";
import { after, afterEach, before, describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import { SignJWT } from "jose";
import type { Browser } from "playwright-core";
import { createChatServer, type ChatServer, type CreateChatServerOptions } from "../src/server.js";
import { ChatPage, launchChromium } from "./helpers/browser.js";
import { TestClient } from "./helpers/client.js";
import { AdmissionGate, dropConnections } from "./helpers/server.js";
import { freePort, killOnExit, RedisProcess } from "./helpers/redis.js";

/** Holds a user's reconnect at the door, so that what it misses is missed for real. */
const gate = new AdmissionGate();
const WEB_ROOT = fileURLToPath(new URL("../web", import.meta.url));
const OPTIONS: CreateChatServerOptions = {
  logLevel: "silent",
  unsubscribeDelay: 0,
  webRoot: WEB_ROOT,
  maxMessageLength: 300,
  // The scroll-back test fills a room quickly; the limits have their own tests.
  messageRate: 1000,
  messageBurst: 1000,
};

async function serve(port = 0, options: CreateChatServerOptions = {}): Promise<{ server: ChatServer; url: string; port: number }> {
  const server = await createChatServer({ ...OPTIONS, admit: gate.admit, ...options });
  const address = await server.listen(port, "127.0.0.1");
  return { server, port: address.port, url: `http://127.0.0.1:${address.port}` };
}

describe("web client in headless Chromium", () => {
  let browser: Browser;
  let srv: Awaited<ReturnType<typeof serve>>;
  const pages: ChatPage[] = [];
  const clients: TestClient[] = [];
  /** Servers with other options than srv's, for one test. */
  const extraServers: ChatServer[] = [];

  const openAt = async (url: string, viewport?: { width: number; height: number }): Promise<ChatPage> => {
    const page = await ChatPage.open(browser, url, viewport);
    pages.push(page);
    return page;
  };
  const open = async (name: string, room: string, viewport?: { width: number; height: number }, base = srv.url): Promise<ChatPage> => {
    const page = await openAt(`${base}/`, viewport);
    await page.enter(name, room);
    return page;
  };
  const serveOther = async (options: CreateChatServerOptions): Promise<string> => {
    const other = await serve(0, options);
    extraServers.push(other.server);
    return other.url;
  };
  const roomList = (p: ChatPage): Promise<Array<string | null>> => p.page.$$eval(".room-item", (els) => els.map((e) => e.getAttribute("data-room")));
  const connect = async (name: string): Promise<TestClient> => {
    const client = await TestClient.connect(srv.url, { name });
    clients.push(client);
    return client;
  };
  /** The server's order of a room: what every page must end up showing. */
  const serverTexts = async (room: string): Promise<string[]> => {
    const reader = await connect("reader");
    await reader.joinOk(room);
    const page = await reader.history(room, { limit: 100 });
    assert.ok(page.ok);
    reader.close();
    return page.messages.map((m) => m.text);
  };

  before(async () => {
    assert.ok(existsSync(`${WEB_ROOT}/index.html`) && existsSync(`${WEB_ROOT}/app.js`), `no built web client in ${WEB_ROOT}: run npm run build`);
    browser = await launchChromium();
    srv = await serve();
  });
  afterEach(async () => {
    for (const c of clients.splice(0)) c.close();
    for (const p of pages.splice(0)) await p.close().catch(() => {});
    for (const s of extraServers.splice(0)) await s.close();
  });
  after(async () => {
    await browser?.close();
    await srv?.server.close();
  });

  it("shows a message typed in one page in the other, with sender and time, once", async () => {
    const ann = await open("ann", "hello");
    const bob = await open("bob", "hello");
    await ann.send("hi bob");
    await bob.waitTexts(["hi bob"]);
    await ann.waitTexts(["hi bob"]);
    const shown = await bob.page.$eval(".timeline.active .msg", (m) => ({ author: m.querySelector(".author")?.textContent, time: m.querySelector(".time")?.textContent }));
    assert.equal(shown.author, "ann");
    assert.match(shown.time ?? "", /^\d\d:\d\d$/);
    await bob.send("hello ann");
    await ann.waitTexts(["hi bob", "hello ann"]);
    // The sender's pending copy was replaced by the server's, not added to it.
    assert.equal(await ann.page.locator(".msg.pending").count(), 0);
    assert.deepEqual(await bob.texts(), ["hi bob", "hello ann"]);
    assert.deepEqual([...ann.errors, ...bob.errors], []);
  });

  it("shows who is in the room, who joins and leaves, and who is typing", async () => {
    const ann = await open("ann", "presence");
    const bob = await open("bob", "presence");
    await ann.waitText(".timeline.active .notice", "bob joined");
    const members = (p: ChatPage) => p.page.$$eval("#member-list .member-name", (els) => els.map((e) => e.textContent));
    await ann.page.waitForFunction(() => document.querySelectorAll("#member-list .member").length === 2);
    assert.deepEqual(await members(ann), ["ann", "bob"]);
    assert.deepEqual(await members(bob), ["ann", "bob"]);
    assert.equal(await ann.page.textContent("#room-sub"), "2 members");

    await bob.type("I am typ");
    await ann.waitText("#typing", "bob is typing");
    await bob.page.press("#input", "Enter");
    await ann.waitTexts(["I am typ"]);
    assert.equal(await ann.page.textContent("#typing"), "", "a message ends its sender's typing");
    assert.equal(await bob.page.textContent("#typing"), "", "nobody sees their own typing");

    await bob.page.click('.room-item[data-room="presence"] .room-leave');
    await ann.waitText(".timeline.active .notice", "bob left");
    await ann.page.waitForFunction(() => document.querySelectorAll("#member-list .member").length === 1);
    assert.equal(await bob.page.isVisible("#empty"), true, "with no room left the page offers to join one");
  });

  it("notifies of messages while the tab is in the background, once turned on with the bell, and remembers it", async () => {
    const ann = await openAt(`${srv.url}/`);
    await ann.context.grantPermissions(["notifications"], { origin: srv.url });
    // Records what the page asks the real Notification API to show, and lets the test put the tab
    // in the background (headless Chromium keeps every page visible).
    await ann.page.addInitScript(() => {
      const w = window as unknown as { __notes: Array<{ title: string; body?: string; tag?: string }>; __setHidden: (h: boolean) => void };
      w.__notes = [];
      const Real = window.Notification;
      window.Notification = class extends Real {
        constructor(title: string, options?: NotificationOptions) {
          super(title, options);
          w.__notes.push({ title, body: options?.body, tag: options?.tag });
        }
      } as typeof Notification;
      let hidden = false;
      Object.defineProperty(Document.prototype, "hidden", { get: () => hidden, configurable: true });
      w.__setHidden = (h) => {
        hidden = h;
        document.dispatchEvent(new Event("visibilitychange"));
      };
    });
    await ann.page.reload();
    await ann.enter("ann", "bell");
    const bob = await connect("bob");
    await bob.joinOk("bell");
    const notes = () => ann.page.evaluate(() => (window as unknown as { __notes: unknown[] }).__notes);
    const setHidden = (hidden: boolean) => ann.page.evaluate((h) => (window as unknown as { __setHidden: (h: boolean) => void }).__setHidden(h), hidden);

    assert.equal(await ann.page.getAttribute("#notify-toggle", "aria-pressed"), "false");
    await setHidden(true);
    await bob.sendOk("bell", "not asked for yet");
    await ann.waitTexts(["not asked for yet"]);
    await ann.page.click("#notify-toggle");
    assert.equal(await ann.page.getAttribute("#notify-toggle", "aria-pressed"), "true");
    await setHidden(false);
    await bob.sendOk("bell", "while you look");
    await ann.waitTexts(["not asked for yet", "while you look"]);
    await setHidden(true);
    await bob.sendOk("bell", "hello in the background");
    await ann.page.waitForFunction(() => (window as unknown as { __notes: unknown[] }).__notes.length > 0);
    assert.deepEqual(await notes(), [{ title: "bob in #bell", body: "hello in the background", tag: "roomcast-bell" }]);

    // Remembered across a reload; the bell turns it off again.
    await ann.page.reload();
    await ann.waitJoined("bell");
    assert.equal(await ann.page.getAttribute("#notify-toggle", "aria-pressed"), "true");
    await ann.page.click("#notify-toggle");
    await setHidden(true);
    await bob.sendOk("bell", "after turning it off");
    await ann.waitText(".timeline.active .msg .text", "after turning it off");
    assert.deepEqual(await notes(), []);
    assert.deepEqual(ann.errors, []);
  });

  it("renders message text and names as text, never as HTML", async () => {
    const xss = "<img src=x onerror=alert(1)>";
    const eve = await open("<b>eve</b>", "xss");
    const bob = await open("bob", "xss");
    await eve.send(xss);
    await bob.waitTexts([xss]);
    assert.equal(await bob.page.textContent(".timeline.active .msg .author"), "<b>eve</b>");
    for (const p of [eve, bob]) {
      assert.equal(await p.page.locator('.timeline img, img[src="x"]').count(), 0, "no <img> made from the message");
      assert.equal(await p.page.locator(".timeline b").count(), 0, "no <b> made from the name");
    }
    // An onerror handler would have fired by the time a later message arrives.
    await bob.send("after");
    await eve.waitTexts([xss, "after"]);
    assert.deepEqual([...eve.dialogs, ...bob.dialogs], []);
  });

  it("switches between several rooms and counts unread messages of the others", async () => {
    const ann = await open("ann", "one");
    const bob = await open("bob", "one");
    await ann.page.fill("#join-input", "two");
    await ann.page.press("#join-input", "Enter");
    await ann.waitJoined("two");
    assert.equal(await ann.page.textContent("#room-title"), "#two");
    await ann.send("only in two");
    await ann.waitTexts(["only in two"]);

    await bob.send("for room one");
    await ann.waitText('.room-item[data-room="one"] .badge', "1");
    await ann.page.click('.room-item[data-room="one"] .room-open');
    await ann.waitTexts(["for room one"]);
    assert.equal(await ann.page.locator('.room-item[data-room="one"] .badge').count(), 0);
    assert.deepEqual(await bob.texts(), ["for room one"], "bob is not in two");

    // Name and rooms are remembered: a reload goes straight back, a new tab offers them.
    await ann.page.reload();
    await ann.waitJoined("one");
    assert.deepEqual(await ann.page.$$eval(".room-item", (els) => els.map((e) => e.getAttribute("data-room"))), ["one", "two"]);
    assert.equal(await ann.page.textContent("#me-name"), "ann");
    await ann.waitTexts(["for room one"]);
    const tab = await ann.context.newPage();
    await tab.goto(`${srv.url}/`);
    assert.equal(await tab.inputValue("#welcome-name"), "ann");
    await tab.close();
  });

  it("says why the server refused a message, and keeps it to retry", async () => {
    const ann = await open("ann", "errors");
    await ann.send("x".repeat(400));
    await ann.waitText(".timeline.active .notice.error", "too long");
    assert.match((await ann.page.textContent(".timeline.active .notice.error")) ?? "", /\(too_large\)/);
    assert.equal(await ann.page.locator(".msg.pending.failed").count(), 1);
    await ann.page.click(".msg.pending.failed button:text('Discard')");
    assert.equal(await ann.page.locator(".msg.pending").count(), 0);
    await ann.page.fill("#join-input", "not a room!");
    await ann.page.press("#join-input", "Enter");
    await ann.waitText("#join-error", "Room names");
  });

  it("shows why a message was refused on the message itself, still in view after the room moved on", async () => {
    const ann = await open("ann", "refused");
    const bob = await connect("bob");
    await bob.joinOk("refused");
    await ann.send("y".repeat(301));
    const failed = ".timeline.active .msg.pending.failed";
    await ann.waitText(`${failed} .status`, "not sent: too long (max 300 characters)");
    // The room goes on: the notice above the message scrolls away, the message stays at the bottom.
    const lines = Array.from({ length: 60 }, (_, i) => `bob ${i + 1}`);
    for (const line of lines) await bob.sendOk("refused", line);
    await ann.waitTexts(lines);
    const inView = (selector: string): Promise<boolean> =>
      ann.page.$eval(selector, (node) => {
        const box = node.getBoundingClientRect();
        const view = node.closest(".timeline")!.getBoundingClientRect();
        return box.top >= view.top && box.bottom <= view.bottom;
      });
    assert.equal(await inView(".timeline.active .notice.error"), false, "the notice above has scrolled out of view");
    assert.equal(await inView(`${failed} .status`), true, "the reason is in view");
    assert.equal(await inView(`${failed} button:text('Retry')`), true, "Retry is in view, next to the reason");
    assert.match((await ann.page.getAttribute(`${failed} .status`, "title")) ?? "", /\(too_large\)/, "the full sentence on hover");
  });

  it("says on a message refused as too fast that it was, and sends it on Retry", async () => {
    const url = await serveOther({ messageRate: 1, messageBurst: 1 });
    const ann = await open("ann", "slow", undefined, url);
    await ann.send("first");
    await ann.send("second");
    const failed = ".timeline.active .msg.pending.failed";
    await ann.waitText(`${failed} .status`, "not sent: sending too fast");
    // Retry until the bucket has a token again (a second): each click is answered before the next.
    await ann.page.waitForFunction(
      (sel) => {
        const retry = document.querySelector<HTMLButtonElement>(`${sel} button.link`);
        retry?.click();
        return document.querySelectorAll(".timeline.active .msg.pending").length === 0;
      },
      failed,
      { polling: 200 },
    );
    await ann.waitTexts(["first", "second"]);
  });

  it("lets a second tab be someone else: the rooms remembered belong to the name", async () => {
    const ann = await open("ann", "annroom");
    const tab = await ann.newTab(`${srv.url}/`);
    pages.push(tab);
    assert.equal(await tab.page.inputValue("#welcome-name"), "ann", "the new tab offers the last name");
    await tab.enter("bob", "kitchen");
    assert.deepEqual(await roomList(tab), ["kitchen"], "bob is not put in ann's rooms");
    const reader = await connect("reader");
    assert.deepEqual((await reader.joinOk("annroom")).members.map((m) => m.name).sort(), ["ann", "reader"]);

    // Each tab's reload goes straight back, as that person, into that person's rooms.
    await tab.page.reload();
    await tab.waitJoined("kitchen");
    assert.deepEqual(await roomList(tab), ["kitchen"]);
    assert.equal(await tab.page.textContent("#me-name"), "bob");
    await ann.page.reload();
    await ann.waitJoined("annroom");
    assert.deepEqual(await roomList(ann), ["annroom"]);
    assert.equal(await ann.page.textContent("#me-name"), "ann");

    // A third tab where bob signs in again gets bob's rooms back, not ann's.
    const again = await ann.newTab(`${srv.url}/`);
    pages.push(again);
    await again.enter("bob", "pantry");
    await again.page.waitForSelector('.room-item[data-room="kitchen"]');
    assert.deepEqual(await roomList(again), ["pantry", "kitchen"]);
  });

  it("signs in to a server that requires a token: from a link, from the welcome card, or asked for when refused", async () => {
    const secret = "web-client-test-secret-0123456789";
    const url = await serveOther({ jwtSecret: secret });
    const tokenFor = (sub: string): Promise<string> =>
      new SignJWT({}).setProtectedHeader({ alg: "HS256" }).setSubject(sub).setIssuedAt().setExpirationTime("1h").sign(new TextEncoder().encode(secret));

    // A link with ?token=: the page uses it and takes it out of the address bar at once.
    const ann = await openAt(`${url}/?token=${await tokenFor("id-ann")}#vault`);
    assert.equal(new URL(ann.page.url()).search, "", "no token left in the address bar");
    assert.equal(new URL(ann.page.url()).hash, "#vault");
    await ann.enter("ann", "vault");
    await ann.page.reload();
    await ann.waitJoined("vault");

    // The token field under "Advanced" on the welcome card.
    const cat = await openAt(`${url}/`);
    await cat.page.click("#welcome-advanced summary");
    await cat.page.fill("#welcome-token", await tokenFor("id-cat"));
    await cat.enter("cat", "vault");

    // No token: the page says why it is not connected and asks for one.
    const bob = await openAt(`${url}/`);
    await bob.page.fill("#welcome-name", "bob");
    await bob.page.fill("#welcome-room", "vault");
    await bob.page.press("#welcome-name", "Enter");
    await bob.page.waitForSelector("#signin:not([hidden])");
    await bob.waitText("#signin-reason", "only lets in people with a token");
    await bob.waitText("#banner", "this server needs a sign-in token");
    await bob.page.fill("#signin-token", "not-a-token");
    await bob.page.press("#signin-token", "Enter");
    await bob.waitText("#signin-reason", "did not accept your token: invalid or expired token");
    await bob.page.fill("#signin-token", await tokenFor("id-bob"));
    await bob.page.press("#signin-token", "Enter");
    await bob.waitJoined("vault");
    assert.equal(await bob.page.isVisible("#signin"), false);
    assert.equal(await bob.page.isVisible("#banner"), false);
    await bob.send("signed in");
    await ann.waitTexts(["signed in"]);
    await cat.waitTexts(["signed in"]);
    assert.deepEqual([...ann.errors, ...bob.errors, ...cat.errors], []);
  });

  it("loads older messages when scrolled to the top", async () => {
    const writer = await connect("writer");
    await writer.joinOk("long");
    for (let i = 1; i <= 120; i++) await writer.sendOk("long", `line ${i}`);
    const ann = await open("ann", "long");
    const all = Array.from({ length: 120 }, (_, i) => `line ${i + 1}`);
    await ann.waitTexts(all.slice(70));
    assert.equal(await ann.page.getAttribute(".timeline.active .timeline-top", "data-state"), "more");
    // Each scroll to the top asks for one page of older messages, until the first.
    for (let i = 0; i < 10; i++) {
      const shown = (await ann.texts()).length;
      if (shown === 120) break;
      await ann.page.$eval(".timeline.active", (el) => (el.scrollTop = 0));
      await ann.page.waitForFunction((n) => document.querySelectorAll(".timeline.active .msg").length > n, shown);
    }
    await ann.waitTexts(all);
    assert.equal(await ann.page.getAttribute(".timeline.active .timeline-top", "data-state"), "start");
    assert.deepEqual(await ann.page.$$eval(".timeline.active .msg", (els) => els.map((e) => Number(e.getAttribute("data-seq")))), all.map((_, i) => i + 1));
  });

  it("recovers what it missed while its connection was down, each message once, in order", async () => {
    const ann = await open("ann", "drop");
    const bob = await open("bob", "drop");
    const cat = await connect("cat");
    await cat.joinOk("drop");
    await ann.send("one");
    await bob.send("two");
    await ann.waitTexts(["one", "two"]);

    // Hold ann's reconnect at the door until cat has spoken, so the messages are really missed.
    const open_ = gate.hold("ann");
    assert.equal(dropConnections(srv, "ann"), 1);
    await ann.page.waitForSelector('#conn:is([data-state="reconnecting"], [data-state="offline"])');
    assert.equal(await ann.page.isVisible("#banner"), true);
    await ann.send("three (typed while offline)");
    for (const text of ["four", "five", "six"]) await cat.sendOk("drop", text);
    open_();

    await ann.page.waitForSelector('#conn[data-state="connected"]');
    const expected = await waitServerCount(serverTexts, "drop", 6);
    await ann.waitTexts(expected);
    await bob.waitTexts(expected);
    assert.deepEqual([...expected].sort(), ["five", "four", "one", "six", "three (typed while offline)", "two"]);
    assert.equal(await ann.page.locator('.notice[data-topic="recovery"]').count(), 0, "everything was recovered: no warning");
    assert.equal(await ann.page.isVisible("#banner"), false);
  });

  it("after a server restart shows every message once, in order, and says history started over", async () => {
    const ann = await open("ann", "restart");
    const bob = await open("bob", "restart");
    await ann.send("before 1");
    await bob.send("before 2");
    await ann.waitTexts(["before 1", "before 2"]);
    await bob.waitTexts(["before 1", "before 2"]);

    const port = srv.port;
    await srv.server.close();
    await ann.page.waitForSelector('#conn:is([data-state="reconnecting"], [data-state="offline"])');
    await bob.page.waitForSelector('#conn:is([data-state="reconnecting"], [data-state="offline"])');
    // bob types while the server is down: the page keeps his messages and sends them once it is back.
    await bob.send("during 1");
    await bob.send("during 2");
    assert.equal(await bob.page.locator(".msg.pending.queued").count(), 2);

    srv = await serve(port);
    const cat = await connect("cat");
    await cat.joinOk("restart");
    await cat.sendOk("restart", "after, from cat");
    await ann.page.waitForSelector('#conn[data-state="connected"]');

    // The in-memory history is gone with the old process: the new one's order follows the old.
    const fresh = await waitServerCount(serverTexts, "restart", 3);
    assert.deepEqual([...fresh].sort(), ["after, from cat", "during 1", "during 2"]);
    assert.ok(fresh.indexOf("during 1") < fresh.indexOf("during 2"));
    for (const p of [ann, bob]) {
      await p.waitTexts(["before 1", "before 2", ...fresh]);
      await p.waitText('.timeline.active .notice[data-topic="recovery"]', "started over");
      assert.equal(await p.page.locator(".msg.pending").count(), 0);
    }
    assert.deepEqual([...ann.errors, ...bob.errors], []);
  });

  it("fits a phone screen: the side panel opens from the menu", async () => {
    const ann = await open("ann", "phone", { width: 390, height: 740 });
    await ann.send("small screen");
    await ann.waitTexts(["small screen"]);
    const page = ann.page;
    assert.ok(await page.evaluate(() => document.documentElement.scrollWidth <= window.innerWidth), "no sideways scrolling");
    assert.equal(await page.isVisible("#menu-toggle"), true);
    const hidden = await page.$eval("#sidebar", (el) => el.getBoundingClientRect().right);
    assert.ok(hidden <= 0, `side panel off screen (right edge at ${hidden})`);
    const composer = await page.$eval("#composer", (el) => el.getBoundingClientRect().bottom);
    assert.ok(composer <= 740, "composer on screen");
    await page.click("#menu-toggle");
    await page.waitForFunction(() => document.getElementById("sidebar")!.getBoundingClientRect().left >= 0);
    assert.equal(await page.isVisible('.room-item[data-room="phone"]'), true);
  });
});

describe("web client across two processes sharing Redis", () => {
  let browser: Browser;
  let redis: RedisProcess;
  const servers: ServerChild[] = [];
  const pages: ChatPage[] = [];

  before(async () => {
    browser = await launchChromium();
    redis = await RedisProcess.start();
  });
  after(async () => {
    for (const p of pages) await p.close().catch(() => {});
    await browser?.close();
    for (const s of servers) await s.stop();
    await redis?.stop();
  });

  it("two pages on two processes chat, and a restarted process's page recovers what it missed", async () => {
    const env = { REDIS_URL: redis.url, REDIS_PREFIX: `web-${process.pid}:` };
    const [portA, portB] = [await freePort(), await freePort()];
    servers.push(await ServerChild.start(portA, "web-a", env), await ServerChild.start(portB, "web-b", env));
    const ann = await ChatPage.open(browser, `http://127.0.0.1:${portA}/`);
    const bob = await ChatPage.open(browser, `http://127.0.0.1:${portB}/`);
    pages.push(ann, bob);
    await ann.enter("ann", "cluster");
    await bob.enter("bob", "cluster");
    await ann.page.waitForFunction(() => document.querySelectorAll("#member-list .member").length === 2);
    await ann.send("from A");
    await bob.waitTexts(["from A"]);
    await bob.type("typing on B");
    await ann.waitText("#typing", "bob is typing");
    await bob.page.press("#input", "Enter");
    await ann.waitTexts(["from A", "typing on B"]);

    // ann's process goes away (gracefully, as in a deploy); bob goes on talking on the other one.
    await servers[0]!.stop("SIGTERM");
    await ann.page.waitForSelector('#conn:is([data-state="reconnecting"], [data-state="offline"])');
    await bob.send("while A was down 1");
    await bob.send("while A was down 2");
    await bob.waitTexts(["from A", "typing on B", "while A was down 1", "while A was down 2"]);
    servers[0] = await ServerChild.start(portA, "web-a2", env);

    const all = ["from A", "typing on B", "while A was down 1", "while A was down 2"];
    await ann.page.waitForSelector('#conn[data-state="connected"]', { timeout: 15_000 });
    await ann.waitTexts(all);
    await ann.send("back on A");
    await bob.waitTexts([...all, "back on A"]);
    await ann.waitTexts([...all, "back on A"]);
    assert.equal(await ann.page.locator('.notice[data-topic="recovery"]').count(), 0, "Redis kept the history: everything was recovered");
    assert.deepEqual([...ann.errors, ...bob.errors], []);
  });
});

/** `node dist/src/cli.js` on a given port (so a restarted process answers where its pages were). */
class ServerChild {
  private stderr = "";
  private constructor(private readonly child: ChildProcess) {}

  static async start(port: number, nodeId: string, env: Record<string, string>): Promise<ServerChild> {
    const cli = fileURLToPath(new URL("../src/cli.js", import.meta.url));
    const child = spawn(process.execPath, [cli], {
      env: { ...process.env, PORT: String(port), HOST: "127.0.0.1", NODE_ID: nodeId, LOG_LEVEL: "warn", UNSUBSCRIBE_DELAY: "0", ...env },
      stdio: ["ignore", "ignore", "pipe"],
    });
    killOnExit(child);
    const server = new ServerChild(child);
    child.stderr!.on("data", (chunk: Buffer) => (server.stderr += chunk.toString()));
    const deadline = Date.now() + 15_000;
    for (;;) {
      if (child.exitCode !== null) throw new Error(`server ${nodeId} exited ${child.exitCode}: ${server.stderr}`);
      const ready = await fetch(`http://127.0.0.1:${port}/readyz`).then((r) => r.ok, () => false);
      if (ready) return server;
      if (Date.now() > deadline) throw new Error(`server ${nodeId} not ready: ${server.stderr}`);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }

  async stop(signal: NodeJS.Signals = "SIGKILL"): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    const exited = new Promise((resolve) => this.child.once("exit", resolve));
    this.child.kill(signal);
    await exited;
  }
}

/** Polls the server's copy of a room until it holds `count` messages (sends in flight settle). */
async function waitServerCount(read: (room: string) => Promise<string[]>, room: string, count: number): Promise<string[]> {
  const deadline = Date.now() + 10_000;
  for (;;) {
    const texts = await read(room);
    if (texts.length >= count) return texts;
    if (Date.now() > deadline) throw new Error(`server has ${JSON.stringify(texts)} in ${room}, wanted ${count} messages`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}
