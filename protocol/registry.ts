/**
 * The registry messages of the mesh's distributed routing table (the Java original's
 * `system.service.registry`): every instance writes them to its closed user group's partition
 * of `service.monitor`, and every instance reads them to learn who joined, which public routes
 * each peer serves, who is alive, draining or gone. A monitor writes the `leave` of an
 * application whose connection ended.
 *
 * @module
 */
import { EventEnvelope } from "../bus/envelope.ts";

/** The registry's route; its messages go to `system.service.registry@monitor-<group>`. */
export const REGISTRY = "system.service.registry";

/** The registry message types (the `type` header). */
export const REGISTRY_TYPES = [
  /** An instance joined: peers answer with their routes. */
  "join",
  /** Public routes of an instance (one in `route`, or a map in the body; `exchange` asks back). */
  "add",
  /** A public route released. */
  "unregister",
  /** An instance is alive. */
  "keep-alive",
  /** An instance left (written by its monitor, or by itself on a graceful stop). */
  "leave",
  /** An instance stops taking new requests (minimesh only; Java peers ignore it). */
  "drain",
  /** An instance drained by its monitor (it could not reach Kafka) takes requests again. */
  "undrain",
] as const;
/** A registry message type. */
export type RegistryType = typeof REGISTRY_TYPES[number];

/** A registry message of `type` to closed user group `group`. */
export function registryMessage(
  group: number,
  type: RegistryType,
  headers: Record<string, string>,
  body?: unknown,
): EventEnvelope {
  return new EventEnvelope({
    to: `${REGISTRY}@monitor-${group}`,
    headers: { type, ...headers },
    body,
  });
}

/** The `leave` of `origin`, for its closed user group. */
export function leaveMessage(group: number, origin: string): EventEnvelope {
  return registryMessage(group, "leave", { origin });
}

/** Whether `e` is a registry message (any group). */
export function isRegistry(e: EventEnvelope): boolean {
  return e.to !== undefined && (e.to === REGISTRY || e.to.startsWith(`${REGISTRY}@`));
}
