// Produces to and consumes from the real broker with kafkajs under this runtime. The broker is
// the one `deno task test` starts, or the cluster KAFKA_BROKERS names.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import process from "node:process";
import { Kafka, logLevel } from "kafkajs";
import { deferred } from "../_helpers.ts";

const brokers = (process.env.KAFKA_BROKERS ?? "127.0.0.1:9092").split(",");

describe("Kafka smoke test (real broker)", () => {
  it("produces and consumes through the broker", async () => {
    const kafka = new Kafka({ clientId: "minimesh-smoke", brokers, logLevel: logLevel.NOTHING });
    const topic = `minimesh.smoke.${crypto.randomUUID()}`;
    const admin = kafka.admin();
    const producer = kafka.producer();
    const consumer = kafka.consumer({
      groupId: `smoke-${crypto.randomUUID()}`,
      maxWaitTimeInMs: 100,
    });
    const received: string[] = [];
    const all = deferred();
    try {
      await admin.connect();
      assert.equal(await admin.createTopics({ topics: [{ topic, numPartitions: 2 }] }), true);
      await consumer.connect();
      await consumer.subscribe({ topic, fromBeginning: true });
      await consumer.run({
        eachMessage: ({ message, partition }) => {
          received.push(`${partition}:${message.key}:${message.value}:${message.headers?._rx_}`);
          if (received.length === 10) all.resolve();
          return Promise.resolve();
        },
      });
      await producer.connect();
      await producer.send({
        topic,
        messages: Array.from({ length: 10 }, (_, i) => ({
          partition: i % 2,
          key: `k${i}`,
          value: `v${i}`,
          headers: { _rx_: "peer" },
        })),
      });
      const timeout = new Promise((_, reject) =>
        setTimeout(() => reject(new Error(`only ${received.length} of 10 arrived`)), 30_000)
      );
      await Promise.race([all.promise, timeout]);
      assert.deepEqual(
        received.sort(),
        Array.from({ length: 10 }, (_, i) => `${i % 2}:k${i}:v${i}:peer`).sort(),
      );
      await admin.deleteTopics({ topics: [topic] });
    } finally {
      await consumer.disconnect();
      await producer.disconnect();
      await admin.disconnect();
    }
  });
});
