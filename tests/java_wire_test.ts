// Recorded Java wire traffic, replayed: what Java Mercury lambda-example 4.11.10 wrote to Kafka
// in a mesh with a minimesh app and monitor (tests/fixtures/java_wire/, recorded by hand on
// 2026-11-27 from the Java build; docs/java.md says how). The TypeScript side must read every
// record as the Java original meant it, and answer as a Java instance would.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { decode } from "@msgpack/msgpack";
import { EventEnvelope, Platform, PostOffice } from "../mod.ts";
import { connectToCloud } from "../connector/mod.ts";
import { PresenceMonitor } from "../presence/mod.ts";
import { eventOf, MemoryKafka } from "../internal.ts";
import { fromJavaInfo, javaInfo } from "../presence/java_monitor.ts";
import type { InRecord } from "../kafka/client.ts";
import { connect, eventually } from "./_presence.ts";
import { captureLogs, sleep, stubMesh, testPlatform } from "./_helpers.ts";

interface Recorded {
  what: string;
  headers: Record<string, string>;
  value: string;
}
const wire = JSON.parse(
  Deno.readTextFileSync(
    new URL("./fixtures/java_wire/lambda_example_4.11.10.json", import.meta.url),
  ),
) as {
  javaOrigin: string;
  javaTopic: string;
  registry: Recorded[];
  replies: Recorded[];
  requests: Recorded[];
};
const bytes = (r: Recorded) => Uint8Array.from(atob(r.value), (c) => c.charCodeAt(0));
const keys = (b: Uint8Array) => Object.keys(decode(b) as Record<string, unknown>).sort();

// A monitor over Kafka in memory, started.
async function startMonitor(kafka: MemoryKafka, ...args: string[]): Promise<PresenceMonitor> {
  const monitor = new PresenceMonitor(
    new Platform({
      dir: "/nonexistent",
      env: {},
      args: ["-Dmonitor.bootstrap.wait=100", "-Dserver.port=0", "-Dserver.host=127.0.0.1", ...args],
    }),
    { kafka: kafka.client() },
  );
  await monitor.start();
  return monitor;
}

// An application's platform in the mesh of `monitor`.
function appPlatform(monitor: PresenceMonitor, name: string, ...args: string[]): Platform {
  return new Platform({
    dir: "/nonexistent",
    env: {},
    args: [
      `-Dapplication.name=${name}`,
      "-Dcloud.connector=kafka",
      `-Dpresence.url=ws://127.0.0.1:${monitor.port}/ws/presence`,
      ...args,
    ],
  });
}

// What the group's partition (closed user group 1) carries from now on, as envelopes.
function groupRecords(kafka: MemoryKafka) {
  const written: EventEnvelope[] = [];
  const watcher = kafka.client().consumePartition("service.monitor", 1, (r: InRecord) => {
    if (r.headers._event_) written.push(EventEnvelope.fromBytes(r.value));
  });
  return { written, watcher };
}

describe("Java Mercury 4.11.10's registry messages, replayed", () => {
  it("give its routes, name and version, and get this instance's routes back", async () => {
    const kafka = new MemoryKafka();
    const monitor = await startMonitor(kafka);
    const platform = appPlatform(monitor, "ts-app");
    platform.register("ts.hello", () => "hi");
    const connector = connectToCloud(platform, { kafka: kafka.client() })!;
    const logs = await captureLogs();
    const { written, watcher } = groupRecords(kafka);
    try {
      await connector.joined;
      await watcher.ready;
      await kafka.client().send(wire.registry.map((r) => ({
        topic: "service.monitor",
        partition: 1,
        headers: r.headers,
        value: bytes(r),
      })));
      const java = wire.javaOrigin;
      await eventually(
        () => connector.table.origins("hello.pojo").includes(java),
        5000,
        "the Java app's routes in the table",
      );
      const peer = connector.table.peer(java)!;
      assert.deepEqual([peer.name, peer.version, peer.topic], [
        "lambda-example",
        "4.11.10",
        wire.javaTopic,
      ]);
      const network = connector.describe() as { routes: Record<string, string[]> };
      assert.deepEqual(network.routes["hello.world"], [`lambda-example, app, ${java}`]);
      // Its add said exchange=true: this instance answers with its own routes, as Java's would.
      await eventually(
        () => written.some((e) => e.headers.type === "add" && e.headers.origin === platform.origin),
        5000,
        "this instance's route exchange",
      );
      const answer = written.find((e) =>
        e.headers.type === "add" && e.headers.origin === platform.origin
      )!;
      assert.equal(answer.to, "system.service.registry@monitor-1");
      // The replay holds Java's join too: to a join, an instance sends its whole table asking for
      // the newcomer's (docs/wire.md, "The routing table"); the exchange's own answer is folded into it.
      assert.equal(answer.headers.exchange, "true");
      assert.deepEqual(answer.body, { "ts.hello": "ts-app, APP" });
      // Java's init token (headers only, no event) is not a record to complain about.
      assert.ok(!logs.lines.some((l) => /Skipping group record/.test(l)), logs.lines.join("\n"));
      assert.ok(logs.lines.some((l) => l.includes(`Peer ${java} joins (lambda-example`)));
    } finally {
      await logs.stop();
      await watcher.stop();
      await connector.stop();
      await monitor.stop();
    }
  });
});

