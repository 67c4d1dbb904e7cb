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
import { dashboardAsset, isDashboardAsset } from "./dashboard_page.ts";
import type { DashboardState, DashboardView } from "./dashboard_state.ts";
import { viewOf } from "./dashboard.ts";
import { clientAddress } from "../runtime/server.ts";
import type { WebSocketRefusal } from "../runtime/server.ts";
import { UNAUTHORIZED } from "../protocol/credentials.ts";
import { logger } from "../bus/_log.ts";

const log = logger("presence");
import type { Platform } from "../bus/platform.ts";

/** What the endpoints need of the monitor (which builds them, so they do not import it). */
export interface MonitorEndpoints {
  /** The monitor's platform (its routes serve the endpoints). */
  readonly platform: Platform;
  /** Kafka's address, for the health check's `type=info`. */
  readonly brokers: readonly string[];
  /** Its settings: `kafka.topics` for `type=info`. */
  readonly settings: { readonly kafka: { readonly topics: string } };
  /** Whether it accepts applications. */
  readonly ready: boolean;
  /** The health check's loopback through Kafka. */
  loopback(): Promise<string>;
  /** The `more` section of `/info`. */
  info(): Promise<Record<string, unknown>>;
  /** The dashboard's event stream for the client at `client`, with its page's view. */
  dashboardStream(client?: string, view?: DashboardView): Response;
  /** The dashboard's state now, for a view. */
  dashboardState(view?: DashboardView): DashboardState;
}

/** The dashboard's live paths: its event stream and its state as JSON. */
export const DASHBOARD_LIVE: readonly string[] = ["/dashboard/events", "/dashboard/state"];

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
    const live = DASHBOARD_LIVE.includes(path);
    if (!live && !isDashboardAsset(path)) return undefined;
    if (req.method !== "GET" && req.method !== "HEAD") {
      return jsonError(405, `Method ${req.method.slice(0, 20)} not allowed on ${path}`);
    }
    const refused = await access(req, "info");
    if (refused !== undefined) return refused;
    const view = viewOf(req.url);
    if (path === "/dashboard/state") return Response.json(monitor.dashboardState(view));
    if (path === "/dashboard/events") return monitor.dashboardStream(clientAddress(req), view);
    return dashboardAsset(path, path === "/" ? monitor.dashboardState(view) : undefined);
  };
  return async (req) => {
    const path = new URL(req.url).pathname;
    return (await dashboard(req, path)) ?? (await actuator(req)) ??
      jsonError(404, `Resource not found: ${path}`);
  };
}

/**
 * The websocket check of a monitor: with `mesh.tokens` set (`tokenOf` gives the position of
 * the token a client offered, -1 for none), a websocket without one of them is closed before
 * its session exists (refusals logged at most every 5 s, with their count, and counted by
 * `refused`); without, the mesh is open as in the Java original, and the log says so once.
 */
export function tokenAuthorizer(
  tokenOf: ((protocols: readonly string[]) => number) | undefined,
  refused: () => void,
): ((u: { protocols: string[] }) => WebSocketRefusal | undefined) | undefined {
  if (tokenOf === undefined) {
    log.warn(
      "The mesh is open: any client that reaches this monitor can join it. Set mesh.tokens " +
        "(or MESH_TOKENS) on the monitors and the applications to require a token",
    );
    return undefined;
  }
  let count = 0;
  let loggedAt = 0;
  return ({ protocols }) => {
    if (tokenOf(protocols) >= 0) return undefined;
    count++;
    refused();
    const now = Date.now();
    if (now - loggedAt >= 5000) {
      log.warn("Refused {n} websocket(s) without a valid mesh token", { n: count });
      loggedAt = now;
      count = 0;
    }
    return { code: UNAUTHORIZED, reason: "A valid mesh token is required" };
  };
}
