import { describe, it } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import { TopicCreations } from "./_topics.ts";
import type { TopicAdmin } from "./_topics.ts";
import type { TopicMode } from "./properties.ts";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

// A cluster whose creations take `createMs` and show in the metadata `showMs` after.
function cluster(
  o: { mode?: TopicMode; createMs?: number; showMs?: number; fail?: string; lookMs?: number } = {},
) {
  const have = new Map<string, number>();
  const requests: string[][] = [];
  const admin: TopicAdmin = {
    mode: o.mode ?? "on-demand",
    replicationFactor: 3,
    partitions: async () => {
      if (o.lookMs) await sleep(o.lookMs);
      return new Map(have);
    },
    brokers: () => 1,
    create: async (topics, partitions) => {
      requests.push([...topics]);
      await sleep(o.createMs ?? 0);
      // As Kafka: per topic, the others of a request made even when one is refused.
      const exists = topics.filter((t) => have.has(t));
      setTimeout(() => {
        for (const t of topics) if (!have.has(t) && t !== o.fail) have.set(t, partitions);
      }, o.showMs ?? 0);
      if (topics.includes(o.fail ?? "")) throw new Error(`cannot create ${o.fail}`);
      if (exists.length) throw new Error(`TOPIC_ALREADY_EXISTS ${exists}`);
    },
    grow: () => Promise.resolve(),
    exists: (e) => /TOPIC_ALREADY_EXISTS/.test((e as Error).message),
    retriable: () => false,
  };
  return { admin, have, requests };
}

describe("TopicCreations", () => {
  it("sends the topics asked for while a creation is on its way in one request", async () => {
    const c = cluster({ createMs: 40 });
    const topics = new TopicCreations(c.admin);
    const first = topics.ensure("t1", 4);
    await sleep(10);
    const rest = ["t2", "t3", "t4", "t2"].map((t) => topics.ensure(t, 4));
    assert.deepEqual(await Promise.all([first, ...rest]), [4, 4, 4, 4, 4]);
    assert.deepEqual(c.requests, [["t1"], ["t2", "t3", "t4"]]);
  });

  it("sends the topics asked for during its look at the metadata with the first", async () => {
    const c = cluster({ lookMs: 40 });
    const topics = new TopicCreations(c.admin);
    const first = topics.ensure("t1", 2);
    await sleep(10);
    assert.deepEqual(await Promise.all([first, topics.ensure("t2", 2)]), [2, 2]);
    assert.deepEqual(c.requests, [["t1", "t2"]]);
  });

  it("waits until the metadata shows a topic just created", async () => {
    const c = cluster({ showMs: 250 });
    const t0 = Date.now();
    assert.equal(await new TopicCreations(c.admin).ensure("slow", 2), 2);
    assert.ok(Date.now() - t0 >= 250, "not before the metadata shows it");
  });

  it("takes a topic that exists as it is, and one created meanwhile by another process", async () => {
    const c = cluster();
    c.have.set("old", 7);
    const topics = new TopicCreations(c.admin);
    assert.equal(await topics.ensure("old", 2), 7, "its own partition count");
    assert.deepEqual(c.requests, [], "nothing created");
    // Another process creates "raced" between the look and the request.
    const partitions = c.admin.partitions;
    c.admin.partitions = () => partitions().finally(() => c.have.set("raced", 3));
    assert.deepEqual(await Promise.all([topics.ensure("raced", 2), topics.ensure("new", 2)]), [
      3,
      2,
    ]);
  });

  it("with kafka.topics=pre-allocated, a missing topic fails and an existing one is taken", async () => {
    const c = cluster({ mode: "pre-allocated" });
    c.have.set("there", 5);
    const topics = new TopicCreations(c.admin);
    const [there, missing] = await Promise.allSettled([
      topics.ensure("there", 5),
      topics.ensure("missing", 5),
    ]);
    assert.deepEqual(there, { status: "fulfilled", value: 5 });
    assert.match(
      String((missing as PromiseRejectedResult).reason),
      /missing does not exist \(kafka.topics=pre-allocated/,
    );
    assert.deepEqual(c.requests, []);
  });

  it("fails the topics of a request the cluster refuses, and goes on with the next ones", async () => {
    const c = cluster({ createMs: 20, fail: "bad" });
    const topics = new TopicCreations(c.admin);
    const first = topics.ensure("bad", 1);
    await sleep(5);
    const next = topics.ensure("good", 1);
    await assert.rejects(first, /cannot create bad/);
    assert.equal(await next, 1);
  });

  it("over generated interleavings: each caller gets its topic's count or the cluster's refusal, and no topic is asked for twice", async () => {
    const name = fc.constantFrom("a", "b", "c", "d", "e", "f");
    const call = fc.record({ topic: name, delayMs: fc.integer({ min: 0, max: 30 }) });
    await fc.assert(
      fc.asyncProperty(
        fc.array(call, { minLength: 1, maxLength: 12 }),
        fc.subarray(["a", "b", "c", "d", "e", "f"]), // there before
        fc.option(name, { nil: undefined }), // refused by the cluster
        fc.integer({ min: 0, max: 20 }), // the controller's time
        fc.integer({ min: 0, max: 20 }), // the look's time
        async (calls, existing, fail, createMs, lookMs) => {
          const c = cluster({ createMs, lookMs, fail });
          for (const t of existing) c.have.set(t, 9);
          const topics = new TopicCreations(c.admin);
          const results = await Promise.all(calls.map(async ({ topic, delayMs }) => {
            await sleep(delayMs);
            return topics.ensure(topic, 2).then((n) => n, (e: Error) => e);
          }));
          calls.forEach(({ topic }, i) => {
            const r = results[i];
            if (existing.includes(topic)) assert.equal(r, 9, topic);
            else if (topic === fail) assert.match(String(r), /cannot create/);
            else assert.equal(r, 2, topic);
          });
          const asked = c.requests.flat().filter((t) => t !== fail);
          assert.equal(new Set(asked).size, asked.length, `asked twice: ${c.requests}`);
          assert.ok(asked.every((t) => !existing.includes(t)), "an existing topic was created");
        },
      ),
      { numRuns: 40 },
    );
  });
});
