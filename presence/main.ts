/**
 * `deno run -A presence/main.ts [-Dkey=value ...]`: runs a presence monitor.
 *
 * Settings (config files in the working folder, environment, or `-D` flags): `server.port`
 * (8080), `server.host` (0.0.0.0), `bootstrap.servers` (127.0.0.1:9092) or a `kafka.properties`
 * file (`cloud.client.properties`, see docs/kafka.md), `kafka.topics`, `monitor.topic`,
 * `app.topic.prefix`, `app.partitions.per.topic`, `max.virtual.topics`,
 * `max.closed.user.groups`, `websocket.idle.timeout` (s), `presence.handshake.timeout` (s),
 * `monitor.alive.interval` (s), `presence.max.connections`, `log.level`.
 *
 * @module
 */
import process from "node:process";
import { Platform } from "../bus/platform.ts";
import { logger } from "../bus/_log.ts";
import { setupLogging } from "../bus/log.ts";
import { PresenceMonitor } from "./monitor.ts";

const platform = new Platform({
  defaults: {
    "application.name": "presence-monitor",
    "info.app.description": "Presence Monitor",
    "info.app.version": "0.1.0",
    "mandatory.health.dependencies": "cloud.connector.health",
  },
});
await setupLogging(platform.config.getString("log.level", "info"));
const log = logger("presence");
const monitor = new PresenceMonitor(platform);

let stopping = false;
for (const signal of ["SIGINT", "SIGTERM"] as const) {
  process.on(signal, () => {
    if (stopping) return;
    stopping = true;
    log.info("Stopping on {signal}", { signal });
    monitor.stop().finally(() => process.exit(0));
  });
}

try {
  await monitor.start();
} catch (e) {
  log.fatal("Presence monitor cannot start: {message}", { message: (e as Error).message });
  await monitor.stop().catch(() => {});
  process.exit(1);
}
