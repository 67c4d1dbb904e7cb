// Creating and growing the mesh's topics, as both clients do it: what `kafka.topics` allows, the
// replication factor, a race with another process doing the same, and a cluster just started.
import { logger } from "../bus/_log.ts";
import type { TopicMode } from "./properties.ts";

const log = logger("kafka");

/** What a client does for {@link ensureTopic} and {@link growTopic}. */
export interface TopicAdmin {
  /** `kafka.topics`. */
  readonly mode: TopicMode;
  /** `kafka.replication.factor`. */
  readonly replicationFactor: number;
  /** Topic name → partition count (and, as a side effect, the broker count known). */
  partitions(): Promise<Map<string, number>>;
  /** The number of brokers, known once `partitions` answered. */
  brokers(): number;
  /** Creates the topic. */
  create(topic: string, partitions: number, replicationFactor: number): Promise<void>;
  /** Grows the topic to `count` partitions. */
  grow(topic: string, count: number): Promise<void>;
  /** Whether the error says the topic exists already. */
  exists(e: unknown): boolean;
  /** Whether creating may succeed when tried again (a cluster just started). */
  retriable(e: unknown): boolean;
}

/** See {@link KafkaClient.createPartitions}. */
export async function growTopic(admin: TopicAdmin, topic: string, count: number): Promise<void> {
  if (admin.mode === "pre-allocated") {
    throw new Error(
      `Topic ${topic} needs ${count} partitions (kafka.topics=pre-allocated: the mesh ` +
        `does not change topics; an administrator must add them)`,
    );
  }
  try {
    await admin.grow(topic, count);
    log.warn("Topic {topic} now has {count} partitions", { topic, count });
  } catch (e) {
    // Another process may have grown it at the same moment.
    const now = (await admin.partitions()).get(topic) ?? 0;
    if (now < count) throw e;
  }
}

/**
 * See {@link KafkaClient.ensureTopic}: creates a missing topic with replication factor
 * min(`kafka.replication.factor`, number of brokers); with `kafka.topics=pre-allocated` a missing
 * topic is an error. Returns its partition count.
 */
export async function ensureTopic(
  admin: TopicAdmin,
  topic: string,
  partitions: number,
): Promise<number> {
  const existing = (await admin.partitions()).get(topic);
  if (existing !== undefined) return existing;
  if (admin.mode === "pre-allocated") {
    throw new Error(
      `Topic ${topic} does not exist (kafka.topics=pre-allocated: an administrator creates ` +
        `it with ${partitions} partitions)`,
    );
  }
  const brokers = admin.brokers();
  const wanted = admin.replicationFactor;
  const rf = Math.max(1, Math.min(wanted, brokers));
  for (let attempt = 1;; attempt++) {
    try {
      await admin.create(topic, partitions, rf);
      log.info(
        "Created topic {topic} with {partitions} partitions, replication factor {rf} " +
          "(kafka.replication.factor={wanted}, {brokers} broker(s))",
        { topic, partitions, rf, wanted, brokers },
      );
      break;
    } catch (e) {
      // Another process may have created it at the same moment: that is fine.
      if (admin.exists(e)) break;
      // In a cluster just started, a broker that has not heard of the new topic yet may refuse
      // (retriable): the topic may well exist. CI saw a monitor exit at start on it.
      if (!admin.retriable(e) || attempt >= 10) throw e;
      await new Promise((r) => setTimeout(r, 200 * attempt));
      if ((await admin.partitions()).has(topic)) break;
    }
  }
  for (let i = 0; i < 50; i++) {
    const count = (await admin.partitions()).get(topic);
    if (count !== undefined) return count;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`Topic ${topic} was created but does not show in the metadata`);
}
