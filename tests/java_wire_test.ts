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
import { MemoryKafka } from "../internal.ts";
import type { InRecord } from "../kafka/client.ts";
import { eventually } from "./_presence.ts";
import { captureLogs, stubMesh, testPlatform } from "./_helpers.ts";

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

describe("Java Mercury 4.11.10's registry messages, replayed", () => {
  it("give its routes, name and version, and get this instance's routes back", async () => {
    const kafka = new MemoryKafka();
    const quiet = ["-Dmonitor.bootstrap.wait=100", "-Dserver.port=0", "-Dserver.host=127.0.0.1"];
    const monitor = new PresenceMonitor(
      new Platform({ dir: "/nonexistent", env: {}, args: quiet }),
      { kafka: kafka.client() },
    );
    await monitor.start();
    const platform = new Platform({
      dir: "/nonexistent",
      env: {},
      args: [
        "-Dapplication.name=ts-app",
        "-Dcloud.connector=kafka",
        `-Dpresence.url=ws://127.0.0.1:${monitor.port}/ws/presence`,
      ],
    });
    platform.register("ts.hello", () => "hi");
    const connector = connectToCloud(platform, { kafka: kafka.client() })!;
    const logs = await captureLogs();
    const written: EventEnvelope[] = [];
    const watcher = kafka.client().consumePartition("service.monitor", 1, (r: InRecord) => {
      if (r.headers._event_) written.push(EventEnvelope.fromBytes(r.value));
    });
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
      // the newcomer's (reference section 6.2); the exchange's own answer is folded into it.
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
