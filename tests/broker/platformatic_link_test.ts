// The @platformatic/kafka link against the real broker: what it does by itself, without consumer
// groups (kafka/platformatic/): a record written twice with one key is handled once, a topic
// deleted and created again is read from its start, records written with acks=0 (the library's
// encoder, not ours) arrive whole, produce requests queued on a connection are counted, the
// library's own requests (libraryWire) carry what the wire
// fast paths carry, a reader stopped while it starts never reads, a reader that lingers after
// records (a group's registry, read by every member) fetches less often while they come, a
// reader told to wait longer at the broker (maxWaitMs) fetches an idle partition less often, takes
// a record as soon, and fetches a busy one as usual.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { Admin, Consumer, Producer } from "@platformatic/kafka";
import { PlatformaticLink } from "../../kafka/platformatic/link.ts";
import { PartitionReader } from "../../kafka/platformatic/reader.ts";
import type { ReaderLink } from "../../kafka/platformatic/reader.ts";
import type { OutRecord } from "../../kafka/mod.ts";
import { produceDirect } from "../../kafka/wire/mod.ts";
import type { ConnectionProgress } from "../../kafka/wire/mod.ts";
import { BROKERS, eventually } from "../_presence.ts";
import { freePort, sleep } from "../_helpers.ts";
import { netFaultsUnavailable, silence } from "../_netfault.ts";

const brokers = BROKERS.split(",");
const text = (v: Uint8Array) => new TextDecoder().decode(v);

