/**
 * The Kafka types of the mesh: the `KafkaClient` interface that the connector and the presence
 * monitor take (`{ kafka }` in their options: Kafka in memory for tests, or a client of your
 * own), its records, and the Java client's properties (`kafka.properties`) as the mesh reads
 * them. Only kafka/ loads a Kafka client library; which one is `kafka.client` (docs/kafka.md).
 *
 * @example
 * ```ts
 * import { AppConfig } from "@minimesh/core";
 * import { kafkaClientConfig } from "@minimesh/core/kafka";
 * const config = kafkaClientConfig(new AppConfig({ args: ["-Dbootstrap.servers=k1:9092"], env: {} }));
 * console.log(config.brokers); // ["k1:9092"]
 * ```
 *
 * @module
 */
export type { MeshSettings } from "./settings.ts";
export { kafkaClientConfig } from "./properties.ts";
export type {
  ClientLibrary,
  KafkaClientConfig,
  OAuthBearerProvider,
  SaslSettings,
  SecurityProtocol,
  TlsSettings,
  TopicMode,
} from "./properties.ts";
export type {
  InRecord,
  KafkaClient,
  OutRecord,
  PartitionConsumer,
  TrafficCounters,
} from "./client.ts";
