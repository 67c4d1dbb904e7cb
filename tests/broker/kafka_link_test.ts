// The Kafka link against the real broker: the guarded kafkajs patch keeps idle connections
// from waking every millisecond (tulios/kafkajs#1751), counted, with and without it.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { KafkaLink, ORIGINAL } from "../../internal.ts";
import { PlatformaticLink } from "../../kafka/platformatic/link.ts";
import type { KafkaClient } from "../../kafka/mod.ts";
import { BROKERS, eventually } from "../_presence.ts";
import { sleep } from "../_helpers.ts";
import { Kafka, logLevel } from "kafkajs";

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

  // As the broker answers, and with every join held 600 ms (a busy group coordinator), so that
  // many stops meet a join in progress: kafkajs then drops its runner, which joins anyway and
  // stays a member, fetching (7 of 40 in one unslowed run here, 0 in most).
  for (const slowJoin of [0, 600]) {
    it(`a consumer stopped while it starts never reads: no member left in its group (joins +${slowJoin} ms)`, async () => {
      const group = (await import("kafkajs/src/consumer/consumerGroup.js")).default
        .prototype as unknown as { joinAndSync: (...a: unknown[]) => Promise<void> };
      const join = group.joinAndSync;
      if (slowJoin > 0) {
        group.joinAndSync = async function (...a: unknown[]) {
          await sleep(slowJoin);
          return join.apply(this, a);
        };
      }
      const clientId = `stop-test-${crypto.randomUUID().slice(0, 8)}`;
      const link = new KafkaLink({ brokers: BROKERS.split(","), clientId });
      const topic = `minimesh.stop.${crypto.randomUUID()}`;
      // Stopped at every stage of starting: connecting, subscribing, joining its group, ready.
      const delays = Array.from({ length: 32 }, (_, i) => Math.round((i * 1500) / 32));
      try {
        await link.ensureTopic(topic, delays.length);
        await Promise.all(delays.map(async (ms, partition) => {
          const c = link.consumePartition(topic, partition, () => {});
          await sleep(ms);
          await c.stop();
        }));
        const members = () => membersOfGroups(clientId);
        // A consumer that went on starting after its stop (or was restarted by kafkajs) joins its
        // group again and stays a member; one whose join the stop interrupted stays a member until
        // its session times out (6 s, see GroupReader), counted from when the
        // broker completed the join, which a loaded machine (CI) can delay by seconds.
        await sleep(12_000);
        let left = await members();
        for (let i = 0; i < 30 && left > 0; i++) {
          await sleep(1000);
          left = await members();
        }
        assert.equal(left, 0, "members of the stopped consumers' groups, 42 s after the stops");
        await sleep(3000);
        assert.equal(await members(), 0, "a stopped consumer joined again");
        // The count sees a running consumer.
        await link.consumePartition(topic, 0, () => {}).ready;
        await eventually(async () => (await members()) === 1, 10_000, "the running consumer");
      } finally {
        group.joinAndSync = join;
        await link.close();
      }
    });
  }
});

describe("reading from a time (consumePartition's since), both clients (real broker)", () => {
  const clients: [string, (id: string) => KafkaClient][] = [
    ["kafkajs", (clientId) => new KafkaLink({ brokers: BROKERS.split(","), clientId })],
    ["platformatic", (clientId) => new PlatformaticLink({ brokers: BROKERS.split(","), clientId })],
  ];
  for (const [name, make] of clients) {
    it(`starts at the first record of that time, at the end without one (${name})`, async () => {
      const link = make(`since-${name}`);
      const topic = `minimesh.since.${crypto.randomUUID()}`;
      const text = (v: Uint8Array) => new TextDecoder().decode(v);
      try {
        await link.ensureTopic(topic, 1);
        const t0 = Date.now();
        await link.send([{ topic, partition: 0, value: "a" }]);
        await sleep(1500);
        const t1 = Date.now();
        await link.send([{ topic, partition: 0, value: "b" }]);
        const read = async (since: number) => {
          const got: string[] = [];
          const c = link.consumePartition(topic, 0, (r) => void got.push(text(r.value)), { since });
          await c.ready;
          await link.send([{ topic, partition: 0, value: `after ${since}` }]);
          await eventually(() => got.includes(`after ${since}`), 15_000, "the record after");
          await c.stop();
          return got.filter((v) => !v.startsWith("after ")); // earlier readers' markers too
        };
        assert.deepEqual(await read(t0 - 1000), ["a", "b"]);
        assert.deepEqual(await read(t1 - 100), ["b"]);
        assert.deepEqual(await read(Date.now() + 60_000), [], "none that recent: the end");
      } finally {
        await link.close();
      }
    });

    // As a monitor starts on a new broker: the topic created a moment ago may have no leader yet
    // when the reader joins, and kafkajs restarts a consumer that crashed on that (CI, 4ab7795).
    it(`starts on a topic created a moment ago (${name})`, async () => {
      const link = make(`since-fresh-${name}`);
      const text = (v: Uint8Array) => new TextDecoder().decode(v);
      try {
        for (let i = 0; i < 4; i++) {
          const topic = `minimesh.since.fresh.${crypto.randomUUID()}`;
          await link.ensureTopic(topic, 11);
          const got: string[] = [];
          const c = link.consumePartition(topic, 0, (r) => void got.push(text(r.value)), {
            since: Date.now() - 65_000,
          });
          await c.ready;
          await link.send([{ topic, partition: 0, value: "after" }]);
          await eventually(() => got.includes("after"), 15_000, "the record after");
          await c.stop();
        }
      } finally {
        await link.close();
      }
    });
  }
});

// Members of the consumer groups a link with `clientId` created (its group ids start with it).
async function membersOfGroups(clientId: string): Promise<number> {
  const admin = new Kafka({ brokers: BROKERS.split(","), logLevel: logLevel.NOTHING }).admin();
  await admin.connect();
  try {
    const ids = (await admin.listGroups()).groups.map((g) => g.groupId)
      .filter((id) => id.startsWith(`${clientId}.`));
    const groups = (await admin.describeGroups(ids)).groups;
    return groups.reduce((n, g) => n + g.members.length, 0);
  } finally {
    await admin.disconnect();
  }
}
