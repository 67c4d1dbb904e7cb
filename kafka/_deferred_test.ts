// The client whose library loads on first use: a failed load fails the call that needed it and
// is tried again; a consumer stopped before the load never starts; the loaded client is used.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { DeferredClient } from "./_deferred.ts";
import { MemoryKafka } from "./memory.ts";
import type { KafkaClient } from "./client.ts";

describe("DeferredClient", () => {
  it("loads on first use, says why a load failed, and tries again on the next call", async () => {
    const kafka = new MemoryKafka();
    let tries = 0;
    const client = new DeferredClient(["memory:9092"], () => {
      tries++;
      if (tries === 1) {
        return Promise.reject(new Error("kafka.client=kafkajs needs the kafkajs package"));
      }
      return Promise.resolve<KafkaClient>(kafka.client());
    });
    assert.equal(tries, 0, "nothing loaded before it is used");
    assert.equal(client.available, true);
    assert.equal(client.counters.recordsSent, 0);
    await assert.rejects(client.ensureTopic("t", 1), /needs the kafkajs package/);
    assert.equal(await client.ensureTopic("t", 2), 2);
    const got: string[] = [];
    await client.consumePartition("t", 1, (r) => void got.push(new TextDecoder().decode(r.value)))
      .ready;
    await client.send([{ topic: "t", partition: 1, value: "hi" }]);
    await kafka.settled();
    assert.deepEqual(got, ["hi"]);
    assert.equal(client.counters.recordsSent, 1);
    assert.equal(tries, 2);
    await client.close();
  });

  it("a consumer stopped before the library loads never starts", async () => {
    const kafka = new MemoryKafka();
    let release!: () => void;
    const loaded = new Promise<void>((r) => release = r);
    const client = new DeferredClient(["memory:9092"], () => loaded.then(() => kafka.client()));
    const c = client.consumePartition("t", 0, () => {});
    await c.stop();
    release();
    await assert.rejects(c.ready, /stopped/);
    assert.equal(kafka.readers("t", 0), 0);
    await client.close();
  });
});
