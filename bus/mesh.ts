/**
 * The boundary between the event bus and a service mesh. The bus knows only this interface;
 * the Kafka connector (in `connector/`) implements it, so `mod.ts` never loads a Kafka client.
 *
 * @module
 */
import type { EventEnvelope } from "./envelope.ts";

/** A mesh of application instances that a {@link Platform} can send through. */
export interface MeshTransport {
  /**
   * Whether the mesh can deliver to `to`: a route that another instance serves, or
   * `route@origin` with a known peer origin.
   */
  reaches(to: string): boolean;
  /** Whether `origin` is a known peer instance. */
  knows(origin: string): boolean;
  /** The peer instances that serve `route` (this one not included). */
  origins(route: string): string[];
  /**
   * Sends an event to one instance that serves its route (shared evenly), or to the one
   * instance named by `route@origin`. Resolves once the event has left; rejects when it
   * cannot be sent.
   */
  send(event: EventEnvelope): Promise<void>;
  /** Sends an event to every instance that serves its route, this one included. */
  broadcast(event: EventEnvelope): Promise<void>;
  /** A public route was registered (`added`) or released here; peers must learn of it. */
  routeChanged(route: string, added: boolean): void;
  /** The routing table for `/info/routes` (the Java original's `network` section). */
  describe(): Record<string, unknown>;
}
