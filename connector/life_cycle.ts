/**
 * Life-cycle events of the mesh as this instance sees them (peers joining and leaving, this
 * instance connecting and disconnecting), told to the connector's own listeners and to async
 * iterators (`KafkaConnector.lifeCycle`).
 *
 * @module
 */
import { logger } from "../bus/_log.ts";
import { AsyncQueue } from "../bus/_async_queue.ts";

const log = logger("connector");

/** A change in the mesh, as told to life-cycle subscribers. */
export interface LifeCycleEvent {
  /** `join`/`leave` of a peer; `connected`/`disconnected` of this instance. */
  type: "join" | "leave" | "connected" | "disconnected";
  /** The peer's origin (join, leave) or this instance's (connected, disconnected). */
  origin: string;
  /** The peer's application name, when known. */
  name?: string;
}

/** Options of {@link LifeCycle.events}. */
export interface LifeCycleEventsOptions {
  /** Ends the iteration when aborted. */
  signal?: AbortSignal;
  /** Unread events kept (1000); beyond that the oldest are dropped, with a warning. */
  maxBuffered?: number;
}

/** Who hears of life-cycle events. */
export class LifeCycle {
  readonly #listeners = new Set<(e: LifeCycleEvent) => void>();
  readonly #readers = new Set<AsyncQueue<LifeCycleEvent>>();

  /** Calls `listener` on every event; returns an unsubscribe. */
  on(listener: (e: LifeCycleEvent) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /** Every event from now on, until `signal` aborts, the loop breaks or the connector stops. */
  events(options: LifeCycleEventsOptions = {}): AsyncIterableIterator<LifeCycleEvent> {
    const { signal, maxBuffered = 1000 } = options;
    const onAbort = () => queue.end();
    const queue = new AsyncQueue<LifeCycleEvent>(maxBuffered, () => {
      off();
      signal?.removeEventListener("abort", onAbort);
      this.#readers.delete(queue);
    });
    this.#readers.add(queue);
    let warned = false;
    const off = this.on((e) => {
      queue.push(e);
      if (queue.dropped > 0 && !warned) {
        warned = true;
        log.warn("A life-cycle reader is {n} events behind: dropping the oldest", {
          n: maxBuffered,
        });
      }
    });
    if (signal?.aborted) queue.end();
    else signal?.addEventListener("abort", onAbort, { once: true });
    return queue;
  }

  /** Ends every `events()` iteration (the connector stopped). */
  close(): void {
    for (const queue of [...this.#readers]) queue.end();
  }

  /** Tells everyone; a listener that fails is logged, never thrown. */
  notify(e: LifeCycleEvent): void {
    for (const l of this.#listeners) {
      try {
        l(e);
      } catch (err) {
        log.warn("Life-cycle listener failed: {message}", { message: (err as Error).message });
      }
    }
  }
}
