// The mesh without a broker: presence monitors and connectors in this process over Kafka in
// memory (kafka/memory.ts), with real websockets on 127.0.0.1. What crosses a real broker is in
// tests/broker/; this file covers the logic above the link: leases, the routing table, requests
// and replies between instances, private routes, forged replies, large events, peers leaving,
// monitor failover, and Kafka going away.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { EventEnvelope, Platform, PostOffice } from "../mod.ts";
import { connectorSettings, connectToCloud } from "../connector/mod.ts";
import type { KafkaConnector, LifeCycleEvent } from "../connector/mod.ts";
import { monitorSettings, PresenceMonitor } from "../presence/mod.ts";
import { eventOf, eventRecord, MemoryKafka, splitVirtualTopic } from "../internal.ts";
import { connect, eventually } from "./_presence.ts";
import { freePort, onLifeCycle, sleep } from "./_helpers.ts";
import fc from "fast-check";

const quiet = ["-Dmonitor.bootstrap.wait=100", "-Dmonitor.alive.interval=1"];

async function startMonitor(kafka: MemoryKafka, args: string[] = []): Promise<PresenceMonitor> {
  const platform = new Platform({
    dir: "/nonexistent",
    env: {},
    args: ["-Dserver.port=0", "-Dserver.host=127.0.0.1", ...quiet, ...args],
  });
  const monitor = new PresenceMonitor(platform, { kafka: kafka.client() });
  await monitor.start();
  return monitor;
}

interface App extends AsyncDisposable {
  platform: Platform;
  connector: KafkaConnector;
  po: PostOffice;
}

function startApp(
  kafka: MemoryKafka,
  monitors: PresenceMonitor[],
  name: string,
  args: string[] = [],
): App {
  const urls = monitors.map((m) => `ws://127.0.0.1:${m.port}/ws/presence`).join(",");
  const platform = new Platform({
    dir: "/nonexistent",
    env: {},
    args: [
      `-Dapplication.name=${name}`,
      "-Dcloud.connector=kafka",
      `-Dpresence.url=${urls}`,
      ...args,
    ],
  });
  const connector = connectToCloud(platform, { kafka: kafka.client() })!;
  return {
    platform,
    connector,
    po: new PostOffice({}, platform),
    [Symbol.asyncDispose]: () => connector.stop(),
  };
}

// Both have joined and `b` has heard of `a`'s route.
async function sees(b: App, a: App, route: string): Promise<void> {
  await Promise.all([a.connector.joined, b.connector.joined]);
  await eventually(
    () => b.connector.table.origins(route).includes(a.platform.origin),
    5000,
    `${route} of ${a.platform.name} in ${b.platform.name}'s table`,
  );
}

