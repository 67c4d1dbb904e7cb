import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { EventEnvelope, Platform, PostOffice } from "../mod.ts";
import {
  BlockAssembler,
  inboxOf,
  isBlock,
  MAX_BLOCK,
  RoutingTable,
  toBlocks,
} from "../internal.ts";
import { stubMesh } from "./_helpers.ts";
import { Delivery } from "../connector/delivery.ts";
import { MemoryKafka, MemoryKafkaClient } from "../kafka/memory.ts";
import type { InRecord } from "../kafka/client.ts";

describe("RoutingTable", () => {
  it("lists the origins that take a route's requests, the draining ones only as a last resort", () => {
    const t = new RoutingTable();
    t.addRoute("a.b", "o1", "app, APP");
    t.addRoute("a.b", "o2", "app, APP");
    t.addRoute("c.d", "o2", "app, APP");
    assert.deepEqual(t.takers("a.b"), ["o1", "o2"]);
    assert.equal(t.takers("a.b"), t.takers("a.b"), "the same list until it changes");
    t.setDraining("o1");
    assert.deepEqual(t.takers("a.b"), ["o2"]);
    t.setDraining("o2");
    assert.deepEqual(t.takers("a.b"), ["o1", "o2"]);
    assert.deepEqual(t.takers("x.y"), []);
  });

  it("removes a peer with all its routes", () => {
    const t = new RoutingTable();
    t.upsertPeer({ origin: "o1", topic: "m.0001-000", name: "n", version: "1" }, 1);
    assert.equal(t.upsertPeer({ origin: "o1", topic: "", name: "", version: "" }, 2), false);
    assert.equal(t.peer("o1")?.topic, "m.0001-000", "an empty field keeps the known value");
    t.addRoute("a.b", "o1", "n, APP");
    t.addRoute("c.d", "o1", "n, APP");
    t.addRoute("c.d", "o2", "n, APP");
    assert.deepEqual(t.removePeer("o1").sort(), ["a.b", "c.d"]);
    assert.deepEqual(t.origins("c.d"), ["o2"]);
    assert.equal(t.peer("o1"), undefined);
    assert.deepEqual([...t.routesOf("o2")], [["c.d", "n, APP"]]);
  });
});

