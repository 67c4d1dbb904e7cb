/**
 * The monitor's HTTP endpoints: the standard actuator endpoints, with the monitor's tables as
 * `/info`'s `more` section (as in the guide) and a Kafka loopback as its health check.
 *
 * @module
 */
import { AppError } from "../bus/errors.ts";
import { accessRule } from "../actuator/access.ts";
import { actuatorHandler } from "../actuator/handler.ts";
import { jsonError } from "../actuator/responses.ts";
import { dashboardAsset } from "./dashboard_page.ts";
import { clientAddress } from "../runtime/server.ts";
import type { Platform } from "../bus/platform.ts";

/** What the endpoints need of the monitor (which builds them, so they do not import it). */
export interface MonitorEndpoints {
  readonly platform: Platform;
  readonly brokers: readonly string[];
  readonly settings: { readonly kafka: { readonly topics: string } };
  readonly ready: boolean;
  loopback(): Promise<string>;
  info(): Promise<Record<string, unknown>>;
  dashboardStream(client?: string): Response;
}

/** The health route of the monitor (its `mandatory.health.dependencies`). */
export const MONITOR_HEALTH_ROUTE = "cloud.connector.health";

/**
 * The monitor's HTTP handler. Registers the private `cloud.connector.health` route on the
 * monitor's platform: `type=info` describes Kafka, `type=health` runs a loopback through
 * `service.monitor` partition 0 (`Loopback test took N ms; System contains K topics`). The
 * live dashboard is at `/` (its page, `dashboard.css`, `dashboard.js` and the state's event
 * stream `dashboard/events`), protected as the informational endpoints are.
 */
export function monitorHandler(monitor: MonitorEndpoints): (req: Request) => Promise<Response> {
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
  const access = accessRule(p);
  const dashboard = async (req: Request, path: string) => {
    const asset = path === "/dashboard/events" ? undefined : dashboardAsset(path);
    if (asset === undefined && path !== "/dashboard/events") return undefined;
    if (req.method !== "GET" && req.method !== "HEAD") {
      return jsonError(405, `Method ${req.method.slice(0, 20)} not allowed on ${path}`);
    }
    return (await access(req, "info")) ?? asset ?? monitor.dashboardStream(clientAddress(req));
  };
  return async (req) => {
    const path = new URL(req.url).pathname;
    return (await dashboard(req, path)) ?? (await actuator(req)) ??
      jsonError(404, `Resource not found: ${path}`);
  };
}
