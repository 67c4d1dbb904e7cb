/**
 * The presence monitor: the mesh's control plane. Run it with `deno run -A presence/main.ts`.
 *
 * @example
 * ```ts ignore
 * import { Platform } from "@minimesh/core";
 * import { monitorHandler, PresenceMonitor } from "@minimesh/core/presence";
 * import { serve } from "@minimesh/core/presence/deno";
 * const monitor = new PresenceMonitor(new Platform(), serve);
 * await monitor.start(monitorHandler(monitor));
 * ```
 *
 * @module
 */
export { MONITOR_HEALTH_ROUTE, monitorHandler } from "./http.ts";
export { LeaseTable, virtualTopics } from "./lease_table.ts";
export { splitVirtualTopic } from "../connector/records.ts";
export type { ConnectionInfo, ControlMessage, Effect, TableSnapshot } from "./lease_table.ts";
export { monitorSettings, PRESENCE_PATH, PresenceMonitor } from "./monitor.ts";
export type { MonitorSettings } from "./monitor.ts";
export { CLOSE } from "./protocol.ts";
export { serverLimits } from "./socket.ts";
export type {
  PresenceSocket,
  RunningServer,
  ServeFunction,
  ServeOptions,
  ServerLimits,
  SocketHandlers,
  WebSocketFactory,
} from "./socket.ts";
