/**
 * The settings every member of one mesh must agree on (applications and monitors alike): where
 * Kafka is, the names of its topics, how many closed user groups `service.monitor` carries, and
 * how long a silent websocket lives. Each bound is written here once.
 *
 * @module
 */
import type { AppConfig } from "../bus/config.ts";
import { kafkaClientConfig } from "./properties.ts";
import type { KafkaClientConfig } from "./properties.ts";

/** Settings shared by the connector and the presence monitor. */
export interface MeshSettings {
  /** `bootstrap.servers` (127.0.0.1:9092). */
  brokers: string[];
  /** The Kafka client's settings (`cloud.client.properties`, see {@link kafkaClientConfig}). */
  kafka: KafkaClientConfig;
  /** `monitor.topic` (service.monitor). */
  monitorTopic: string;
  /** `app.topic.prefix` (multiplex). */
  topicPrefix: string;
  /** `app.partitions.per.topic` (32). */
  partitionsPerTopic: number;
  /** `max.virtual.topics` (288), rounded down to a multiple of the partitions per topic. */
  maxVirtualTopics: number;
  /** `max.closed.user.groups` (10, kept within 3-30). */
  maxGroups: number;
  /**
   * `websocket.idle.timeout` (60, at least 2): seconds without a keep-alive before a monitor
   * closes a session; applications send keep-alives well within it ({@link keepAliveMs}).
   */
  idleTimeout: number;
}

/** Reads the {@link MeshSettings} (and their defaults and bounds) from `config`. */
export function meshSettings(config: AppConfig): MeshSettings {
  const kafka = kafkaClientConfig(config);
  const partitionsPerTopic = Math.max(1, config.getNumber("app.partitions.per.topic", 32));
  const maxVirtual = config.getNumber("max.virtual.topics", 288);
  return {
    brokers: kafka.brokers,
    kafka,
    monitorTopic: config.getString("monitor.topic", "service.monitor"),
    topicPrefix: config.getString("app.topic.prefix", "multiplex"),
    partitionsPerTopic,
    maxVirtualTopics: Math.floor(maxVirtual / partitionsPerTopic) * partitionsPerTopic,
    maxGroups: Math.min(30, Math.max(3, config.getNumber("max.closed.user.groups", 10))),
    idleTimeout: Math.max(2, config.getNumber("websocket.idle.timeout", 60)),
  };
}

/**
 * Milliseconds between an application's keep-alives: half the idle timeout less a margin for a
 * slow network (27 s for the default 60 s), so that one late keep-alive never ends a session.
 */
export function keepAliveMs(idleTimeout: number): number {
  return idleTimeout * 500 - Math.min(3000, idleTimeout * 250);
}
