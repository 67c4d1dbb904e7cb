// The Kafka link against the real broker: the guarded kafkajs patch keeps idle connections
// from waking every millisecond (tulios/kafkajs#1751), counted, with and without it.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { KafkaLink, ORIGINAL } from "../../internal.ts";
import { BROKERS } from "../_presence.ts";
import { sleep } from "../_helpers.ts";

interface Queue {
  prototype: {
    checkPendingRequests: (...a: unknown[]) => unknown;
    scheduleCheckPendingRequests: (...a: unknown[]) => unknown;
    [ORIGINAL]?: (...a: unknown[]) => unknown;
  };
}

// Wake-ups of every request queue (kafkajs's timer callback calls checkPendingRequests) per
// second, over `ms`.
async function wakeupsPerSecond(queue: Queue, ms: number): Promise<number> {
  const check = queue.prototype.checkPendingRequests;
  let n = 0;
  queue.prototype.checkPendingRequests = function (...a: unknown[]) {
    n++;
    return check.apply(this, a);
  };
  try {
    await sleep(ms);
  } finally {
    queue.prototype.checkPendingRequests = check;
  }
  return n / (ms / 1000);
}

describe("the Kafka link (real broker)", () => {
  it("lets idle connections sleep: the kafkajs timer patch, applied and guarded", async () => {
    const link = new KafkaLink({ brokers: BROKERS.split(","), clientId: "idle-test" });
    const topic = `minimesh.idle.${crypto.randomUUID()}`;
    try {
      await link.ensureTopic(topic, 1);
      await link.consumePartition(topic, 0, () => {}).ready;
      await link.send([{ topic, partition: 0, value: "warm" }]);
      const queue = (await import("kafkajs/src/network/requestQueue/index.js"))
        .default as unknown as Queue;
      const patched = queue.prototype.scheduleCheckPendingRequests;
      const original = queue.prototype[ORIGINAL];
      assert.ok(original, "the link applied the patch");
      await sleep(500); // settle after the warm-up
      const withPatch = await wakeupsPerSecond(queue, 2000);
      queue.prototype.scheduleCheckPendingRequests = original;
      let without: number;
      try {
        // Re-arm: any check now schedules the next one, as kafkajs 2.2.4 does.
        await link.send([{ topic, partition: 0, value: "re-arm" }]);
        without = await wakeupsPerSecond(queue, 1000);
      } finally {
        queue.prototype.scheduleCheckPendingRequests = patched;
      }
      console.log(`idle wake-ups per second: ${withPatch} patched, ${without} unpatched`);
      assert.ok(withPatch < 100, `${withPatch} wake-ups per second with the patch`);
      assert.ok(without > 300, `${without} per second without it: the count measures the bug`);
    } finally {
      await link.close();
    }
  });
});
