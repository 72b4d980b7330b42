// Makes docs/screenshot.png: two people (and a third over a plain socket) chatting in the web
// client, in headless Chromium. Run after `npm run build`: node scripts/screenshot.mjs
import { chromium } from "playwright-core";
import { io } from "socket.io-client";
import { createChatServer } from "../dist/src/server.js";

const OUT = process.argv[2] ?? "docs/screenshot.png";
const server = await createChatServer({ logLevel: "warn", webRoot: new URL("../dist/web", import.meta.url).pathname });
const { port } = await server.listen(0, "127.0.0.1");
const url = `http://127.0.0.1:${port}/`;
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM_PATH ?? "/usr/bin/chromium",
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
});

async function person(name, room, viewport = { width: 1180, height: 720 }) {
  const context = await browser.newContext({ viewport, deviceScaleFactor: 1.5 });
  const page = await context.newPage();
  await page.goto(url);
  await page.fill("#welcome-name", name);
  await page.fill("#welcome-room", room);
  await page.press("#welcome-name", "Enter");
  await page.waitForSelector(`.timeline.active[data-room="${room}"] .timeline-top[data-state="start"]`);
  return page;
}
async function say(page, text) {
  const before = await page.locator(".timeline.active .msg:not(.pending)").count();
  await page.fill("#input", text);
  await page.press("#input", "Enter");
  await page.waitForFunction((n) => document.querySelectorAll(".timeline.active .msg:not(.pending)").length > n, before);
}

const ann = await person("ann", "lobby");
await ann.fill("#join-input", "deploys");
await ann.press("#join-input", "Enter");
await ann.waitForSelector('.timeline.active[data-room="deploys"] .timeline-top[data-state="start"]');
await ann.click('.room-item[data-room="lobby"] .room-open');
const bob = await person("bob", "lobby");
await say(ann, "Morning! Is the release still on for today?");
await say(bob, "Yes, right after lunch. I'll post in #deploys when it starts.");
await say(bob, "The migration ran fine on staging last night.");

const cat = io(`${url}chat`, { auth: { name: "cat" }, transports: ["websocket"] });
await new Promise((resolve) => cat.once("hello", resolve));
await cat.emitWithAck("join", { room: "lobby" });
await cat.emitWithAck("join", { room: "deploys" });
await cat.emitWithAck("message", { room: "lobby", text: "I'll keep an eye on the dashboards." });
await cat.emitWithAck("message", { room: "deploys", text: "Staging is green." });
await cat.emitWithAck("message", { room: "deploys", text: "Canary at 5%, error rate flat." });
await ann.waitForSelector('.room-item[data-room="deploys"] .badge');
await say(ann, "Perfect, thanks both. Multi-line works too:\n- release notes are in the wiki\n- ping me if anything looks off");
await bob.fill("#input", "sounds good");
await ann.waitForSelector("#typing .typing-text");
await ann.mouse.move(0, 0);
await ann.screenshot({ path: OUT });
console.log(`wrote ${OUT}`);

cat.close();
await browser.close();
await server.close();
