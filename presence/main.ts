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
import { VERSION } from "../bus/libraries.ts";
import { within } from "../bus/_within.ts";
import { runtimeProblem } from "../runtime/node_version.ts";
import { PresenceMonitor } from "./monitor.ts";

const USAGE = `minimesh presence monitor ${VERSION}

Usage: minimesh-presence [-Dkey=value ...]     (or: deno run -A presence/main.ts ...)

Leases each application of the mesh a Kafka partition and announces joins and leaves.
Settings come from application.properties / application.yml in the working folder, the
environment (SERVER_PORT for server.port), or -D flags:

  server.port              8080            its HTTP and websocket port
  server.host              0.0.0.0
  bootstrap.servers        127.0.0.1:9092  Kafka (or cloud.client.properties: a kafka.properties)
  kafka.topics             on-demand       or pre-allocated (an administrator creates them)
  max.closed.user.groups   10
  mesh.tokens                              tokens applications must present (comma-separated)
  log.level                info            log.format=json for JSON lines

  --help       this text
  --version    the version

Docs: docs/presence.md and docs/kafka.md, in the package and the repository.`;

const args = process.argv.slice(2);
if (args.includes("--help") || args.includes("-h")) {
  console.log(USAGE);
  process.exit(0);
}
if (args.includes("--version")) {
  console.log(VERSION);
  process.exit(0);
}
const stray = args.find((a) => !a.startsWith("-D"));
if (stray !== undefined) {
  console.error(`Unknown argument ${stray}: settings are -Dkey=value (see --help)`);
  process.exit(2);
}
const problem = runtimeProblem();
if (problem !== undefined) {
  console.error(problem);
  process.exit(1);
}

const platform = new Platform({
  defaults: {
    "application.name": "presence-monitor",
    "info.app.description": "Presence Monitor",
    "info.app.version": "0.1.0",
    "mandatory.health.dependencies": "cloud.connector.health",
  },
});
await setupLogging(platform.config.getString("log.level", "info"), "app", {
  format: platform.config.getChoice("log.format", ["text", "json"] as const, "text"),
});
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
  // Within a second: a monitor that never started has nothing to hand over.
  await within(monitor.stop().catch(() => {}), 1000);
  process.exit(1);
}