describe("blocks", () => {
  it("split a large event and put it back together in any order", () => {
    const body = Uint8Array.from({ length: 200_000 }, (_, i) => i % 256);
    const bytes = new EventEnvelope({ to: "a.b", body }).toBytes();
    const blocks = toBlocks("e1", bytes);
    assert.equal(blocks.length, Math.ceil(bytes.length / MAX_BLOCK));
    assert.ok(blocks.every((b) => isBlock(EventEnvelope.fromBytes(b.toBytes()))));
    const asm = new BlockAssembler();
    const shuffled = [blocks[2], blocks[0], blocks[3], blocks[1]];
    let done: Uint8Array | undefined;
    for (const b of shuffled) {
      const r = asm.add(EventEnvelope.fromBytes(b.toBytes()), 0);
      if (r.kind === "complete") done = r.bytes;
      else assert.equal(r.kind, "partial");
    }
    assert.deepEqual(EventEnvelope.fromBytes(done!).body, body);
    assert.equal(asm.pending, 0);
  });

  it("refuse duplicates and nonsense, and expire incomplete sets", () => {
    const asm = new BlockAssembler({ ttlMs: 1000 });
    const block = (n: string, max: string, body: unknown = new Uint8Array([1])) =>
      new EventEnvelope({ headers: { _id_: "s", _blk_: n, _max_: max }, body });
    assert.equal(asm.add(block("1", "2"), 0).kind, "partial");
    assert.match((asm.add(block("1", "2"), 0) as { reason: string }).reason, /duplicate block 1/);
    assert.match((asm.add(block("3", "2"), 0) as { reason: string }).reason, /out of 1..2/);
    assert.match((asm.add(block("1", "x"), 0) as { reason: string }).reason, /bad _max_/);
    assert.match((asm.add(block("2", "2", "text"), 0) as { reason: string }).reason, /no bytes/);
    assert.match((asm.add(block("1", "99999"), 0) as { reason: string }).reason, /bad _max_/);
    assert.deepEqual(asm.expire(500), []);
    assert.deepEqual(asm.expire(1000), [["s", 1, 2]]);
    assert.equal(isBlock(new EventEnvelope({ to: "a.b", headers: { _id_: "x" } })), false);
    assert.equal(isBlock(new EventEnvelope({ headers: { id: "x" } })), false);
  });

  it("hold a bounded number of incomplete sets and bytes, dropping the oldest", () => {
    let asm = new BlockAssembler({ maxSets: 3, maxPendingBytes: 10_000 });
    const first = (id: string, size: number) =>
      asm.add(
        new EventEnvelope({
          headers: { _id_: id, _blk_: "1", _max_: "2" },
          body: new Uint8Array(size),
        }),
        0,
      );
    for (const id of ["a", "b", "c"]) {
      assert.deepEqual(first(id, 100), { kind: "partial", dropped: [] });
    }
    assert.deepEqual(first("d", 100), { kind: "partial", dropped: [["a", 1, 2]] }, "set cap");
    assert.equal(asm.pending, 3);
    assert.equal(asm.pendingBytes, 300);
    // Bytes: a big first block pushes out the oldest sets until the total fits again.
    assert.deepEqual(first("e", 7_000), {
      kind: "partial",
      dropped: [["b", 1, 2]],
    });
    assert.deepEqual(first("f", 4_000), {
      kind: "partial",
      dropped: [["c", 1, 2], ["d", 1, 2], ["e", 1, 2]],
    });
    assert.equal(asm.pendingBytes, 4_000);
    // One set may not grow past the largest event, whatever its blocks claim.
    asm = new BlockAssembler({ maxBytes: 70_000, maxPendingBytes: 200_000 });
    assert.equal(first("f", 60_000).kind, "partial");
    const second = asm.add(
      new EventEnvelope({
        headers: { _id_: "f", _blk_: "2", _max_: "2" },
        body: new Uint8Array(20_000),
      }),
      0,
    );
    assert.match((second as { reason: string }).reason, /set f is over 70000 bytes/);
    assert.equal(asm.pending, 0);
    assert.equal(asm.pendingBytes, 0);
  });
});

describe("requests waiting on a peer (what fails fast when it leaves)", () => {
  it("are found by the peer they went to, and forgotten once answered", async () => {
    const platform = new Platform({ dir: "/nonexistent", args: [], env: {} });
    const inbox = inboxOf(platform);
    const sent: EventEnvelope[] = [];
    const mesh = stubMesh((e) => {
      // As the connector does: note the peer each request of ours went to.
      e.correlationId = inbox.sentTo(e.correlationId!, e.to === "a.one" ? "peer-1" : "peer-2");
      sent.push(e);
    });
    platform.attachMesh(mesh);
    const po = new PostOffice({}, platform);
    const single = po.request({ to: "a.one", body: 1 }, 5000);
    const fork = po.request([{ to: "a.one" }, { to: "b.two" }, { to: "a.one" }], 5000);
    await Promise.resolve();
    assert.equal(sent.length, 4);
    const [s, f1, f2, f3] = sent.map((e) => e.correlationId!);
    assert.deepEqual(inbox.waitingOn("peer-1").sort(), [s, f1, f3].sort());
    assert.deepEqual(inbox.waitingOn("peer-2"), [f2]);
    assert.deepEqual(inbox.waitingOn("peer-3"), []);

    const reply = (cid: string) =>
      platform.deliverLocal(
        new EventEnvelope({ to: platform.inboxAddress, correlationId: cid, body: cid }),
      );
    const fromPeer = (cid: string) =>
      inbox.completeFromPeer(new EventEnvelope({ correlationId: cid, body: "forged" }));
    // Each peer got its own unguessable token; a reply must carry the token of its request.
    assert.match(s, /^[0-9a-f]{32}\d+$/);
    assert.notEqual(f2.slice(0, 32), f1.slice(0, 32), "peers have different tokens");
    assert.equal(f1.slice(0, 32), s.slice(0, 32), "one token per peer");
    assert.equal(fromPeer(s.slice(32)), false, "the bare id does not complete it");
    assert.equal(fromPeer(f2.slice(0, 32) + s.slice(32)), false, "another peer's token does not");
    assert.equal(fromPeer("0".repeat(32) + s.slice(32)), false, "a guessed token does not");
    assert.deepEqual(inbox.waitingOn("peer-1").sort(), [s, f1, f3].sort(), "still waiting");
    reply(f1);
    assert.deepEqual(inbox.waitingOn("peer-1").sort(), [s, f3].sort(), "f1 has its reply");
    reply(s);
    reply(f2);
    reply(f3);
    assert.equal((await single).body, s);
    assert.deepEqual((await fork).map((r) => r.body), [f1, f2, f3]);
    assert.equal(fromPeer(s), false, "an answered request takes no second reply");
    assert.deepEqual(inbox.waitingOn("peer-1"), []);
    assert.deepEqual(inbox.waitingOn("peer-2"), []);
  });
});

