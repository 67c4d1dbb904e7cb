/**
 * The Kafka side of the mesh, and the only part of the library that loads kafkajs. With
 * `cloud.connector=kafka`, {@link connectToCloud} joins a platform to the mesh: requests to
 * routes served by other instances then cross Kafka with the same PostOffice API.
 *
 * @example
 * ```ts ignore
 * import { Platform, PostOffice } from "@minimesh/core";
 * import { connectToCloud } from "@minimesh/core/connector";
 * const platform = new Platform({ args: ["-Dcloud.connector=kafka"] });
 * const connector = connectToCloud(platform);
 * await connector?.joined;
 * const reply = await new PostOffice().request({ to: "hello.world", body: "hi" }, 5000);
 * ```
 *
 * @module
 */
export { BlockAssembler, isBlock, MAX_BLOCK, toBlocks } from "./blocks.ts";
export type { BlockLimits, BlockResult, DroppedSet } from "./blocks.ts";
export { connectToCloud, HEALTH_ROUTE, KafkaConnector } from "./kafka_connector.ts";
export type { ConnectorStats, KafkaConnectorOptions, LifeCycleEvent } from "./kafka_connector.ts";
export { KafkaLink } from "./kafka_link.ts";
export type { InRecord, KafkaLinkOptions, OutRecord, PartitionConsumer } from "./kafka_link.ts";
export { PresenceClient } from "./presence_client.ts";
export type { PresenceClientOptions, WebSocketFactory } from "./presence_client.ts";
export { eventOf, eventRecord, splitVirtualTopic } from "./records.ts";
export { RoutingTable } from "./routing_table.ts";
export type { Peer } from "./routing_table.ts";