describe("Java Mercury 4.11.10's join, replayed to an instance without public routes", () => {
  it("is answered with a keep-alive too, so that the Java peer records this instance at once", async () => {
    const kafka = new MemoryKafka();
    // Keep-alives far apart (idle timeout 600 s): the one looked for answers the join.
    const slow = "-Dwebsocket.idle.timeout=600";
    const monitor = await startMonitor(kafka, slow);
    const platform = appPlatform(monitor, "rest-like", slow);
    const connector = connectToCloud(platform, { kafka: kafka.client() })!;
    const { written, watcher } = groupRecords(kafka);
    const keepAlives = () =>
      written.filter((e) =>
        e.headers.type === "keep-alive" && e.headers.origin === platform.origin
      );
    try {
      await connector.joined;
      await watcher.ready;
      await sleep(500);
      const before = keepAlives().length;
      const join = wire.registry.find((r) => r.what === "Java's join")!;
      await kafka.client().send([{
        topic: "service.monitor",
        partition: 1,
        headers: join.headers,
        value: bytes(join),
      }]);
      await eventually(() => keepAlives().length > before, 2000, "a keep-alive answering the join");
      const k = keepAlives().at(-1)!.headers;
      assert.deepEqual([k.topic, k.name], [connector.topic, "rest-like"]);
    } finally {
      await watcher.stop();
      await connector.stop();
      await monitor.stop();
    }
  });
});

describe("Java Mercury 4.11.10's replies, replayed", () => {
  it("decode with their type, span, status and body, and encode back to the same map", () => {
    const [pojo, error, echo] = wire.replies.map((r) => EventEnvelope.fromBytes(bytes(r)));
    assert.equal(pojo.type, "org.platformlambda.models.SamplePoJo");
    assert.match(pojo.spanId ?? "", /^[0-9a-f]{16}$/);
    assert.deepEqual([pojo.status, (pojo.body as { id: number }).id], [200, 1]);
    assert.deepEqual([error.status, error.isError, error.error], [
      404,
      true,
      "Not found. Try id = 1",
    ]);
    const echoed = (echo.body as { body: unknown }).body;
    assert.deepEqual(echoed, { n: 1, s: "text", list: [1, "two", null] }, "a null in a list kept");
    for (const r of wire.replies) {
      const original = bytes(r);
      const again = EventEnvelope.fromBytes(original).toBytes();
      assert.deepEqual(decode(again), decode(original), r.what);
    }
  });

  it("a minimesh reply carries the same fields as Java's for the same traced request", async () => {
    const request = EventEnvelope.fromBytes(bytes(wire.requests[0]));
    const javaReply = bytes(wire.replies[0]);
    // The guide's lambda-example in TypeScript answers hello.pojo with the Java class as type.
    const p = testPlatform({ args: ["-Dapplication.name=lambda-example"] });
    const sent: EventEnvelope[] = [];
    p.attachMesh(stubMesh((e) => sent.push(e)));
    p.register("hello.pojo", (h) =>
      new EventEnvelope({
        type: "org.platformlambda.models.SamplePoJo",
        body: { id: Number(h.id), name: "Simple PoJo class" },
      }));
    // The recorded request, as it came off the Java side's partition (its replyTo a peer's inbox).
    p.deliverLocal(request);
    await new PostOffice({}, p).waitForProvider("hello.pojo", { timeout: 100 });
    await eventually(() => sent.length === 1, 2000, "the reply");
    const reply = sent[0];
    assert.equal(reply.to, request.replyTo);
    assert.equal(reply.correlationId, request.correlationId);
    assert.equal(reply.traceId, request.traceId);
    assert.match(reply.spanId ?? "", /^[0-9a-f]{16}$/);
    assert.deepEqual(keys(reply.toBytes()), keys(javaReply), "the same envelope fields as Java's");
  });
});

// The records two Java monitors wrote to partition 0 while they shared the mesh with a minimesh
// monitor, and failed over to it and back (presence_monitor_4.11.10.json says how).
const monitorWire = JSON.parse(
  Deno.readTextFileSync(
    new URL("./fixtures/java_wire/presence_monitor_4.11.10.json", import.meta.url),
  ),
) as {
  javaMonitors: string[];
  javaInfoAtEnd: { leases: Record<string, string> };
  records: Recorded[];
};

