import { CHAT_NAMESPACE } from "../../src/protocol.js";

const SEPARATOR = "\x1e"; // engine.io v4 separates packets of one polling payload with a record separator

/**
 * A bare Engine.IO long-polling client speaking just enough Socket.IO to join a room. It reads
 * only when asked to (`poll`), so a test can make it stop reading, like a stalled browser tab.
 */
export class RawPollingClient {
  private readonly received: string[] = [];
  private nextAckId = 1;

  private constructor(
    private readonly base: string,
    readonly sid: string,
  ) {}

  static async connect(url: string, auth: Record<string, unknown>): Promise<RawPollingClient> {
    const open = await (await fetch(`${url}/socket.io/?EIO=4&transport=polling`)).text();
    if (!open.startsWith("0")) throw new Error(`unexpected open packet: ${open.slice(0, 100)}`);
    const { sid } = JSON.parse(open.slice(1)) as { sid: string };
    const client = new RawPollingClient(`${url}/socket.io/?EIO=4&transport=polling&sid=${encodeURIComponent(sid)}`, sid);
    await client.post(`40${CHAT_NAMESPACE},${JSON.stringify(auth)}`);
    await client.pollUntil((p) => p.startsWith(`42${CHAT_NAMESPACE},["hello"`));
    return client;
  }

  /** Emits an event with an ack id and polls until the ack arrives; returns the ack's payload. */
  async request(event: string, payload: unknown): Promise<unknown> {
    const id = this.nextAckId++;
    await this.post(`42${CHAT_NAMESPACE},${id}${JSON.stringify([event, payload])}`);
    const prefix = `43${CHAT_NAMESPACE},${id}`;
    const ack = await this.pollUntil((p) => p.startsWith(prefix));
    return (JSON.parse(ack.slice(prefix.length)) as unknown[])[0];
  }

  private async post(body: string): Promise<void> {
    const res = await fetch(this.base, { method: "POST", body, headers: { "content-type": "text/plain;charset=UTF-8" } });
    if (!res.ok) throw new Error(`POST answered ${res.status}`);
    await res.text();
  }

  /** Long-polls until a packet matches; earlier packets stay in `received`. */
  private async pollUntil(match: (packet: string) => boolean): Promise<string> {
    for (let i = 0; i < 20; i++) {
      const found = this.received.find(match);
      if (found) return found;
      const res = await fetch(this.base);
      if (!res.ok) throw new Error(`GET answered ${res.status}`);
      this.received.push(...(await res.text()).split(SEPARATOR));
    }
    throw new Error("packet never arrived");
  }
}
