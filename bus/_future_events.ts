/**
 * Events scheduled for later (`PostOffice.sendLater`): in memory, as in the Java original
 * (never persisted, not sent anywhere until due), bounded, and listed and cancellable by id.
 *
 * @module
 */

/** An event scheduled for later, as {@link FutureEvents.list} shows it. */
export interface FutureEvent {
  /** The event's id (what `sendLater` returned). */
  id: string;
  /** Its route. */
  to: string;
  /** When it is sent. */
  at: Date;
}

/** The most events one platform holds for later; more are refused (memory stays bounded). */
export const MAX_FUTURE_EVENTS = 100_000;
// setTimeout's longest delay (about 24.8 days); a later time is reached in steps.
const MAX_TIMER_MS = 2 ** 31 - 1;

interface Pending extends FutureEvent {
  timer: ReturnType<typeof setTimeout>;
}

/** The events one platform holds for later. */
export class FutureEvents {
  readonly #pending = new Map<string, Pending>();

  /** How many are waiting. */
  get size(): number {
    return this.#pending.size;
  }

  /**
   * Calls `fire` at `at` (at once when it is past), unless cancelled first.
   *
   * @throws {RangeError} When the id is scheduled already, or {@link MAX_FUTURE_EVENTS} wait.
   */
  schedule(id: string, to: string, at: Date, fire: () => void): void {
    if (this.#pending.has(id)) throw new RangeError(`Event ${id} is scheduled already`);
    if (this.#pending.size >= MAX_FUTURE_EVENTS) {
      throw new RangeError(`Too many events scheduled for later (${MAX_FUTURE_EVENTS})`);
    }
    const arm = (): ReturnType<typeof setTimeout> => {
      const wait = at.getTime() - Date.now();
      return setTimeout(() => {
        const p = this.#pending.get(id);
        if (p === undefined) return;
        if (at.getTime() - Date.now() > 0) {
          p.timer = arm(); // a step of a long wait
          return;
        }
        this.#pending.delete(id);
        fire();
      }, Math.max(0, Math.min(wait, MAX_TIMER_MS)));
    };
    this.#pending.set(id, { id, to, at, timer: arm() });
  }

  /** Cancels an event; false when no such event waits (sent already, or unknown). */
  cancel(id: string): boolean {
    const p = this.#pending.get(id);
    if (p === undefined) return false;
    clearTimeout(p.timer);
    this.#pending.delete(id);
    return true;
  }

  /** The waiting events (of route `to` only, when given), soonest first. */
  list(to?: string): FutureEvent[] {
    return [...this.#pending.values()]
      .filter((p) => to === undefined || p.to === to)
      .map(({ id, to, at }) => ({ id, to, at }))
      .sort((a, b) => a.at.getTime() - b.at.getTime());
  }

  /** Cancels everything; returns how many were waiting. */
  clear(): number {
    const n = this.#pending.size;
    for (const p of this.#pending.values()) clearTimeout(p.timer);
    this.#pending.clear();
    return n;
  }
}
