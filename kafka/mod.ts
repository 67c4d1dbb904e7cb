/**
 * The Kafka types of the mesh: the `KafkaClient` interface that the connector and the presence
 * monitor take (`{ kafka }` in their options), its records, the Java client's properties
 * (`kafka.properties`) as the mesh reads them, and `MemoryKafka`: Kafka in memory, to test an
 * application's mesh without a broker (monitors and applications in one process, or several
 * processes' worth of them). Only kafka/ loads a Kafka client library; which one is
 * `kafka.client` (docs/kafka.md).
 *
 * @example
 * ```ts
 * import { AppConfig } from "@minimesh/core";
 * import { kafkaClientConfig } from "@minimesh/core/kafka";
 * const config = kafkaClientConfig(new AppConfig({ args: ["-Dbootstrap.servers=k1:9092"], env: {} }));
 * console.log(config.brokers); // ["k1:9092"]
 * ```
 *
 * @example A mesh in one process, without a broker
 * ```ts
 * import assert from "node:assert";
 * import { Platform, PostOffice } from "@minimesh/core";
 * import { connectToCloud } from "@minimesh/core/connector";
 * import { MemoryKafka } from "@minimesh/core/kafka";
 * import { PresenceMonitor } from "@minimesh/core/presence";
 * const kafka = new MemoryKafka();
 * const settings = ["-Dcloud.connector=kafka", "-Dserver.port=0", "-Dpresence.handover.grace=0"];
 * const platform = (name: string, more: string[] = []) =>
 *   new Platform({ dir: "/nonexistent", env: {}, args: [...settings, `-Dapplication.name=${name}`, ...more] });
 * await using monitor = new PresenceMonitor(platform("monitor"), { kafka: kafka.client() });
 * await monitor.start();
 * const url = `-Dpresence.url=ws://127.0.0.1:${monitor.port}/ws/presence`;
 * const a = platform("a", [url]), b = platform("b", [url]);
 * a.register("hello.world", (_headers, body) => `hello ${body}`);
 * await using ca = connectToCloud(a, { kafka: kafka.client() })!;
 * await using cb = connectToCloud(b, { kafka: kafka.client() })!;
 * await ca.joined;
 * await cb.joined;
 * const reply = await new PostOffice({}, b).request({ to: "hello.world", body: "mesh" }, 5000);
 * assert.equal(reply.body, "hello mesh");
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
  ConsumeOptions,
  InRecord,
  KafkaClient,
  OutRecord,
  PartitionConsumer,
  TrafficCounters,
} from "./client.ts";
export { MemoryKafka, MemoryKafkaClient } from "./memory.ts";