describe("block sets read in part", () => {
  it("expire after their time to live, and a whole set later is delivered", async () => {
    const platform = new Platform({ args: ["-Dlog.level=error"] });
    const got: number[] = [];
    platform.register("big.work", (_h, body: Uint8Array) => void got.push(body.length));
    const kafka = new MemoryKafkaClient(new MemoryKafka(), ["memory:9092"]);
    const delivery = new Delivery(platform, kafka, { ttlMs: 1000 }, 1000);
    let offset = 0;
    const record = (b: EventEnvelope): InRecord => ({
      topic: "t",
      partition: 0,
      offset: String(offset++),
      key: undefined,
      headers: { _event_: "1" },
      value: b.toBytes(),
      timestamp: Date.now(),
    });
    const event = (n: number) =>
      new EventEnvelope({ to: "big.work", body: new Uint8Array(MAX_BLOCK * 2 + n) });
    const [first] = toBlocks("part", event(1).toBytes());
    delivery.onRecord(record(first));
    delivery.expireBlocks(Date.now()); // within its time to live
    assert.equal(delivery.stats.expiredBlockSets, 0);
    delivery.expireBlocks(Date.now() + 1001);
    assert.equal(delivery.stats.expiredBlockSets, 1);
    for (const b of toBlocks("whole", event(2).toBytes())) delivery.onRecord(record(b));
    for (let i = 0; i < 50 && got.length === 0; i++) await new Promise((r) => setTimeout(r, 10));
    assert.deepEqual(got, [MAX_BLOCK * 2 + 2]);
    delivery.close();
    await platform.stop();
  });
});

describe("requests read after their caller's timeout", () => {
  it("are dropped and counted; fresh requests and plain sends run", async () => {
    const platform = new Platform({ args: ["-Dlog.level=error"] });
    let ran = 0;
    platform.register("late.work", () => {
      ran++;
      return "ok";
    });
    const kafka = new MemoryKafkaClient(new MemoryKafka(), ["memory:9092"]);
    const delivery = new Delivery(platform, kafka, {}, 1000);
    const record = (e: EventEnvelope, ageMs: number): InRecord => ({
      topic: "t",
      partition: 0,
      offset: "0",
      key: undefined,
      headers: { _event_: "1" },
      value: e.toBytes(),
      timestamp: Date.now() - ageMs,
    });
    const request = () => new EventEnvelope({ to: "late.work", tags: { rpc: "3000" } });
    delivery.onRecord(record(request(), 4500)); // 3 s timeout + 1 s skew passed: dropped
    delivery.onRecord(record(request(), 3500)); // within the skew allowed: runs
    delivery.onRecord(record(request(), 10)); // fresh
    delivery.onRecord(record(new EventEnvelope({ to: "late.work" }), 60_000)); // a send: no deadline
    await new Promise((r) => setTimeout(r, 50));
    assert.equal(delivery.stats.expired, 1);
    assert.equal(ran, 3);
    await platform.stop();
  });
});
