/**
 * A presence monitor's settings, read once from its platform's configuration: the mesh-wide
 * ones ({@link MeshSettings}) and the monitor's own limits.
 *
 * @module
 */
import type { AppConfig } from "../bus/config.ts";
import { meshSettings } from "../kafka/settings.ts";
import type { MeshSettings } from "../kafka/settings.ts";

/** Settings of a monitor. */
export interface MonitorSettings extends MeshSettings {
  /** `server.port` (8080; 0 picks a free port). */
  port: number;
  /** `server.host` (0.0.0.0). */
  host: string;
  /** `presence.handshake.timeout` (5): seconds a session may stay open without sending `info`. */
  handshakeTimeout: number;
  /**
   * `presence.max.pending` (100): sessions that have not sent `info` yet. A new connection over
   * it closes the oldest of them, so that idle connections cannot lock out real applications.
   */
  maxPending: number;
  /**
   * `presence.max.pending.per.address` (a quarter of `presence.max.pending`, more than one host's
   * leases): sessions without `info` from one address; a new one over it closes that address's
   * oldest.
   */
  maxPendingPerAddress: number;
  /** `presence.max.frames.per.second` (20): a session sending more is closed (1008). */
  maxFramesPerSecond: number;
  /**
   * `presence.keepalive.publish.interval` (5): at most one keep-alive per session and interval
   * is written to `service.monitor`; the others only reset the idle timer.
   */
  keepAlivePublishInterval: number;
  /** `monitor.alive.interval` (5): seconds between `alive` messages; 3 missed mean it is gone. */
  aliveInterval: number;
  /** `presence.max.connections` (2000): websocket sessions one monitor accepts. */
  maxConnections: number;
  /**
   * `presence.max.connections.per.address` (a sixteenth of the virtual topics, 18 of 288, at
   * least 4): sessions past their `info` (those that hold or claim a lease) from one remote
   * address, so that one host, or a few, cannot take the partitions. Behind a proxy every client
   * shares its address: raise it there.
   */
  maxPerAddress: number;
  /**
   * `presence.max.connections.per.token` (`presence.max.connections`): sessions past their
   * `info` that present one of the `mesh.tokens`, per token: give each team its own token, and
   * one team cannot take the partitions of the others.
   */
  maxPerToken: number;
  /**
   * `monitor.bootstrap.wait` (2000): ms a starting monitor waits for a running one's snapshot
   * before it takes itself for the first and starts from an empty table.
   */
  bootstrapWaitMs: number;
  /**
   * `presence.handover.grace` (15): seconds the monitors keep the leases of a monitor that
   * stopped gracefully, for its applications to reconnect through another monitor.
   */
  handoverGrace: number;
  /**
   * `presence.hung.timeout` (10): seconds within which an application must answer the
   * monitor's websocket pings; one that does not (frozen, or its host unreachable) is dropped
   * from the mesh. 0 turns the pings off.
   */
  hungTimeout: number;
  /**
   * `presence.topics.ahead` (0): how many of the mesh's topics, in lease order, are made ahead
   * of the leases: at the monitor's start the first ones, and with each topic's first lease the
   * ones after it. A fleet that joins at once then waits for no topic's creation (a fresh
   * cluster's metadata takes seconds to show new topics under load). With 0, the next topic is
   * made once a topic is half leased, so that a small mesh has the one topic it uses.
   */
  topicsAhead: number;
}

/**
 * Reads the monitor's settings (and their defaults) from a configuration (or a platform's).
 *
 * @example
 * ```ts
 * import assert from "node:assert";
 * import { AppConfig } from "@minimesh/core";
 * import { monitorSettings } from "@minimesh/core/presence";
 * const s = monitorSettings(new AppConfig({ dir: "/nonexistent", args: [], env: {} }));
 * assert.equal(s.port, 8080);
 * assert.equal(s.maxVirtualTopics, 288);
 * ```
 */
export function monitorSettings(source: AppConfig | { config: AppConfig }): MonitorSettings {
  // A platform was the argument before issue 11; its configuration is what counts.
  const config = "config" in source ? source.config : source;
  const mesh = meshSettings(config);
  return {
    ...mesh,
    port: config.getNumber("server.port", 8080),
    host: config.getString("server.host", "0.0.0.0"),
    handshakeTimeout: Math.max(1, config.getNumber("presence.handshake.timeout", 5)),
    maxPending: Math.max(1, config.getNumber("presence.max.pending", 100)),
    maxPendingPerAddress: Math.max(
      1,
      config.getNumber(
        "presence.max.pending.per.address",
        Math.ceil(config.getNumber("presence.max.pending", 100) / 4),
      ),
    ),
    maxFramesPerSecond: Math.max(2, config.getNumber("presence.max.frames.per.second", 20)),
    keepAlivePublishInterval: Math.max(
      0,
      config.getNumber("presence.keepalive.publish.interval", 5),
    ),
    aliveInterval: Math.max(1, config.getNumber("monitor.alive.interval", 5)),
    maxConnections: Math.max(1, config.getNumber("presence.max.connections", 2000)),
    maxPerAddress: Math.max(
      1,
      config.getNumber(
        "presence.max.connections.per.address",
        Math.max(4, Math.ceil(mesh.maxVirtualTopics / 16)),
      ),
    ),
    maxPerToken: Math.max(
      1,
      config.getNumber(
        "presence.max.connections.per.token",
        config.getNumber("presence.max.connections", 2000),
      ),
    ),
    bootstrapWaitMs: Math.max(0, config.getNumber("monitor.bootstrap.wait", 2000)),
    handoverGrace: Math.max(0, config.getNumber("presence.handover.grace", 15)),
    hungTimeout: Math.max(0, config.getNumber("presence.hung.timeout", 10)),
    topicsAhead: Math.max(0, Math.floor(config.getNumber("presence.topics.ahead", 0))),
  };
}
