/**
 * The presence monitor: the mesh's control plane. Run it with `deno run -A presence/main.ts`
 * (or `npx minimesh-presence`), or embed it.
 *
 * @example
 * ```ts
 * import { Platform } from "@minimesh/core";
 * import { PresenceMonitor } from "@minimesh/core/presence";
 * // Needs a broker: the doc test type-checks this function without calling it.
 * export async function runMonitor(): Promise<PresenceMonitor> {
 *   const monitor = new PresenceMonitor(new Platform({ args: ["-Dserver.port=8080"] }));
 *   await monitor.start();
 *   return monitor; // `await monitor.stop()`, or `await using`, ends it
 * }
 * ```
 *
 * @module
 */
export type {
  AppGroup,
  AppRow,
  DashboardState,
  DashboardView,
  DepartedRow,
  KafkaState,
  MeshEvent,
  MeshHealth,
  MonitorRow,
  RouteRow,
} from "./dashboard_state.ts";
export { MONITOR_HEALTH_ROUTE, monitorHandler } from "./http.ts";
export type { MonitorEndpoints } from "./http.ts";
export type {
  ConnectionInfo,
  ControlMessage,
  Departed,
  Effect,
  LeaseTable,
  TableSnapshot,
} from "./lease_table.ts";
export { PresenceMonitor } from "./monitor.ts";
export type { PresenceMonitorOptions } from "./monitor.ts";
export { PRESENCE_PATH } from "./sessions.ts";
export { monitorSettings } from "./settings.ts";
export type { MonitorSettings } from "./settings.ts";
export type {
  ServeFunction,
  ServeOptions,
  ServerSocket,
  SocketHandlers,
  TlsFiles,
  WebSocketRefusal,
} from "../runtime/server.ts";
