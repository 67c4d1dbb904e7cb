// Delivery across a broker crash: a steady stream of numbered records from one Kafka link to a
// consumer on another; the broker is killed (-9) mid-stream and restarted on its data. Every
// record the broker acknowledged must arrive exactly once. Runs its own broker on a port of its
// own, so the suite's broker is not touched.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { devBroker, killKafka, startKafka, stopKafka } from "../../scripts/kafka_dev.ts";
import { eventually } from "../_presence.ts";
import { testKafka } from "../_kafka.ts";
import { sleep } from "../_helpers.ts";

describe("delivery across a broker kill -9 and restart (real broker)", () => {
  it("delivers every acknowledged record exactly once", async () => {
    const b = devBroker(undefined, 19_195);
    await startKafka(b);
    const producer = testKafka("delivery-producer", [b.brokers]);
    const reader = testKafka("delivery-reader", [b.brokers]);
    const topic = "delivery.test";
    const acked = new Set<number>();
    const received = new Map<number, number>();
    let failed = 0;
    let sending = true;
    try {
      await producer.ensureTopic(topic, 1);
      await reader.consumePartition(topic, 0, (r) => {
        const n = Number(new TextDecoder().decode(r.value));
        received.set(n, (received.get(n) ?? 0) + 1);
      }).ready;
      // One record every 5 ms, each on its own; the loop never waits for the broker.
      let seq = 0;
      const loop = (async () => {
        while (sending) {
          const n = ++seq;
          producer.send([{ topic, partition: 0, value: String(n) }]).then(
            () => acked.add(n),
            () => failed++,
          );
          await sleep(5);
        }
      })();
      await sleep(1500);
      await killKafka(b);
      const killedAt = seq;
      await sleep(2000);
      await startKafka(b, { keepData: true });
      await sleep(6000);
      sending = false;
      await loop;
      await eventually(
        () => [...acked].every((n) => received.has(n)),
        30_000,
        "every acknowledged record to arrive",
      ).catch(() => {});
      const lost = [...acked].filter((n) => !received.has(n));
      const duplicated = [...received].filter(([, count]) => count > 1).map(([n]) => n);
      const summary = `sent ${seq}, acknowledged ${acked.size}, failed ${failed}, ` +
        `received ${received.size}, lost ${lost.length}, duplicated ${duplicated.length} ` +
        `(broker killed after record ${killedAt})`;
      console.log(summary);
      assert.ok(acked.size > killedAt, `records were acknowledged after the restart: ${summary}`);
      assert.deepEqual(lost.slice(0, 10), [], summary);
      assert.deepEqual(duplicated.slice(0, 10), [], summary);
    } finally {
      sending = false;
      await Promise.all([producer.close(), reader.close()]);
      await stopKafka(b);
    }
  });
});