describe("Java Mercury 4.11.10's presence monitor messages, replayed", () => {
  it("give the lease table the Java monitor had, and get answers in the Java form", async () => {
    const kafka = new MemoryKafka();
    const monitor = await startMonitor(kafka, "-Dapp.topic.prefix=jx");
    const answers: EventEnvelope[] = [];
    const watcher = kafka.client().consumePartition("service.monitor", 0, (r: InRecord) => {
      const e = eventOf(r);
      if (e?.headers.minimesh) answers.push(e);
    });
    try {
      await watcher.ready;
      await kafka.client().send(
        monitorWire.records.map((r) => ({
          topic: "service.monitor",
          partition: 0,
          headers: r.headers,
          value: bytes(r),
        })),
      );
      const expected = Object.entries(monitorWire.javaInfoAtEnd.leases);
      await eventually(
        () => JSON.stringify(monitor.table.leases()) === JSON.stringify(expected),
        5000,
        `the leases of the Java monitor's /info (${JSON.stringify(monitor.table.leases())})`,
      );
      assert.deepEqual(monitor.javaMonitors().sort(), [...monitorWire.javaMonitors].sort());
      for (const [, origin] of expected) {
        assert.equal(monitor.table.connection(origin)?.monitor, monitorWire.javaMonitors[1]);
      }
      // Each Java monitor's init is answered with a monitor_alive, and a download with the
      // applications this monitor holds, in the form the Java monitors write them.
      const alive = answers.filter((e) => e.headers.type === "monitor_alive");
      assert.ok(alive.length >= 2, `${alive.length} monitor_alive`);
      const javaAlive = EventEnvelope.fromBytes(bytes(monitorWire.records[2]));
      assert.equal(javaAlive.headers.type, "monitor_alive");
      assert.equal(alive[0].to, javaAlive.to);
      assert.deepEqual(
        Object.keys(alive[0].headers).filter((k) => k !== "minimesh").sort(),
        Object.keys(javaAlive.headers).sort(),
      );
      assert.ok(Array.isArray(alive[0].body), "the body lists origins, as Java's does");
      const puts = answers.filter((e) => e.headers.multiples);
      assert.ok(puts.length >= 2, `${puts.length} answers to downloads`);
      const javaPuts = monitorWire.records.map((r) => EventEnvelope.fromBytes(bytes(r)))
        .find((e) => e.headers.multiples)!;
      assert.deepEqual(
        Object.keys(puts[0].headers).filter((k) => k !== "minimesh").sort(),
        Object.keys(javaPuts.headers).sort(),
      );
    } finally {
      await watcher.stop();
      await monitor.stop();
    }
  });

  it("write a record in the Java form: the keys and value types of a Java monitor's", () => {
    const javaPut = monitorWire.records.map((r) => EventEnvelope.fromBytes(bytes(r)))
      .find((e) =>
        e.headers.type === "put" && !e.headers.multiples && "topic" in (e.body as object)
      )!;
    const java = javaPut.body as Record<string, unknown>;
    const info = fromJavaInfo(javaPut.headers.origin, java, Date.now());
    assert.equal(info.session, java.id);
    assert.equal(info.monitor, java.monitor);
    const ours = javaInfo(info);
    // `elapsed` is the Java application's own header, which a minimesh monitor does not keep.
    const shape = (m: Record<string, unknown>) =>
      Object.entries(m).filter(([k]) => k !== "elapsed").map(([k, v]) => `${k}:${typeof v}`).sort();
    assert.deepEqual(shape(ours), shape(java));
    assert.equal(ours.created, java.created, "Java's local time, back as Java wrote it");
    assert.equal(ours.updated, java.updated);
  });
});

// The frames a Java app sent its presence monitor (app_frames_4.11.10.json says how).
const appFrames = JSON.parse(
  Deno.readTextFileSync(new URL("./fixtures/java_wire/app_frames_4.11.10.json", import.meta.url)),
) as { origin: string; frames: Recorded[] };

describe("Java Mercury 4.11.10's websocket frames to a monitor, replayed", () => {
  it("lease the Java app a partition and keep its session", async () => {
    const kafka = new MemoryKafka();
    const monitor = await startMonitor(kafka);
    const app = connect(monitor.port, { origin: appFrames.origin, info: false });
    try {
      await eventually(() => app.ws.readyState === WebSocket.OPEN, 5000, "the websocket open");
      const [info, ...keepAlives] = appFrames.frames;
      assert.equal(info.what, "binary info");
      app.ws.send(bytes(info));
      const topic = await app.ready;
      assert.equal(topic, "multiplex.0001-000");
      const c = monitor.table.connection(appFrames.origin)!;
      assert.deepEqual([c.name, c.version, c.type, c.group, c.topic], [
        "lambda-example",
        "4.11.10",
        "APP",
        1,
        topic,
      ]);
      for (const k of keepAlives) app.ws.send(bytes(k));
      await sleep(300);
      assert.equal(app.ws.readyState, WebSocket.OPEN, "its keep-alives are accepted");
      assert.equal(monitor.table.connection(appFrames.origin)?.topic, topic);
    } finally {
      await app.close();
      await monitor.stop();
    }
  });
});
