/**
 * The Kafka side of the mesh: the only part of the library that loads kafkajs.
 *
 * @example
 * ```ts ignore
 * import { KafkaLink } from "@minimesh/core/connector";
 * const link = new KafkaLink({ brokers: ["127.0.0.1:9092"], clientId: "demo" });
 * ```
 *
 * @module
 */
export { KafkaLink } from "./kafka_link.ts";
export type { InRecord, KafkaLinkOptions, OutRecord, PartitionConsumer } from "./kafka_link.ts";
export { eventOf, eventRecord } from "./records.ts";
