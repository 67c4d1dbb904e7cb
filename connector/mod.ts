/**
 * The Kafka side of the mesh. With `cloud.connector=kafka`, {@link connectToCloud} joins a
 * platform to the mesh: requests to routes served by other instances then cross Kafka with the
 * same PostOffice API.
 *
 * @example
 * ```ts
 * import { Platform, PostOffice } from "@minimesh/core";
 * import { connectToCloud } from "@minimesh/core/connector";
 * const platform = new Platform(); // -Dcloud.connector=kafka joins the mesh
 * platform.register("hello.world", (_headers, body) => body);
 * await using connector = connectToCloud(platform); // undefined with cloud.connector=none
 * await connector?.joined;
 * // The same call with or without a mesh; with one, other instances' routes are reachable.
 * const reply = await new PostOffice({}, platform).request({ to: "hello.world", body: "hi" }, {
 *   timeout: 5000,
 * });
 * console.log(reply.body, connector?.topic);
 * ```
 *
 * @module
 */
export { connectToCloud, KafkaConnector } from "./connector.ts";
export type { KafkaConnectorOptions } from "./connector.ts";
export type { ConnectorStats } from "./delivery.ts";
export { HEALTH_ROUTE } from "./health.ts";
export type { LifeCycleEvent, LifeCycleEventsOptions } from "./life_cycle.ts";
export type { WebSocketFactory } from "./presence_client.ts";
export type { DrainReason, Peer, RoutingTable } from "./routing_table.ts";
export { connectorSettings } from "./settings.ts";
export type { ConnectorSettings, Personality } from "./settings.ts";
