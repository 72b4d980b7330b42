import type { Broker } from "../bus/broker.js";
import type { Gateway } from "./gateway.js";
import { LocalRoom, type StreamObserver } from "./local-room.js";

interface Slot {
  readonly room: LocalRoom;
  /** Local members, joining ones included. */
  refs: number;
  subscribed: boolean;
  /** Subscribe/unsubscribe of one room run one after another, never interleaved. */
  chain: Promise<void>;
  unsubscribeTimer: NodeJS.Timeout | undefined;
}

export interface RoomRegistryOptions {
  /** How long a room stays subscribed after its last local member left, to absorb churn. */
  unsubscribeDelayMs: number;
  onError: (err: unknown, room: string) => void;
  /** Every room's stream reports gaps and restarts here. */
  streams?: StreamObserver;
}

/**
 * The rooms this process serves. A room is subscribed on the bus while it has local members:
 * `acquire` resolves once the subscription is confirmed, `release` unsubscribes after a short
 * delay. Both reconcile wanted state (refs > 0) with actual state through one queue per room, so
 * a join racing a leave can never leave a room unsubscribed with members, or subscribed without.
 */
export class RoomRegistry {
  private readonly slots = new Map<string, Slot>();

  constructor(
    private readonly broker: Broker,
    private readonly gateway: Gateway,
    private readonly options: RoomRegistryOptions,
  ) {}

  /** The room if this process currently serves it. */
  get(name: string): LocalRoom | undefined {
    return this.slots.get(name)?.room;
  }

  get size(): number {
    return this.slots.size;
  }

  /** Takes a reference to the room; throws if the bus cannot subscribe. */
  async acquire(name: string): Promise<LocalRoom> {
    let slot = this.slots.get(name);
    if (!slot) {
      const room = new LocalRoom(
        name,
        this.gateway,
        (after, limit) => this.broker.history(name, { after, limit }),
        (err) => this.options.onError(err, name),
        this.options.streams,
      );
      slot = { room, refs: 0, subscribed: false, chain: Promise.resolve(), unsubscribeTimer: undefined };
      this.slots.set(name, slot);
    }
    slot.refs++;
    clearTimeout(slot.unsubscribeTimer);
    await this.reconcile(name, slot);
    if (!slot.subscribed) {
      this.release(name);
      throw new Error(`could not subscribe to room ${name}`);
    }
    return slot.room;
  }

  release(name: string): void {
    const slot = this.slots.get(name);
    if (!slot || slot.refs === 0) return;
    slot.refs--;
    if (slot.refs > 0) return;
    if (this.options.unsubscribeDelayMs <= 0) {
      void this.reconcile(name, slot);
      return;
    }
    slot.unsubscribeTimer = setTimeout(() => void this.reconcile(name, slot), this.options.unsubscribeDelayMs);
    slot.unsubscribeTimer.unref(); // must not keep the process alive
  }

  /** The rooms whose subscription is active. */
  subscribedNames(): string[] {
    return [...this.slots].filter(([, slot]) => slot.subscribed).map(([name]) => name);
  }

  /** After the bus may have lost a room's messages: the room fetches what it missed. False if not subscribed. */
  resync(name: string): boolean {
    const slot = this.slots.get(name);
    if (!slot?.subscribed) return false;
    slot.room.catchUp();
    return true;
  }

  async close(): Promise<void> {
    for (const slot of this.slots.values()) {
      clearTimeout(slot.unsubscribeTimer);
      slot.room.dispose();
    }
    await Promise.allSettled([...this.slots.values()].map((slot) => slot.chain));
    this.slots.clear();
  }

  private reconcile(name: string, slot: Slot): Promise<void> {
    slot.chain = slot.chain.then(() => this.apply(name, slot));
    return slot.chain;
  }

  private async apply(name: string, slot: Slot): Promise<void> {
    if (slot.refs > 0 && !slot.subscribed) {
      try {
        await this.broker.subscribe(name);
        const { head, epoch } = await this.broker.history(name, { limit: 0 });
        slot.subscribed = true;
        slot.room.initialize(head, epoch);
      } catch (err) {
        this.options.onError(err, name);
        await this.broker.unsubscribe(name).catch(() => {});
      }
    } else if (slot.refs === 0 && slot.subscribed) {
      slot.subscribed = false;
      slot.room.dispose();
      await this.broker.unsubscribe(name).catch((err) => this.options.onError(err, name));
    }
    if (slot.refs === 0 && !slot.subscribed && this.slots.get(name) === slot) this.slots.delete(name);
  }
}