describe("the @platformatic/kafka link (real broker)", () => {
  it("handles a record written again with its key once (a produce tried again)", async () => {
    const link = new PlatformaticLink({ brokers, clientId: "dedup-test" });
    const topic = `minimesh.dedup.${crypto.randomUUID()}`;
    const got: string[] = [];
    try {
      await link.ensureTopic(topic, 1);
      await link.consumePartition(topic, 0, (r) => void got.push(text(r.value))).ready;
      const key = crypto.randomUUID().replaceAll("-", "");
      await link.send([{ topic, partition: 0, key, value: "first" }]);
      await link.send([{ topic, partition: 0, key, value: "again" }]);
      await link.send([{ topic, partition: 0, value: "other" }]);
      await eventually(() => got.length >= 2, 10_000, "the records");
      await sleep(300);
      assert.deepEqual(got, ["first", "other"]);
      assert.equal(link.counters.recordsRead, 3, "all three were read; one was skipped");
    } finally {
      await link.close();
    }
  });

  it("tells each produce request's connection, and when that connection last answered (produceDirect)", async () => {
    const link = new PlatformaticLink({ brokers, clientId: "queued-test" });
    const producer = new Producer({ clientId: "queued-test", bootstrapBrokers: brokers });
    const topic = `minimesh.queued.${crypto.randomUUID()}`;
    const record = (v: string) => ({
      topic,
      partition: 0,
      key: new TextEncoder().encode(crypto.randomUUID()),
      value: new TextEncoder().encode(v),
      headers: [],
    });
    try {
      await link.ensureTopic(topic, 1);
      assert.equal(await produceDirect(producer, [record("warm")], 1), true);
      // Sent in one turn, so none is answered before the last leaves: they wait on one
      // connection, whose progress counts from the first (it had nothing to answer before).
      const seen: { on: ConnectionProgress; progressAt: number }[] = [];
      const sentOn = (on: ConnectionProgress) => void seen.push({ on, progressAt: on.progressAt });
      const before = Date.now();
      const sent = ["a", "b", "c"].map((v) => produceDirect(producer, [record(v)], 1, sentOn));
      assert.deepEqual(await Promise.all(sent), [true, true, true]);
      const answeredAt = Date.now();
      assert.equal(new Set(seen.map((s) => s.on)).size, 1, "one connection");
      const [{ on, progressAt }] = seen;
      assert.ok(seen.every((s) => s.progressAt === progressAt) && progressAt >= before);
      assert.match(on.broker, /^.+:\d+$/);
      assert.ok(on.progressAt >= progressAt && on.progressAt <= answeredAt, "moved by answers");
      // Idle again, its progress counts from the next request.
      await sleep(20);
      await produceDirect(producer, [record("d")], 1, sentOn);
      assert.equal(seen.at(-1)!.on, on);
      assert.ok(seen.at(-1)!.progressAt >= answeredAt + 20);
    } finally {
      await producer.close();
      await link.close();
    }
  });

  it("lingers after a fetch that brought records (lingerMs), and only then", async () => {
    const link = new PlatformaticLink({ brokers, clientId: "linger-test" });
    const topic = `minimesh.linger.${crypto.randomUUID()}`;
    const at = new Map<string, number>();
    try {
      await link.ensureTopic(topic, 1);
      await link.consumePartition(topic, 0, (r) => void at.set(text(r.value), Date.now()), {
        lingerMs: () => 400,
      }).ready;
      // An idle reader takes the first record at once (its fetch waits at the broker).
      const t0 = Date.now();
      await link.send([{ topic, partition: 0, value: "first" }]);
      await eventually(() => at.has("first"), 10_000, "the first record");
      assert.ok(at.get("first")! - t0 < 300, `first after ${at.get("first")! - t0} ms`);
      // The next fetch leaves 400 ms after it: a record written meanwhile waits for it.
      await link.send([{ topic, partition: 0, value: "second" }]);
      await eventually(() => at.has("second"), 10_000, "the second record");
      const gap = at.get("second")! - at.get("first")!;
      assert.ok(gap >= 380, `second ${gap} ms after the first`);
    } finally {
      await link.close();
    }
  });

  it("fetches an idle partition once per maxWaitMs, takes a record at once, then fetches as usual", async () => {
    const link = new PlatformaticLink({ brokers, clientId: "wait-test" });
    const topic = `minimesh.wait.${crypto.randomUUID()}`;
    const stop = new AbortController();
    const consumers: Consumer[] = [];
    // Three readers of one idle partition, counting their fetches' answers: one at the usual wait
    // (500 ms), one told 2 s, one told 6 s (a quiet member's wait: 5 s or more).
    const reader = (maxWaitMs: number | undefined, got: Map<string, number>) => {
      const counted = { answers: 0 };
      const readerLink: ReaderLink = {
        counters: { produceRequests: 0, recordsSent: 0, batchesRead: 0, recordsRead: 0 },
        libraryWire: false,
        answered: () => void counted.answers++,
        waiting: () => () => {},
        loopedBack: () => {},
        backoff: () => 100,
        leaderAnswers: () => Promise.resolve(true),
      };
      const consumer = new Consumer({
        clientId: "wait-test-reader",
        bootstrapBrokers: brokers,
        groupId: `wait-test.${crypto.randomUUID()}`,
      });
      consumers.push(consumer);
      const r = new PartitionReader(
        readerLink,
        consumer,
        topic,
        0,
        (rec) => void got.set(text(rec.value), Date.now()),
        stop.signal,
        { maxWaitMs },
      );
      const ready = new Promise<void>((resolve, reject) => r.run(resolve).catch(reject));
      return { counted, ready };
    };
    try {
      await link.ensureTopic(topic, 1);
      const gotUsual = new Map<string, number>(), gotLong = new Map<string, number>();
      const gotQuiet = new Map<string, number>();
      const usual = reader(undefined, gotUsual), long = reader(2000, gotLong);
      const quiet = reader(6000, gotQuiet);
      await Promise.all([usual.ready, long.ready, quiet.ready]);
      const [u0, l0] = [usual.counted.answers, long.counted.answers];
      await sleep(3000);
      const u = usual.counted.answers - u0, l = long.counted.answers - l0;
      assert.ok(u >= 4, `the usual reader's fetches answered in 3 s: ${u}`);
      assert.ok(l <= 2, `the long-waiting reader's fetches answered in 3 s: ${l}`);
      const t0 = Date.now();
      await link.send([{ topic, partition: 0, value: "now" }]);
      const all = () => gotLong.has("now") && gotUsual.has("now") && gotQuiet.has("now");
      await eventually(all, 10_000, "the record");
      assert.ok(gotLong.get("now")! - t0 < 400, `taken after ${gotLong.get("now")! - t0} ms`);
      assert.ok(gotQuiet.get("now")! - t0 < 400, `taken after ${gotQuiet.get("now")! - t0} ms`);
      // After a fetch that brought records, the next waits the usual 500 ms: a busy partition's
      // fetches are as they always were. A reader told to wait 5 s or more keeps its wait.
      const [l1, q1] = [long.counted.answers, quiet.counted.answers];
      await sleep(1200);
      assert.ok(long.counted.answers - l1 >= 1, "the fetch after the record waited 500 ms");
      assert.equal(quiet.counted.answers - q1, 0, "the quiet reader's fetch after it waits on");
      const t1 = Date.now();
      await link.send([{ topic, partition: 0, value: "next" }]);
      await eventually(() => gotQuiet.has("next"), 10_000, "the next record");
      assert.ok(gotQuiet.get("next")! - t1 < 400, "a record still ends its wait at once");
    } finally {
      stop.abort();
      await Promise.all(consumers.map((c) => c.close(true).catch(() => {})));
      await link.close();
    }
  });

  it("connects to a partition's leader ahead of the first send (prepareSend), never failing", async () => {
    const link = new PlatformaticLink({ brokers, clientId: "prepare-test" });
    const topic = `minimesh.prepare.${crypto.randomUUID()}`;
    const got: string[] = [];
    try {
      await link.ensureTopic(topic, 2);
      await link.consumePartition(topic, 1, (r) => void got.push(text(r.value))).ready;
      await link.prepareSend(topic, 1);
      await link.prepareSend(`minimesh.missing.${crypto.randomUUID()}`, 0); // resolves all the same
      await link.send([{ topic, partition: 1, value: "after" }]);
      await eventually(() => got.length === 1, 10_000, "the record");
      assert.deepEqual(got, ["after"]);
    } finally {
      await link.close();
    }
    await link.prepareSend(topic, 1); // closed: resolves, does nothing
  });

  it("reads a topic deleted and created again from its start", async () => {
    const link = new PlatformaticLink({ brokers, clientId: "replaced-test" });
    const admin = new Admin({ clientId: "replaced-test-admin", bootstrapBrokers: brokers });
    const topic = `minimesh.replaced.${crypto.randomUUID()}`;
    const got: string[] = [];
    try {
      await link.ensureTopic(topic, 1);
      await link.consumePartition(topic, 0, (r) => void got.push(text(r.value))).ready;
      for (let i = 0; i < 5; i++) await link.send([{ topic, partition: 0, value: `old ${i}` }]);
      await eventually(() => got.length === 5, 10_000, "the first log's records");
      await admin.deleteTopics({ topics: [topic] });
      await eventually(
        async () => !(await link.topicPartitions()).has(topic),
        20_000,
        "the topic gone",
      );
      await link.ensureTopic(topic, 1);
      // Fewer records than were read from the old log: the offsets alone could not tell.
      for (let i = 0; i < 7; i++) {
        await eventually(
          () =>
            link.send([{ topic, partition: 0, value: `new ${i}` }]).then(() => true, () => false),
          20_000,
          `new ${i} written`,
        );
      }
      await eventually(() => got.length === 12, 30_000, `the new log's records: ${got}`);
      assert.deepEqual(got.slice(5), Array.from({ length: 7 }, (_, i) => `new ${i}`));
    } finally {
      await admin.close();
      await link.close();
    }
  });

  it("writes with acks=0 through the library's encoder: keys, values and headers", async () => {
    const link = new PlatformaticLink({ brokers, clientId: "acks0-test", acks: 0 });
    const topic = `minimesh.acks0.${crypto.randomUUID()}`;
    const got: [string | undefined, string, Record<string, string>][] = [];
    try {
      await link.ensureTopic(topic, 1);
      await link.consumePartition(topic, 0, (r) => {
        got.push([r.key, text(r.value), r.headers]);
      }).ready;
      const value = new TextEncoder().encode("xbytes").subarray(1); // a view inside a buffer
      await link.send([
        { topic, partition: 0, key: "k".repeat(32), value: "text", headers: { _rx_: "é" } },
        { topic, partition: 0, value, headers: { _event_: "1", other: "two" } },
      ]);
      await eventually(() => got.length === 2, 10_000, "the records");
      assert.deepEqual(got[0], ["k".repeat(32), "text", { _rx_: "é" }]);
      assert.equal(got[1][0]?.length, 32, "a key of its own");
      assert.deepEqual(got[1].slice(1), ["bytes", { _event_: "1", other: "two" }]);
    } finally {
      await link.close();
    }
  });

  it("the library's own requests (libraryWire, as on a cluster without produce v11 or fetch v17) carry the same records both ways", async () => {
    const fast = new PlatformaticLink({ brokers, clientId: "wire-fast" });
    const plain = new PlatformaticLink({ brokers, clientId: "wire-plain", libraryWire: true });
    const topic = `minimesh.wire.${crypto.randomUUID()}`;
    type Seen = [string | undefined, string, Record<string, string>];
    const byFast: Seen[] = [], byPlain: Seen[] = [];
    const keep =
      (to: Seen[]) => (r: { key?: string; value: Uint8Array; headers: Record<string, string> }) =>
        void to.push([r.key, text(r.value), r.headers]);
    try {
      await fast.ensureTopic(topic, 1);
      await fast.consumePartition(topic, 0, keep(byFast)).ready;
      await plain.consumePartition(topic, 0, keep(byPlain)).ready;
      const twice = "t".repeat(32);
      const records = (from: string): OutRecord[] => [
        {
          topic,
          partition: 0,
          key: twice.replace("t", from[0]),
          value: `${from} é`,
          headers: { _rx_: "x" },
        },
        {
          topic,
          partition: 0,
          value: new TextEncoder().encode(`${from} bytes`),
          headers: { a: "" },
        },
      ];
      await fast.send(records("fast"));
      await plain.send(records("plain"));
      // Written again with its key, through the library's encoder: read once by either.
      await plain.send([records("plain")[0]]);
      await eventually(() => byFast.length >= 4 && byPlain.length >= 4, 10_000, "the records");
      await sleep(300);
      assert.deepEqual(byPlain, byFast);
      assert.deepEqual(byFast.map(([, v]) => v), [
        "fast é",
        "fast bytes",
        "plain é",
        "plain bytes",
      ]);
      assert.deepEqual(byFast[0][2], { _rx_: "x" });
      assert.deepEqual(byFast[1][2], { a: "" });
      assert.equal(plain.counters.recordsRead, 5, "five read by the library's fetch, one skipped");
    } finally {
      await fast.close();
      await plain.close();
    }
  });

  it("asks a bootstrap broker whose host went silent last, once a connection to it failed", {
    skip: netFaultsUnavailable(),
  }, async () => {
    // A port whose packets are dropped: what a broker whose host is gone looks like.
    const gone = await freePort();
    const heal = silence(gone);
    const link = new PlatformaticLink({
      brokers: [`127.0.0.1:${gone}`, ...brokers],
      clientId: "gone-first-test",
      connectionTimeoutMs: 2000,
    });
    try {
      let t0 = Date.now();
      await link.topicPartitions();
      const first = Date.now() - t0;
      assert.ok(first >= 1900, `the first ask waited out the connection timeout (${first} ms)`);
      t0 = Date.now();
      await link.topicPartitions();
      const second = Date.now() - t0;
      assert.ok(second < 1000, `the next asks a broker that answers first (${second} ms)`);
    } finally {
      heal();
      await link.close();
    }
  });

  it("a reader stopped while it starts never reads", async () => {
    const link = new PlatformaticLink({ brokers, clientId: "stop-test" });
    const topic = `minimesh.stop.${crypto.randomUUID()}`;
    const delays = [0, 5, 20, 50, 100, 200];
    const got = new Map<number, number>();
    try {
      await link.ensureTopic(topic, delays.length);
      await Promise.all(delays.map(async (ms, partition) => {
        const c = link.consumePartition(topic, partition, () => {
          got.set(partition, (got.get(partition) ?? 0) + 1);
        });
        c.ready.catch(() => {});
        await sleep(ms);
        await c.stop();
      }));
      await link.send(delays.map((_, partition) => ({ topic, partition, value: "late" })));
      await sleep(1500);
      assert.deepEqual([...got], [], "records handled by stopped readers");
      // A running reader on the same link does read.
      const c = link.consumePartition(topic, 0, () => void got.set(0, 1));
      await c.ready;
      await link.send([{ topic, partition: 0, value: "now" }]);
      await eventually(() => got.get(0) === 1, 10_000, "the running reader");
    } finally {
      await link.close();
    }
  });
});
