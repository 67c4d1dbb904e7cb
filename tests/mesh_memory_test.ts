// The mesh without a broker: presence monitors and connectors in this process over Kafka in
// memory (kafka/memory.ts), with real websockets on 127.0.0.1. What crosses a real broker is in
// tests/broker/; this file covers the logic above the link: leases, the routing table, requests
// and replies between instances, private routes, forged replies, large events, peers leaving,
// monitor failover, and Kafka going away.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { EventEnvelope, Platform } from "../mod.ts";
import { connectorSettings, connectToCloud } from "../connector/mod.ts";
import type { LifeCycleEvent } from "../connector/mod.ts";
import { PresenceMonitor } from "../presence/mod.ts";
import { eventRecord, inboxOf, MemoryKafka, splitVirtualTopic } from "../internal.ts";
import { eventually } from "./_presence.ts";
import { freePort, onLifeCycle, sleep } from "./_helpers.ts";
import fc from "fast-check";
import { pingPong, quiet, sees, startApp, startMonitor } from "./_mesh_memory.ts";
import type { App } from "./_mesh_memory.ts";

// `other` starts serving `may.retry` (answering `body`) and `b` sees it; the list fills with
// each run's `retry` tag.
async function alsoServes(
  b: App,
  other: App,
  body = "from the other instance",
): Promise<(string | undefined)[]> {
  const tags: (string | undefined)[] = [];
  other.platform.register("may.retry", (_h, _b, _i, e) => {
    tags.push(e.tags.retry);
    return body;
  }, 10);
  await sees(b, other, "may.retry");
  return tags;
}

// Which of `apps` the one request `b` sent waits on.
function waitedOn(b: App, apps: App[]): App {
  return apps.find((a) => inboxOf(b.platform).waitingOn(a.platform.origin).length)!;
}

// `b` avoids `origin` no more: ten requests to `may.retry` reach both instances again.
async function takenBack(b: App, origin: string, bodies: string[], ms: number): Promise<void> {
  await eventually(() => !b.connector.table.isDraining(origin), ms, "b takes it back");
  const by = new Set<unknown>();
  for (let i = 0; i < 10; i++) by.add((await b.po.request({ to: "may.retry" }, 2000)).body);
  assert.deepEqual([...by].sort(), bodies.sort());
}

// Calls `call` again as soon as it fails, up to 20,000 times or until a 1-ms timer has fired 5
// times: whether the loop leaves the event loop its turns.
async function tryInALoop(call: () => Promise<unknown>) {
  let ticks = 0;
  const ticker = setInterval(() => ticks++, 1);
  const reasons = new Set<string>();
  let tries = 0;
  try {
    for (; tries < 20_000 && ticks < 5; tries++) {
      await call().catch((e: Error) => reasons.add(e.message));
    }
  } finally {
    clearInterval(ticker);
  }
  return { ticks, tries, reasons };
}

