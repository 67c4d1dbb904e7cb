/**
 * The connector's settings, read once from the platform's configuration: the mesh-wide ones
 * ({@link MeshSettings}) and this instance's own.
 *
 * @module
 */
import { readPemFile } from "../bus/config.ts";
import type { AppConfig } from "../bus/config.ts";
import { ConfigError } from "../bus/errors.ts";
import { keepAliveMs, meshSettings } from "../kafka/settings.ts";
import type { MeshSettings } from "../kafka/settings.ts";
import { logger } from "../bus/_log.ts";
import { MAX_BLOCK } from "./blocks.ts";
import { getHeapStatistics } from "node:v8";

const log = logger("connector");

/** An application's personality, as the monitors and `/info` show it. */
export type Personality = "APP" | "REST" | "RESOURCES";

/** Settings of a {@link KafkaConnector}. */
export interface ConnectorSettings extends MeshSettings {
  /** `closed.user.group` (1): the group this instance joins, 1 to `maxGroups`. */
  group: number;
  /** `application.personality` (APP). */
  personality: Personality;
  /**
   * `presence.url`, or `url` in the file `presence.properties` names (default
   * `presence.properties` beside the configuration): the monitors' websocket URLs, tried in
   * turn.
   */
  presenceUrls: string[];
  /** Milliseconds between keep-alives to the monitor (from `websocket.idle.timeout`). */
  keepAliveMs: number;
  /** `block.max.pending.sets` (100): incomplete large events held at once. */
  blockMaxPendingSets: number;
  /**
   * `block.max.pending.bytes` (128 MiB, at most a sixteenth of the heap limit): bytes of
   * incomplete large events held at once.
   */
  blockMaxPendingBytes: number;
  /**
   * `presence.reconnect.grace` (30): seconds this instance stays in the mesh (keeps its lease,
   * routing table and consumers) after its monitor connection drops, while it reconnects
   * through another monitor; then it leaves.
   */
  reconnectGraceMs: number;
  /**
   * `mesh.clock.skew` (1000): how far apart (ms) the clocks of the mesh's hosts may be. A request
   * read more than its timeout plus this after it was written is dropped, not run.
   */
  clockSkewMs: number;
  /**
   * `presence.tls.ca`: a PEM file of the CA that signed the monitors' certificates, for
   * `wss://` URLs under a private CA (its contents here).
   */
  presenceCa?: string;
}

/**
 * Reads the connector's settings from `config`.
 *
 * @throws {ConfigError} For a `closed.user.group` outside 1 to `max.closed.user.groups`.
 * @example
 * ```ts
 * import assert from "node:assert";
 * import { AppConfig } from "@minimesh/core";
 * import { connectorSettings } from "@minimesh/core/connector";
 * const s = connectorSettings(new AppConfig({ dir: "/nonexistent", args: ["-Dclosed.user.group=2"], env: {} }));
 * assert.equal(s.group, 2);
 * assert.equal(s.monitorTopic, "service.monitor");
 * ```
 */
export function connectorSettings(config: AppConfig): ConnectorSettings {
  const mesh = meshSettings(config);
  const group = config.getNumber("closed.user.group", 1);
  if (!Number.isInteger(group) || group < 1 || group > mesh.maxGroups) {
    throw new ConfigError("closed.user.group", group, `an integer from 1 to ${mesh.maxGroups}`);
  }
  // The Java original's presence.properties (key `url`), between the environment and
  // application.properties.
  const file = config.propertiesFile("presence.properties", "presence.properties");
  for (const key of file.values.keys()) {
    if (key !== "url") {
      log.warn("{file}: unknown key {key}; it is ignored", { file: file.path, key });
    }
  }
  const caFile = config.getString("presence.tls.ca");
  const urls = (config.getFromFile(file, "presence.url", "url") ?? "").split(",")
    .map((s) => s.trim()).filter(Boolean);
  return {
    ...mesh,
    group,
    personality: config.getChoice("application.personality", ["APP", "REST", "RESOURCES"], "APP"),
    presenceUrls: urls.length
      ? urls
      : ["ws://127.0.0.1:8080/ws/presence", "ws://127.0.0.1:8081/ws/presence"],
    keepAliveMs: keepAliveMs(mesh.idleTimeout),
    blockMaxPendingSets: Math.max(1, config.getNumber("block.max.pending.sets", 100)),
    // Never more than a sixteenth of the heap, whatever is configured: a process started
    // with a small --max-old-space-size must still survive its largest pending sets.
    blockMaxPendingBytes: Math.max(
      MAX_BLOCK,
      Math.min(
        config.getNumber("block.max.pending.bytes", 128 * 1024 * 1024),
        getHeapStatistics().heap_size_limit / 16,
      ),
    ),
    reconnectGraceMs: Math.max(0, config.getNumber("presence.reconnect.grace", 30)) * 1000,
    clockSkewMs: Math.max(0, config.getNumber("mesh.clock.skew", 1000)),
    presenceCa: caFile ? readPemFile("presence.tls.ca", caFile) : undefined,
  };
}