// A monitor and two apps, `b` knowing `a`'s `ping.pong`; disposing of it stops all three.
async function pingPong(kafka: MemoryKafka) {
  const monitor = await startMonitor(kafka);
  const a = startApp(kafka, [monitor], "app-a");
  const b = startApp(kafka, [monitor], "app-b");
  a.platform.register("ping.pong", () => "pong");
  const stop = async () => {
    await Promise.all([a[Symbol.asyncDispose](), b[Symbol.asyncDispose]()]);
    await monitor.stop();
  };
  try {
    await sees(b, a, "ping.pong");
  } catch (e) {
    await stop();
    throw e;
  }
  return { monitor, a, b, [Symbol.asyncDispose]: stop };
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

  it("keeps one consumer per partition when monitors close the socket during joins", async () => {
    const kafka = new MemoryKafka();
    kafka.consumerReadyMs = 300; // joins take a while, as with a real broker
    const monitors = [
      await startMonitor(kafka),
      await startMonitor(kafka),
      await startMonitor(kafka),
    ];
    await eventually(() => monitors[2].monitors().size === 3, 5000, "the monitors to meet");
    await using a = startApp(kafka, monitors, "app-a");
    // The first monitor leases a partition; it goes away while the app is still joining.
    await eventually(() => monitors[0].table.leases().length === 1, 5000, "the first lease");
    const first = monitors[0].table.leases()[0][0];
    await monitors[0].stop();
    await a.connector.joined;
    const topic = a.connector.topic!;
    await sleep(700); // whatever the superseded join started has had time to settle
    const [t, p] = splitVirtualTopic(topic);
    assert.equal(kafka.readers(t, p), 1, `one consumer on ${topic}`);
    assert.equal(kafka.readers("service.monitor", 1), 1, "one consumer on the group's partition");
    if (first !== topic) assert.equal(kafka.readers(...splitVirtualTopic(first)), 0);
    // And again when the monitor it joined through goes too: it rejoins through the last one.
    const origin = a.platform.origin;
    const through = monitors[1].table.connection(origin)?.monitor;
    const [gone, last] = monitors[1].platform.origin === through
      ? [monitors[1], monitors[2]]
      : [monitors[2], monitors[1]];
    await using _last = last;
    await gone.stop();
    await eventually(
      () =>
        a.connector.connected && last.table.connection(origin)?.monitor === last.platform.origin,
      10_000,
      "app-a to rejoin through the last monitor",
    );
    await sleep(700);
    const [t2, p2] = splitVirtualTopic(a.connector.topic!);
    assert.equal(kafka.readers(t2, p2), 1);
    assert.equal(kafka.readers("service.monitor", 1), 1);
  });

  it("gives a starting monitor a table of 450 connections in parts, whole", async () => {
    const kafka = new MemoryKafka();
    const topics = "-Dmax.virtual.topics=500";
    await using first = await startMonitor(kafka, [
      topics,
      "-Dpresence.max.connections.per.address=1000",
      "-Dserver.max.connections.per.address=1000",
      "-Dpresence.max.pending=1000",
      "-Dpresence.max.pending.per.address=1000",
    ]);
    const clients = Array.from({ length: 450 }, () => connect(first.port));
    try {
      await Promise.all(clients.map((c) => c.ready));
      await using second = await startMonitor(kafka, [topics]);
      assert.equal(second.table.connections().length, 450);
      assert.deepEqual(second.table.leases(), first.table.leases());
    } finally {
      await Promise.all(clients.map((c) => c.close()));
    }
  });

  it("never leases one partition twice when apps join through two monitors at once", async () => {
    const kafka = new MemoryKafka();
    await using m1 = await startMonitor(kafka);
    await using m2 = await startMonitor(kafka);
    await eventually(() => m1.monitors().size === 2, 5000, "the monitors to meet");
    const apps = Array.from(
      { length: 8 },
      (_, i) => startApp(kafka, [i % 2 ? m2 : m1], `app-${i}`),
    );
    try {
      await Promise.all(apps.map((a) => a.connector.joined));
      const topics = apps.map((a) => a.connector.topic);
      assert.equal(new Set(topics).size, 8, topics.join(" "));
      await eventually(
        () => m1.table.leases().length === 8 && m2.table.leases().length === 8,
        5000,
        "both monitors to know all 8 leases",
      );
      assert.deepEqual(m1.table.leases(), m2.table.leases());
    } finally {
      await Promise.all(apps.map((a) => a.connector.stop()));
    }
  });

  it("shares one lease table with a Java monitor, speaking its protocol", async () => {
    const kafka = new MemoryKafka();
    const monitor = await startMonitor(kafka);
    const me = monitor.platform.origin;
    const client = kafka.client();
    // Everything written to partition 0 from now on, in order.
    const seen: EventEnvelope[] = [];
    const watch = client.consumePartition("service.monitor", 0, (r) => {
      const e = eventOf(r);
      if (e) seen.push(e);
    });
    await watch.ready;
    const java = `20261127${"a".repeat(32)}`;
    const javaApp = `20261127${"b".repeat(32)}`;
    const javaApp2 = `20261127${"c".repeat(32)}`;
    // What a Java monitor (4.11) writes, as docs/wire.md describes it.
    const javaSays = (to: string, headers: Record<string, string>, body?: unknown) =>
      client.send([
        eventRecord("service.monitor", 0, "monitor-0", new EventEnvelope({ to, headers, body })),
      ]);
    const service = "presence.service@monitor-0";
    const controller = "topic.controller@monitor-0";
    const rsvpRound = async (at: number, origin: string, topic: string) => {
      await javaSays(controller, {
        type: "rsvp",
        rsvp_time: new Date(at).toISOString(),
        monitor: java,
      });
      await javaSays(controller, { type: "rsvp_start", monitor: java });
      await javaSays(controller, { type: "confirm_topic", monitor: java, topic, origin });
      await javaSays(controller, { type: "rsvp_complete", monitor: java });
    };
    const record = (origin: string, seq: number) => ({
      created: "2026-11-27 20:50:13.123",
      updated: "2026-11-27 20:50:14",
      monitor: java,
      id: `ws.${origin.slice(8, 16)}`,
      seq,
      name: "lambda-example",
      version: "4.11.10",
      group: 1,
      type: "APP",
    });
    const ours = (type: string) =>
      seen.filter((e) => e.headers.minimesh === "1" && e.headers.type === type);
    const apps: App[] = [];
    try {
      // The Java monitor starts: init, then download (its PresenceHandler.markInitialized).
      await javaSays("presence.housekeeper@monitor-0", { type: "init", origin: java }, []);
      await javaSays(service, { type: "download", origin: java });
      await eventually(() => ours("monitor_alive").length > 0, 5000, "our monitor_alive");
      assert.equal(ours("monitor_alive")[0].headers.origin, me);
      assert.equal(ours("monitor_alive")[0].to, "presence.housekeeper@monitor-0");
      assert.deepEqual(monitor.javaMonitors(), [java]);
      assert.ok(monitor.monitors().has(java), "the Java monitor listed");
      assert.ok((await monitor.loopback()).startsWith("Loopback test took"), "/health UP");

      // A Java application joins through the Java monitor and is leased the first partition.
      await javaSays(service, { type: "put", origin: javaApp }, record(javaApp, 1));
      await rsvpRound(Date.now(), javaApp, "multiplex.0001-000");
      await eventually(
        () => monitor.table.connection(javaApp)?.topic === "multiplex.0001-000",
        5000,
        "the Java lease in the table",
      );
      assert.equal(monitor.table.connection(javaApp)?.monitor, java);

      // A TypeScript application joins through the TypeScript monitor: under the lock, alone,
      // after the grace period, with another partition.
      const t0 = performance.now();
      apps.push(startApp(kafka, [monitor], "ts-app"));
      await apps[0].connector.joined;
      const waited = performance.now() - t0;
      const topic = apps[0].connector.topic;
      assert.equal(topic, "multiplex.0001-001");
      assert.ok(waited >= 3000, `a lone bid waits the grace period (${waited} ms)`);
      const types = seen.filter((e) => e.headers.minimesh === "1" && e.to === controller)
        .map((e) => `${e.headers.type} ${e.headers.topic ?? ""}`.trim());
      assert.deepEqual(types, [
        "rsvp",
        "rsvp_start",
        "confirm_topic multiplex.0001-001",
        "rsvp_complete",
      ]);
      // Its own messages go where Java's HouseKeeper ignores them (a route Java lacks costs an
      // error line in its log per record).
      const claims = seen.filter((e) => e.headers.type === "claim");
      assert.ok(claims.length > 0);
      for (const c of claims) {
        assert.equal(c.to, "presence.housekeeper@monitor-0");
        assert.equal(c.headers.minimesh, "control");
      }
      const confirm = ours("confirm_topic")[0].headers;
      assert.equal(confirm.origin, apps[0].platform.origin);
      assert.equal(confirm.monitor, me);

      // The Java monitor bids first: the TypeScript monitor waits until the Java round is over.
      await javaSays(controller, {
        type: "rsvp",
        rsvp_time: new Date().toISOString(),
        monitor: java,
      });
      await sleep(50);
      apps.push(startApp(kafka, [monitor], "ts-app-2"));
      await eventually(() => ours("rsvp").length === 2, 5000, "the second bid");
      await sleep(4000);
      assert.equal(ours("rsvp_start").length, 1, "no round while the Java bid is first");
      await javaSays(service, { type: "put", origin: javaApp2 }, record(javaApp2, 1));
      await javaSays(controller, { type: "rsvp_start", monitor: java });
      await javaSays(controller, {
        type: "confirm_topic",
        monitor: java,
        topic: "multiplex.0001-002",
        origin: javaApp2,
      });
      await javaSays(controller, { type: "rsvp_complete", monitor: java });
      await apps[1].connector.joined;
      assert.equal(apps[1].connector.topic, "multiplex.0001-003", "the next free partition");
      assert.deepEqual(
        monitor.table.leases().map(([t]) => t),
        ["multiplex.0001-000", "multiplex.0001-001", "multiplex.0001-002", "multiplex.0001-003"],
      );

      // Asked to download, it answers with its own applications in the Java form.
      const answers = () => ours("put").filter((e) => e.headers.multiples);
      const before = answers().length;
      await javaSays(service, { type: "download", origin: java });
      await eventually(() => answers().length > before, 5000, "a put of all");
      const all = answers().at(-1)!.body as Record<
        string,
        Record<string, unknown>
      >;
      assert.deepEqual(Object.keys(all).sort(), apps.map((a) => a.platform.origin).sort());
      const mine = all[apps[0].platform.origin];
      assert.equal(mine.topic, "multiplex.0001-001");
      assert.equal(mine.monitor, me);
      assert.equal(mine.group, 1);
      assert.match(String(mine.created), /^\d{4}-\d\d-\d\d \d\d:\d\d/, "a Java local time");
      assert.equal(mine.verifier, undefined, "the identity's verifier stays with minimesh");

      // The Java monitor's application leaves: its record and lease go.
      await javaSays(service, { type: "del", origin: javaApp });
      await eventually(() => monitor.table.connection(javaApp) === undefined, 5000, "Java del");
      assert.ok(monitor.table.isFree("multiplex.0001-000"));

      // A TypeScript application leaves: the Java monitors hear it in their form too.
      const leaving = apps.pop()!;
      await leaving.connector.stop();
      await eventually(
        () => ours("del").some((e) => e.headers.origin === leaving.platform.origin),
        5000,
        "our del in the Java form",
      );
    } finally {
      await Promise.all(apps.map((a) => a.connector.stop()));
      await watch.stop();
      await monitor.stop();
    }
  });

  it("agrees with the monitor on the idle timeout: keep-alives come well within it", () => {
    const config = (args: string[]) => new Platform({ dir: "/nonexistent", env: {}, args }).config;
    for (const idle of ["1", "2", "20", "60", "600"]) {
      const args = [`-Dwebsocket.idle.timeout=${idle}`];
      const app = connectorSettings(config(args));
      const monitor = monitorSettings(config(args));
      assert.equal(app.idleTimeout, monitor.idleTimeout, "one bound for both sides");
      const platform = new Platform({ dir: "/nonexistent", env: {}, args });
      assert.deepEqual(monitorSettings(platform), monitorSettings(platform.config));
      assert.ok(app.keepAliveMs <= monitor.idleTimeout * 1000 / 2, `idle ${idle}`);
      assert.ok(app.keepAliveMs > 0);
    }
  });

  it("fails fast with 503 while Kafka is unreachable, and recovers", async () => {
    const kafka = new MemoryKafka();
    await using mesh = await pingPong(kafka);
    const { b } = mesh;
    kafka.available = false;
    const t0 = performance.now();
    await assert.rejects(
      b.po.request({ to: "ping.pong" }, { timeout: 5000 }),
      (e: Error & { status?: number }) => e.status === 503 && e.message === "Mesh unavailable",
    );
    assert.ok(performance.now() - t0 < 1000);
    kafka.available = true;
    const reply = await b.po.request({ to: "ping.pong" }, { timeout: 2000 });
    assert.equal(reply.body, "pong");
  });

  it("recovers when Kafka loses every topic: DOWN until the monitor re-creates them", async () => {
    const kafka = new MemoryKafka();
    await using mesh = await pingPong(kafka);
    const { monitor, a, b } = mesh;
    const before = kafka.topics();
    kafka.wipe();
    await assert.rejects(monitor.loopback(), /does not host|is missing/);
    const t0 = performance.now();
    await eventually(
      () =>
        b.po.request({ to: "ping.pong" }, { timeout: 500 }).then(
          (r) => r.body === "pong",
          () => false,
        ),
      10_000,
      "requests served again",
    );
    assert.ok(performance.now() - t0 < 5000, `${performance.now() - t0} ms`);
    assert.deepEqual(kafka.topics(), before, "the same topics with the same partitions");
    await eventually(() => monitor.loopback().then(() => true, () => false), 3000, "UP again");
    // The monitor said what it holds: both leases, in one record.
    const held = () =>
      kafka.written.some((r) =>
        r.topic === "service.monitor" && r.partition === 0 && typeof r.value !== "string" &&
        EventEnvelope.fromBytes(r.value).headers.type === "held"
      );
    await eventually(held, 3000, "a held message");
    assert.deepEqual(
      monitor.table.leases().map(([, o]) => o).sort(),
      [a.platform.origin, b.platform.origin].sort(),
    );
  });
});