describe("the mesh over Kafka in memory", () => {
  it("leases distinct partitions and carries typed requests both ways", async () => {
    const kafka = new MemoryKafka();
    await using monitor = await startMonitor(kafka);
    await using a = startApp(kafka, [monitor], "app-a");
    await using b = startApp(kafka, [monitor], "app-b");
    a.platform.register<{ n: number }, number>("math.double", (_h, { n }) => n * 2);
    b.platform.register<string, string>("text.upper", (_h, s) => s.toUpperCase());
    await sees(b, a, "math.double");
    await sees(a, b, "text.upper");
    assert.notEqual(a.connector.topic, b.connector.topic);
    assert.equal(monitor.table.leases().length, 2);

    const doubled = await b.po.request<number>({ to: "math.double", body: { n: 21 } }, {
      timeout: 2000,
    });
    assert.equal(doubled.body, 42);
    const upper = await a.po.request<string>({ to: "text.upper", body: "mesh" }, 2000);
    assert.equal(upper.body, "MESH");
    // A fork-and-join across the mesh, as its replies arrive.
    const events = [1, 2, 3].map((n) => ({ to: "math.double", body: { n } }));
    const got: number[] = [];
    for await (const r of b.po.forkJoin<number>(events, { timeout: 2000 })) got.push(r.body);
    assert.deepEqual(got.sort(), [2, 4, 6]);
  });

  it("fetches its partitions rarely while it has no traffic, and as usual again once it has", async () => {
    const kafka = new MemoryKafka();
    // The memory client ignores the fetch wait: what the connector asks of a real reader is
    // caught here, and asked as that reader would, once per idle fetch.
    const client = kafka.client();
    const waits = new Map<number, () => number>();
    const consume = client.consumePartition.bind(client);
    client.consumePartition = (topic, partition, onRecord, options) => {
      const wait = options?.maxWaitMs;
      if (typeof wait === "function") waits.set(topic.endsWith("monitor") ? -1 : partition, wait);
      return consume(topic, partition, onRecord, options);
    };
    await using monitor = await startMonitor(kafka);
    await using a = startApp(kafka, [monitor], "app-a", [], client);
    await using b = startApp(kafka, [monitor], "app-b");
    a.platform.register("math.double", (_h, n: number) => n * 2);
    await sees(b, a, "math.double");
    assert.equal(waits.size, 2, "its own partition and its group's");
    const group = waits.get(-1)!;
    const own = [...waits.values()].find((w) => w !== group)!;
    const both = () => [own(), group()];
    // A clock moved ahead instead of waiting (its jump looks like a pause of this process to the
    // checks that judge silence, which judge nothing from it).
    const realNow = Date.now;
    let ahead = 0;
    Date.now = () => realNow() + ahead;
    try {
      assert.deepEqual(both(), [3000, 500], "just joined");
      ahead = 9_000;
      assert.deepEqual(both(), [3000, 500], "9 s without traffic");
      ahead = 10_500;
      assert.deepEqual(both(), [10_000, 10_000], "quiet");
      assert.equal((await b.po.request({ to: "math.double", body: 2 }, 2000)).body, 4);
      assert.deepEqual(both(), [3000, 500], "a request served ends the quiet");
      ahead = 21_000;
      assert.deepEqual(both(), [10_000, 10_000], "quiet again");
      await a.po.request({ to: "math.double", body: 1 }, 2000); // local: not through Kafka
      assert.deepEqual(both(), [10_000, 10_000], "a local request is not mesh traffic");
    } finally {
      Date.now = realNow;
    }
  });

  it("finishes a join whose announcement failed when it comes back with the same lease", async () => {
    const kafka = new MemoryKafka();
    await using monitor = await startMonitor(kafka);
    await using a = startApp(kafka, [monitor], "app-a");
    a.platform.register("a.echo", (_h, body) => body);
    await a.connector.joined;
    // b's first write to its group (the join's announcement) fails, as with Kafka away a moment.
    const client = kafka.client();
    const send = client.send.bind(client);
    let failed = 0;
    client.send = (records) =>
      failed === 0 && records.some((r) => r.topic === "service.monitor" && r.partition > 0)
        ? Promise.reject(new Error(`Cannot connect to any broker (${++failed})`))
        : send(records);
    await using b = startApp(kafka, [monitor], "app-b", [], client);
    let joined = false;
    b.connector.joined.then(() => (joined = true));
    await eventually(() => joined, 10_000, "b joined");
    assert.equal(failed, 1, "the first announcement failed");
    const r = await b.po.request({ to: "a.echo", body: "hi" }, 2000);
    assert.equal(r.body, "hi");
    await eventually(
      () => a.connector.table.peer(b.platform.origin) !== undefined,
      3000,
      "a hears b",
    );
  });

  it("refuses private routes from the mesh, and drops forged replies", async () => {
    const kafka = new MemoryKafka();
    await using monitor = await startMonitor(kafka);
    await using a = startApp(kafka, [monitor], "app-a");
    await using b = startApp(kafka, [monitor], "app-b");
    a.platform.register("public.route", () => "public");
    a.platform.registerPrivate("secret.route", () => "secret");
    await sees(b, a, "public.route");
    assert.equal(b.connector.reaches("secret.route"), false, "private routes are not advertised");

    // Addressed at a's partition directly, as a hostile member would.
    const [topic, partition] = splitVirtualTopic(a.connector.topic!);
    const forged = new EventEnvelope({
      to: "secret.route",
      replyTo: `temporary.inbox@${b.platform.origin}`,
      correlationId: "1",
    });
    await kafka.client().send([eventRecord(topic, partition, a.platform.origin, forged)]);
    await eventually(() => a.connector.stats.privateRoute === 1, 2000, "the refusal");

    // A reply to b that b never asked a for: no request may complete with it.
    const [bt, bp] = splitVirtualTopic(b.connector.topic!);
    const pending = b.po.request({ to: "public.route" }, { timeout: 2000 });
    const fake = new EventEnvelope({
      to: `temporary.inbox@${b.platform.origin}`,
      correlationId: "1",
      body: "forged",
    });
    await kafka.client().send([eventRecord(bt, bp, b.platform.origin, fake)]);
    assert.equal((await pending).body, "public");
    await eventually(() => b.connector.stats.unmatchedReplies >= 1, 2000, "the dropped reply");
  });

  it("writes what the Java original writes: level-3 broadcasts, one join and one leave", async () => {
    const kafka = new MemoryKafka();
    await using monitor = await startMonitor(kafka);
    const a = startApp(kafka, [monitor], "app-a");
    await using b = startApp(kafka, [monitor], "app-b");
    let got = 0;
    a.platform.register("cache.clear", () => void got++);
    b.platform.register("cache.clear", () => void got++);
    await sees(b, a, "cache.clear");
    await sees(a, b, "cache.clear");
    const from = kafka.written.length;
    await b.po.broadcast({ to: "cache.clear" });
    await eventually(() => got === 2, 2000, "one copy in each instance");
    const copies = kafka.written.slice(from).map((r) =>
      EventEnvelope.fromBytes(r.value as Uint8Array)
    )
      .filter((e) => e.to === "cache.clear");
    assert.deepEqual(copies.map((e) => e.tags.broadcast), ["3", "3"]);

    await a.connector.stop();
    await eventually(() => !b.connector.knows(a.platform.origin), 2000, "b to hear the leave");
    await kafka.settled();
    const registry = kafka.written.filter((r) => r.topic === "service.monitor" && r.partition === 1)
      .map((r) => EventEnvelope.fromBytes(r.value as Uint8Array).headers)
      .filter((h) => h.origin === a.platform.origin);
    const count = (type: string) => registry.filter((h) => h.type === type).length;
    assert.deepEqual([count("join"), count("leave")], [1, 1], JSON.stringify(registry));
    assert.equal(got, 2);
  });

  it("carries a large event in blocks", async () => {
    const kafka = new MemoryKafka();
    await using monitor = await startMonitor(kafka);
    await using a = startApp(kafka, [monitor], "app-a");
    await using b = startApp(kafka, [monitor], "app-b");
    a.platform.register<Uint8Array, number>("bytes.count", (_h, bytes) => bytes.byteLength);
    await sees(b, a, "bytes.count");
    const before = kafka.written.length;
    const body = new Uint8Array(600_000).fill(7);
    const reply = await b.po.request<number>({ to: "bytes.count", body }, { timeout: 5000 });
    assert.equal(reply.body, 600_000);
    assert.ok(kafka.written.length - before >= 3, "the request went as several records");
  });

  it("fails requests at once when the peer leaves, and tells life-cycle readers", async () => {
    const kafka = new MemoryKafka();
    await using monitor = await startMonitor(kafka);
    const a = startApp(kafka, [monitor], "app-a");
    await using b = startApp(kafka, [monitor], "app-b");
    const seen: LifeCycleEvent[] = [];
    const reading = (async () => {
      for await (const e of b.connector.lifeCycle({ signal: AbortSignal.timeout(10_000) })) {
        seen.push(e);
        if (e.type === "leave") break;
      }
    })();
    let arrived = false;
    a.platform.register("slow.route", () => {
      arrived = true;
      return new Promise(() => {}); // never answers
    });
    await sees(b, a, "slow.route");
    const t0 = performance.now();
    const pending = b.po.request({ to: "slow.route" }, { timeout: 10_000 });
    await eventually(() => arrived, 2000, "the request to reach app-a");
    await a.connector.stop();
    const reply = await pending;
    assert.equal(reply.status, 503);
    assert.match(reply.error!, /left before replying/);
    assert.ok(performance.now() - t0 < 5000, "long before the timeout");
    await reading;
    assert.deepEqual(
      seen.filter((e) => e.origin === a.platform.origin).map((e) => e.type),
      ["join", "leave"],
    );
    // A reader of a connector that stops is told so by the end of its loop.
    const last: string[] = [];
    const untilStop = (async () => {
      for await (const e of b.connector.lifeCycle()) last.push(e.type);
    })();
    await b.connector.stop();
    await untilStop;
    assert.deepEqual(last, ["disconnected"]);
  });

  it("believes a leave read on Kafka only when the monitors say the peer is gone", async () => {
    const kafka = new MemoryKafka();
    await using mesh = await pingPong(kafka);
    const { a, b } = mesh;
    const { monitorTopic } = connectorSettings(b.platform.config);
    const registry = (headers: Record<string, string>, body?: unknown) =>
      eventRecord(
        monitorTopic,
        1,
        "monitor-1",
        new EventEnvelope({ to: "system.service.registry@monitor-1", headers, body }),
      );
    // Forged: leaves of a (as a Kafka writer without a session would write them), and
    // generated malformed registry messages for a.
    const origin = a.platform.origin;
    const malformed = fc.sample(
      fc.record({
        type: fc.constantFrom("add", "unregister", "join", "keep-alive"),
        route: fc.constantFrom(undefined, "", "ping.pong", "bad route!", "x".repeat(300)),
        body: fc.oneof(
          fc.constant(undefined),
          fc.string(),
          fc.array(fc.string(), { maxLength: 3 }),
          fc.dictionary(fc.constantFrom("ok.route", "", "no spaces allowed"), fc.anything()),
        ),
      }),
      50,
    ).filter((m) => m.type !== "unregister" || m.route !== "ping.pong")
      .map(({ type, route, body }) =>
        registry(route === undefined ? { type, origin } : { type, origin, route }, body)
      );
    // Whatever b's life cycle says while they arrive: a never leaves (a join of a among the
    // forged messages would otherwise hide its removal).
    const leaves: string[] = [];
    const watching = (async () => {
      for await (const e of b.connector.lifeCycle({ signal: AbortSignal.timeout(3000) })) {
        if (e.type === "leave") leaves.push(e.origin);
      }
    })().catch(() => {});
    await kafka.client().send([
      ...Array.from({ length: 20 }, () => registry({ type: "leave", origin })),
      ...malformed,
    ]);
    await watching; // the first answer, and the second question a second later
    assert.deepEqual(leaves, [], "no leave believed");
    assert.ok(b.connector.table.peer(origin), "a is still a peer of b");
    for (const bad of ["", "no spaces allowed", "bad route!", "x".repeat(300)]) {
      assert.deepEqual(b.connector.table.origins(bad), [], `no route ${bad.slice(0, 20)}`);
    }
    const pong = await b.po.request({ to: "ping.pong" }, 2000);
    assert.equal(pong.body, "pong");

    // A genuine leave is believed at once.
    const t0 = performance.now();
    await a.connector.stop();
    await eventually(() => b.connector.table.peer(origin) === undefined, 5000, "a's leave");
    assert.ok(performance.now() - t0 < 3000, `believed after ${performance.now() - t0} ms`);
  });

  it("keeps an application in the mesh, with its lease, while its monitor stops", async () => {
    const kafka = new MemoryKafka();
    const first = await startMonitor(kafka);
    await using second = await startMonitor(kafka);
    await eventually(() => second.monitors().size === 2, 5000, "the monitors to meet");
    await using a = startApp(kafka, [first, second], "app-a");
    await using b = startApp(kafka, [second], "app-b");
    a.platform.register("where.am.i", () => "here");
    await sees(b, a, "where.am.i");
    const topic = a.connector.topic;
    const seen: string[] = [];
    onLifeCycle(a.connector, (e) => seen.push(`a ${e.type}`));
    onLifeCycle(b.connector, (e) => seen.push(`b ${e.type}`));
    // Requests from b to a all through the handover.
    let stopped = false;
    const statuses: number[] = [];
    const load = (async () => {
      while (!stopped) {
        const r = await b.po.request({ to: "where.am.i" }, { timeout: 2000 })
          .catch((e) => ({ status: e.status ?? 0 }));
        statuses.push(r.status);
        await sleep(2); // Kafka in memory answers within microtasks: let timers and sockets run
      }
    })();
    const origin = a.platform.origin;
    try {
      await sleep(100);
      await first.stop();
      await eventually(
        () => second.table.connection(origin)?.monitor === second.platform.origin,
        10_000,
        "app-a to reconnect through the second",
      );
      await sleep(200);
    } finally {
      stopped = true;
      await load;
    }
    assert.equal(a.connector.topic, topic, "the same lease");
    assert.deepEqual(seen, [], "no leave, join, disconnect or connect on either side");
    assert.ok(statuses.length > 10, `${statuses.length} requests`);
    assert.deepEqual(statuses.filter((s) => s !== 200), [], "every request served");
    assert.equal(second.table.connections().length, 2);
  });

  it("drains: peers send new requests elsewhere, work in progress finishes, then it leaves", async () => {
    const kafka = new MemoryKafka();
    await using monitor = await startMonitor(kafka);
    await using a1 = startApp(kafka, [monitor], "app-a");
    await using a2 = startApp(kafka, [monitor], "app-a");
    await using b = startApp(kafka, [monitor], "app-b");
    for (const a of [a1, a2]) {
      a.platform.register("slow.work", async () => {
        await sleep(30);
        return a.platform.origin;
      }, 4);
    }
    await sees(b, a1, "slow.work");
    await sees(b, a2, "slow.work");
    let stopped = false;
    const replies: { status: number; by?: unknown; at: number }[] = [];
    const loops = Array.from({ length: 8 }, async () => {
      while (!stopped) {
        const r = await b.po.request({ to: "slow.work" }, { timeout: 3000 })
          .then((r) => ({ status: r.status, by: r.body }), (e) => ({ status: e.status ?? 0 }));
        replies.push({ ...r, at: Date.now() });
      }
    });
    await sleep(300);
    const drainAt = Date.now();
    await a1.platform.stop({ gracePeriod: 5000 });
    const stoppedAt = Date.now();
    await sleep(200);
    stopped = true;
    await Promise.all(loops);
    const failed = replies.filter((r) => r.status !== 200);
    assert.deepEqual(failed, [], "no request failed");
    assert.ok(replies.some((r) => r.by === a1.platform.origin && r.at < drainAt), "a1 served");
    // What a1 served after its stop had begun was already on its way; nothing after it stopped.
    assert.ok(!replies.some((r) => r.by === a1.platform.origin && r.at > stoppedAt + 50));
    assert.ok(replies.filter((r) => r.at > stoppedAt).length > 10, "a2 serves on");
    assert.equal(a1.connector.connected, false, "a1 left");
  });

  it("retries a request once on another instance when its instance leaves before replying", async () => {
    const kafka = new MemoryKafka();
    await using monitor = await startMonitor(kafka);
    await using slow = startApp(kafka, [monitor], "app-a");
    await using other = startApp(kafka, [monitor], "app-a");
    await using b = startApp(kafka, [monitor], "app-b");
    slow.platform.register("may.retry", () => new Promise(() => {}), 10); // never replies
    await sees(b, slow, "may.retry");
    // Only `slow` serves it while the requests go out; `other` registers once they are waiting.
    const retried = b.po.request({ to: "may.retry" }, { timeout: 3000, retry: true });
    const notRetried = b.po.request({ to: "may.retry" }, { timeout: 3000 });
    await eventually(
      () => slow.platform.routes().find((r) => r.route === "may.retry")?.busy === 2,
      2000,
      "both requests at slow",
    );
    other.platform.register("may.retry", () => "from the other instance", 10);
    await sees(b, other, "may.retry");
    await slow.connector.stop(); // leaves without draining, as if it crashed after the leave
    const [r1, r2] = await Promise.all([retried, notRetried]);
    assert.equal(r1.status, 200);
    assert.equal(r1.body, "from the other instance");
    assert.equal(r2.status, 503);
    assert.match(String(r2.body), /left before replying/);
  });

  it("an instance that cannot reach Kafka is drained by its monitor, its retries go elsewhere, and it comes back", async () => {
    const kafka = new MemoryKafka();
    await using monitor = await startMonitor(kafka);
    const cutClient = kafka.client();
    const cut = startApp(kafka, [monitor], "app-a", [], cutClient);
    await using _cut = cut;
    await using other = startApp(kafka, [monitor], "app-a");
    await using b = startApp(kafka, [monitor], "app-b");
    cut.platform.register("may.retry", () => "from the cut one", 10);
    await sees(b, cut, "may.retry");
    const health = () =>
      monitor.dashboardState().apps.find((a) => a.origin === cut.platform.origin)?.health;
    await eventually(() => health() === "UP", 5000, "the first report of the one to cut");
    cutClient.cutOff = true; // its host's links to the brokers go down
    // Sent while only `cut` serves the route: it reaches Kafka, not `cut`.
    const retried = b.po.request({ to: "may.retry" }, { timeout: 5000, retry: true });
    const notRetried = b.po.request({ to: "may.retry" }, { timeout: 5000 });
    const tags = await alsoServes(b, other);
    const r1 = await retried;
    assert.equal(r1.body, "from the other instance", "retried on the other instance");
    assert.deepEqual(tags, ["1"], "the retry says so");
    assert.ok(b.connector.table.isDraining(cut.platform.origin), "b sends it nothing new");
    assert.equal(health(), "DOWN", "the dashboard shows it");
    for (let i = 0; i < 10; i++) {
      const r = await b.po.request({ to: "may.retry" }, { timeout: 2000 });
      assert.equal(r.body, "from the other instance");
    }
    cutClient.cutOff = false;
    // What waited for it is handled now: the request that did not ask for a retry too.
    assert.equal((await notRetried).body, "from the cut one");
    await takenBack(b, cut.platform.origin, ["from the cut one", "from the other instance"], 5000);
  });

  it("a peer whose partition takes no write is avoided, its retries go elsewhere, and it comes back", async () => {
    const kafka = new MemoryKafka();
    await using monitor = await startMonitor(kafka);
    await using stuck = startApp(kafka, [monitor], "app-a");
    await using other = startApp(kafka, [monitor], "app-a");
    await using b = startApp(kafka, [monitor], "app-b");
    stuck.platform.register("may.retry", () => "from the stuck one", 10);
    await sees(b, stuck, "may.retry");
    const [topic, partition] = splitVirtualTopic(stuck.connector.topic!);
    kafka.stall(topic, partition); // its partition's leader is away
    const started = Date.now();
    const retried = b.po.request({ to: "may.retry" }, { timeout: 8000, retry: true });
    const notRetried = b.po.request({ to: "may.retry" }, { timeout: 8000 });
    const tags = await alsoServes(b, other);
    const r1 = await retried;
    assert.equal(r1.body, "from the other instance", "retried on the other instance");
    assert.deepEqual(tags, ["1"]);
    const took = Date.now() - started;
    assert.ok(took >= 1900 && took < 4000, `retried after the stall was noticed (${took} ms)`);
    assert.ok(b.connector.table.isDraining(stuck.platform.origin, "stalled"));
    for (let i = 0; i < 5; i++) {
      assert.equal((await b.po.request({ to: "may.retry" }, 2000)).body, "from the other instance");
    }
    kafka.stall(topic, partition, false);
    assert.equal((await notRetried).body, "from the stuck one", "written once the leader is back");
    await takenBack(
      b,
      stuck.platform.origin,
      ["from the other instance", "from the stuck one"],
      3000,
    );
  });

  it("a retry that waits on a stalled instance goes to the first one whose partition takes writes again", async () => {
    const kafka = new MemoryKafka();
    await using monitor = await startMonitor(kafka);
    await using x = startApp(kafka, [monitor], "app-a");
    await using y = startApp(kafka, [monitor], "app-a");
    await using b = startApp(kafka, [monitor], "app-b");
    const ran = new Map([[x, await alsoServes(b, x, "from x")], [
      y,
      await alsoServes(b, y, "from y"),
    ]]);
    // A broker lost with the leaders of both instances' partitions: b notices both stalls.
    const partitionOf = (app: App) => splitVirtualTopic(app.connector.topic!);
    for (const app of [x, y]) {
      kafka.stall(...partitionOf(app));
      b.po.request({ to: "may.retry" }, { timeout: 1000 }).catch(() => {});
    }
    await eventually(
      () => [x, y].every((a) => b.connector.table.isDraining(a.platform.origin, "stalled")),
      4000,
      "both stalls noticed",
    );
    // Sent now, it waits on one of them (no other instance takes requests).
    const reply = b.po.request({ to: "may.retry" }, { timeout: 8000, retry: true });
    await sleep(100);
    const waitsOn = waitedOn(b, [x, y]);
    const other = waitsOn === x ? y : x;
    const started = Date.now();
    kafka.stall(...partitionOf(other), false); // the other's partition has a leader again
    const r = await reply;
    assert.equal(r.body, other === x ? "from x" : "from y", "retried on the one that came back");
    assert.ok(
      Date.now() - started < 3000,
      `within the probe's second (${Date.now() - started} ms)`,
    );
    // (Besides the requests that showed the stall, written once its partition took writes.)
    assert.deepEqual(ran.get(other)!.filter((t) => t), ["1"], "as a second attempt");
    kafka.stall(...partitionOf(waitsOn), false);
  });

  it("a retry that waits on an instance cut from Kafka goes to the first one that reaches Kafka again", async () => {
    const kafka = new MemoryKafka();
    await using monitor = await startMonitor(kafka);
    const clients = [kafka.client(), kafka.client()];
    await using x = startApp(kafka, [monitor], "app-a", [], clients[0]);
    await using y = startApp(kafka, [monitor], "app-a", [], clients[1]);
    await using b = startApp(kafka, [monitor], "app-b");
    const ran = new Map([[x, await alsoServes(b, x, "from x")], [
      y,
      await alsoServes(b, y, "from y"),
    ]]);
    const health = (app: App) =>
      monitor.dashboardState().apps.find((a) => a.origin === app.platform.origin)?.health;
    await eventually(() => health(x) === "UP" && health(y) === "UP", 5000, "the first reports");
    for (const c of clients) c.cutOff = true; // both hosts' links to the brokers go down
    await eventually(
      () => [x, y].every((a) => b.connector.table.isDraining(a.platform.origin, "kafka")),
      8000,
      "both drained by the monitor",
    );
    // Sent now, it waits on one of them (no other instance takes requests).
    const reply = b.po.request({ to: "may.retry" }, { timeout: 15_000, retry: true });
    await sleep(100);
    const waitsOn = waitedOn(b, [x, y]);
    const other = waitsOn === x ? y : x;
    clients[other === x ? 0 : 1].cutOff = false; // the other's links come back
    const r = await reply;
    assert.equal(r.body, other === x ? "from x" : "from y", "retried on the one that came back");
    assert.deepEqual(ran.get(other), ["1"], "as a second attempt");
    assert.deepEqual(ran.get(waitsOn), [], "the first, still cut off, did not run it");
    clients[waitsOn === x ? 0 : 1].cutOff = false;
  });

  it("a retry sent elsewhere is not failed by its first write failing later", async () => {
    const kafka = new MemoryKafka();
    await using monitor = await startMonitor(kafka);
    await using stuck = startApp(kafka, [monitor], "app-a");
    await using other = startApp(kafka, [monitor], "app-a");
    const bClient = kafka.client();
    await using b = startApp(kafka, [monitor], "app-b", [], bClient);
    stuck.platform.register("may.retry", () => "from the stuck one", 10);
    await sees(b, stuck, "may.retry");
    const [topic, partition] = splitVirtualTopic(stuck.connector.topic!);
    kafka.stall(topic, partition);
    const reply = b.po.request({ to: "may.retry" }, { timeout: 8000, retry: true });
    // The other instance answers the retry a second after it comes (its stall noticed at 2 s).
    let retried = 0;
    other.platform.register("may.retry", async () => {
      retried++;
      await sleep(1000);
      return "from the other instance";
    }, 10);
    await sees(b, other, "may.retry");
    await eventually(() => retried === 1, 5000, "the retry on the other instance");
    // Meanwhile the first write fails (the stall ends while b cannot reach Kafka for a moment).
    bClient.cutOff = true;
    kafka.stall(topic, partition, false);
    await sleep(10);
    bClient.cutOff = false;
    const r = await reply;
    assert.equal(r.status, 200);
    assert.equal(r.body, "from the other instance");
  });

  it("a cluster slow for everyone is not a stalled partition", async () => {
    const kafka = new MemoryKafka();
    await using monitor = await startMonitor(kafka);
    await using a = startApp(kafka, [monitor], "app-a");
    await using b = startApp(kafka, [monitor], "app-b");
    a.platform.register("a.echo", (_h, body) => body);
    await sees(b, a, "a.echo");
    kafka.sendLatencyMs = 1000; // every write takes a second: the usual acknowledgement
    for (let i = 0; i < 3; i++) await b.po.request({ to: "a.echo", body: i }, 8000);
    kafka.sendLatencyMs = 2500; // slower still, past the fixed bound, for every partition alike
    let drained = false;
    const watch = setInterval(() => {
      drained ||= b.connector.table.isDraining(a.platform.origin, "stalled");
    }, 100);
    try {
      const replies = await Promise.all(
        [0, 1, 2, 3].map((i) => b.po.request({ to: "a.echo", body: i }, 8000)),
      );
      assert.deepEqual(replies.map((r) => r.body), [0, 1, 2, 3]);
      assert.ok(!drained, "a was never taken for stalled");
    } finally {
      clearInterval(watch);
      kafka.sendLatencyMs = 0;
    }
  });

  it("a request to the only instance, whose partition stalls, waits for it instead of going there twice", async () => {
    const kafka = new MemoryKafka();
    await using monitor = await startMonitor(kafka);
    await using only = startApp(kafka, [monitor], "app-a");
    await using b = startApp(kafka, [monitor], "app-b");
    const tags: (string | undefined)[] = [];
    only.platform.register("may.retry", (_h, _b, _i, e) => void tags.push(e.tags.retry), 10);
    await sees(b, only, "may.retry");
    const [topic, partition] = splitVirtualTopic(only.connector.topic!);
    kafka.stall(topic, partition);
    const reply = b.po.request({ to: "may.retry" }, { timeout: 8000, retry: true });
    await eventually(
      () => b.connector.table.isDraining(only.platform.origin, "stalled"),
      4000,
      "the stall noticed",
    );
    await sleep(600);
    kafka.stall(topic, partition, false);
    assert.equal((await reply).status, 200);
    await sleep(300);
    assert.deepEqual(tags, [undefined], "run once, never as a retry");
  });

  it("a cluster that nobody reaches drains nobody", async () => {
    const kafka = new MemoryKafka();
    await using monitor = await startMonitor(kafka);
    await using a = startApp(kafka, [monitor], "app-a");
    await using b = startApp(kafka, [monitor], "app-b");
    a.platform.register("ping.pong", () => "pong");
    await sees(b, a, "ping.pong");
    kafka.available = false;
    await sleep(1500); // a few urgent-report checks
    kafka.available = true;
    const r = await b.po.request({ to: "ping.pong" }, 2000);
    assert.equal(r.body, "pong");
    assert.equal(b.connector.table.isDraining(a.platform.origin), false);
  });

  it("a caller that tries again at once in a loop while Kafka is away leaves the event loop its turns", async () => {
    const kafka = new MemoryKafka();
    await using mesh = await pingPong(kafka);
    const po = mesh.b.po;
    kafka.available = false;
    // Failed at once, these would run in microtasks only: no timer would fire, nor any socket
    // be read, until the loop ends (the mesh's own recovery included).
    const request = await tryInALoop(() => po.request({ to: "ping.pong" }, 1000));
    const send = await tryInALoop(() => po.send({ to: "ping.pong" }));
    kafka.available = true;
    assert.equal((await po.request({ to: "ping.pong" }, 2000)).body, "pong");
    // A route that nobody serves (the mesh's table refills by messages that need the loop too).
    const missing = await tryInALoop(() => po.request({ to: "no.such.route" }, 1000));
    for (const [call, r] of Object.entries({ request, send, missing })) {
      assert.ok(r.ticks >= 5, `${call}: the timer ran ${r.ticks} times in ${r.tries} tries`);
    }
    assert.deepEqual([...request.reasons, ...send.reasons], [
      "Mesh unavailable",
      "Mesh unavailable",
    ]);
    assert.deepEqual([...missing.reasons], ["Route no.such.route not found"]);
  });

  it("answers 503 busy to mesh requests beyond the route's queue limit", async () => {
    const kafka = new MemoryKafka();
    await using monitor = await startMonitor(kafka);
    await using a = startApp(kafka, [monitor], "app-a", ["-Droute.queue.limit=3"]);
    await using b = startApp(kafka, [monitor], "app-b");
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    a.platform.register("slow.gate", async () => {
      await gate;
      return "done";
    });
    await sees(b, a, "slow.gate");
    const replies = Array.from({ length: 8 }, () => b.po.request({ to: "slow.gate" }, 3000));
    await eventually(() => a.connector.stats.busy === 4, 2000, "4 refused as busy");
    release();
    const statuses = (await Promise.all(replies)).map((r) => r.status);
    // One running, three waiting, four refused at once.
    assert.deepEqual(statuses.sort(), [200, 200, 200, 200, 503, 503, 503, 503]);
  });

  it("gets its lease back from a monitor that started after all others were gone", async () => {
    const kafka = new MemoryKafka();
    const first = await startMonitor(kafka);
    const port = await freePort();
    const later = { port } as PresenceMonitor; // its URL, before it runs
    await using a = startApp(kafka, [first, later], "app-a");
    await a.connector.joined;
    await using b = startApp(kafka, [first, later], "app-b");
    await b.connector.joined;
    const lease = b.connector.topic;
    await a.connector.stop(); // frees the first topic, which a new table would hand out first
    await first.stop();
    const platform = new Platform({
      dir: "/nonexistent",
      env: {},
      args: [`-Dserver.port=${port}`, "-Dserver.host=127.0.0.1", ...quiet],
    });
    await using second = new PresenceMonitor(platform, { kafka: kafka.client() });
    await second.start();
    const origin = b.platform.origin;
    await eventually(() => second.table.connection(origin)?.topic !== undefined, 10_000, "b back");
    assert.equal(second.table.connection(origin)?.topic, lease, "the lease it had");
    assert.equal(b.connector.topic, lease);
  });

  it("leaves after the grace period when no monitor takes it back", async () => {
    const kafka = new MemoryKafka();
    const monitor = await startMonitor(kafka);
    const urls = `ws://127.0.0.1:${monitor.port}/ws/presence`;
    const platform = new Platform({
      dir: "/nonexistent",
      env: {},
      args: ["-Dcloud.connector=kafka", `-Dpresence.url=${urls}`, "-Dpresence.reconnect.grace=1"],
    });
    await using _c = connectToCloud(platform, { kafka: kafka.client() })!;
    const connector = _c;
    await connector.joined;
    const left = new Promise<number>((resolve) => {
      onLifeCycle(connector, (e) => e.type === "disconnected" && resolve(Date.now()));
    });
    const stoppedAt = Date.now();
    await monitor.stop();
    await sleep(500);
    assert.ok(connector.connected, "still in the mesh within the grace period");
    const after = (await left) - stoppedAt;
    assert.ok(after >= 1000 && after < 5000, `left ${after} ms after its monitor stopped`);
    assert.equal(connector.connected, false);
  });
});
