/**
 * The monitor's HTTP endpoints: the standard actuator endpoints, with the monitor's tables as
 * `/info`'s `more` section (as in the guide) and a Kafka loopback as its health check.
 *
 * @module
 */
import { AppError } from "../bus/errors.ts";
import { actuatorHandler } from "../actuator/handler.ts";
import { jsonError } from "../actuator/responses.ts";
import type { PresenceMonitor } from "./monitor.ts";

/** The health route of the monitor (its `mandatory.health.dependencies`). */
export const MONITOR_HEALTH_ROUTE = "cloud.connector.health";

/**
 * The monitor's HTTP handler. Registers the private `cloud.connector.health` route on the
 * monitor's platform: `type=info` describes Kafka, `type=health` runs a loopback through
 * `service.monitor` partition 0 (`Loopback test took N ms; System contains K topics`).
 */
export function monitorHandler(monitor: PresenceMonitor): (req: Request) => Promise<Response> {
  const p = monitor.platform;
  if (!p.hasRoute(MONITOR_HEALTH_ROUTE)) {
    p.registerPrivate(MONITOR_HEALTH_ROUTE, (headers) => {
      if (headers.type === "info") {
        return {
          service: "kafka",
          href: monitor.brokers[0],
          topics: monitor.settings.kafka.topics,
        };
      }
      if (headers.type !== "health") throw new AppError(400, "Usage: type=info or type=health");
      if (!monitor.ready) throw new AppError(503, "Presence monitor is not ready");
      return monitor.loopback().catch((e) => {
        throw new AppError(503, (e as Error).message);
      });
    }, 2);
  }
  const actuator = actuatorHandler(p, { personality: "RESOURCES", more: () => monitor.info() });
  return async (req) =>
    (await actuator(req)) ?? jsonError(404, `Resource not found: ${new URL(req.url).pathname}`);
}
