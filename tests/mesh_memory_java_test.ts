// The mesh without a broker beside a Java monitor: one lease table, the Java monitors' protocol
// on partition 0 as the Java original writes it (docs/wire.md, "The monitors' channel").
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { EventEnvelope } from "../mod.ts";
import { eventOf, eventRecord, MemoryKafka } from "../internal.ts";
import type { MemoryKafkaClient } from "../internal.ts";
import { JavaTopics } from "../presence/java_monitor.ts";
import { readyMessage } from "../protocol/presence.ts";
import { WebSocketServer } from "ws";
import type { AddressInfo } from "node:net";
import { eventually } from "./_presence.ts";
import { sleep } from "./_helpers.ts";
import { sees, startApp, startMonitor } from "./_mesh_memory.ts";
import type { App } from "./_mesh_memory.ts";

const service = "presence.service@monitor-0";
const controller = "topic.controller@monitor-0";
const housekeeper = "presence.housekeeper@monitor-0";

// What a Java monitor (4.11) writes, as docs/wire.md describes it, through `client`.
function saying(client: MemoryKafkaClient) {
  return (to: string, headers: Record<string, string>, body?: unknown) =>
    client.send([
      eventRecord("service.monitor", 0, "monitor-0", new EventEnvelope({ to, headers, body })),
    ]);
}

describe("the mesh over Kafka in memory: a Java monitor", () => {
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
    const javaSays = saying(client);
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

  it("a restarted monitor learns the Java leases before its first grant, old partitions too", async () => {
    // Issue 34: a Java monitor re-leased app A from -000 to -003 and still maps both to it for a
    // minute; its answer to `download` names the first in sorted order, -000. A TypeScript
    // monitor that starts then must give neither to another application, and must place A where
    // A reads.
    const kafka = new MemoryKafka();
    kafka.createTopic("service.monitor", 11);
    const client = kafka.client();
    const java = `20261205${"a".repeat(32)}`;
    const a = `20261205${"b".repeat(32)}`;
    const javaSays = saying(client);
    const recordOf = (topic: string) => ({
      created: "2026-12-05 10:50:13.123",
      updated: "2026-12-05 10:50:14",
      monitor: java,
      id: "ws.a1",
      seq: 3,
      name: "rest-example",
      version: "0.1.0",
      group: 1,
      type: "REST",
      topic,
    });
    // The Java monitor's past: alive, A leased -000, then (its monitor gone) re-leased -003.
    await javaSays(housekeeper, { type: "monitor_alive", origin: java }, [a]);
    await javaSays(controller, {
      type: "confirm_topic",
      monitor: java,
      topic: "multiplex.0001-000",
      origin: a,
    });
    await javaSays(controller, {
      type: "confirm_topic",
      monitor: java,
      topic: "multiplex.0001-003",
      origin: a,
    });
    await javaSays(service, { type: "put", origin: a }, recordOf("multiplex.0001-003"));
    // From now on it answers as Java 4.11 does: `init` with its list, `download` with the first
    // partition it maps to A (the old one).
    const seen: EventEnvelope[] = [];
    const answering = client.consumePartition("service.monitor", 0, (r) => {
      const e = eventOf(r);
      if (e === undefined) return;
      seen.push(e);
      if (e.headers.origin === java) return;
      if (e.to === housekeeper && e.headers.type === "init") {
        return javaSays(housekeeper, { type: "monitor_alive", origin: java }, [a]);
      }
      if (e.to === service && e.headers.type === "download") {
        return javaSays(service, { type: "put", origin: java, multiples: "true" }, {
          [a]: recordOf("multiplex.0001-000"),
        });
      }
    });
    await answering.ready;
    const monitor = await startMonitor(kafka);
    const apps: App[] = [];
    try {
      assert.deepEqual(monitor.javaMonitors(), [java], "the Java monitor known when ready");
      assert.equal(monitor.table.connection(a)?.topic, "multiplex.0001-003", "A where it reads");
      // A TypeScript application joins at once: under the lock, and on neither partition of A.
      apps.push(startApp(kafka, [monitor], "ts-app"));
      await apps[0].connector.joined;
      const topic = apps[0].connector.topic;
      assert.ok(
        !["multiplex.0001-000", "multiplex.0001-003"].includes(topic!),
        `given ${topic}, a partition the Java monitor holds for A`,
      );
      assert.equal(topic, "multiplex.0001-001");
      const mine = seen.filter((e) => e.headers.minimesh !== undefined);
      assert.ok(mine.some((e) => e.to === controller && e.headers.type === "rsvp"), "a bid");
      assert.deepEqual(
        [...new Set(mine.map((e) => e.to))].sort(),
        [housekeeper, service, controller].sort(),
        "nothing to a route a Java monitor lacks",
      );
      // Another answer naming the old partition moves nothing.
      await javaSays(service, { type: "put", origin: java, multiples: "true" }, {
        [a]: recordOf("multiplex.0001-000"),
      });
      await sleep(100);
      assert.equal(monitor.table.connection(a)?.topic, "multiplex.0001-003");
    } finally {
      await Promise.all(apps.map((x) => x.connector.stop()));
      await answering.stop();
      await monitor.stop();
    }
  });
});

describe("the mesh over Kafka in memory: moved by a Java monitor", () => {
  it("an application given another partition keeps its peers and requests in flight", async () => {
    // A Java monitor gives each application it takes over a new partition. A stand-in for it
    // (it leases from -010 on) is each application's second monitor.
    const kafka = new MemoryKafka();
    const monitor = await startMonitor(kafka);
    const javaLike = new WebSocketServer({ host: "127.0.0.1", port: 0 });
    let next = 10;
    javaLike.on("connection", (ws) =>
      ws.on("message", (data: Uint8Array) => {
        if (EventEnvelope.fromBytes(new Uint8Array(data)).to !== "info") return;
        const topic = `multiplex.0001-${String(next++).padStart(3, "0")}`;
        kafka.createTopic("multiplex.0001", 32);
        ws.send(readyMessage(topic, "4.11.10").toBytes());
      }));
    await new Promise((r) => javaLike.once("listening", r));
    const stand = `ws://127.0.0.1:${(javaLike.address() as AddressInfo).port}/ws/presence`;
    const args = [`-Dpresence.url=ws://127.0.0.1:${monitor.port}/ws/presence,${stand}`];
    const a = startApp(kafka, [], "app-a", args);
    const b = startApp(kafka, [], "app-b", args);
    a.platform.register("ping.pong", (_h, body) => body);
    const left: string[] = [];
    for (const app of [a, b]) {
      (async () => {
        for await (const e of app.connector.lifeCycle()) {
          if (e.type === "disconnected" || e.type === "leave") left.push(`${e.type} ${e.origin}`);
        }
      })();
    }
    try {
      await sees(b, a, "ping.pong");
      const before = [a.connector.topic, b.connector.topic];
      // Requests all along; halfway, the TypeScript monitor goes and both move.
      let failed = 0, ok = 0;
      const load = (async () => {
        for (let i = 0; i < 150; i++) {
          const r = await b.po.request({ to: "ping.pong", body: i }, { timeout: 5000 })
            .catch((e) => ({ body: e }));
          if (r.body === i) ok++;
          else failed++;
          await sleep(20);
        }
      })();
      await sleep(1000);
      await monitor.stop();
      await load;
      assert.equal(failed, 0, `${failed} of 150 failed`);
      assert.equal(ok, 150);
      const after = [a.connector.topic, b.connector.topic];
      for (let i = 0; i < 2; i++) {
        assert.notEqual(after[i], before[i], "given another partition");
        assert.match(after[i]!, /-01\d$/);
      }
      assert.deepEqual(left, [], "nobody left the mesh");
      assert.ok(b.connector.knows(a.platform.origin) && a.connector.knows(b.platform.origin));
      assert.equal(
        b.connector.table.peer(a.platform.origin)?.topic,
        after[0],
        "B sends to A's new one",
      );
    } finally {
      await Promise.all([a.connector.stop(), b.connector.stop()]);
      await monitor.stop();
      javaLike.close();
    }
  });
});

describe("JavaTopics: the partitions Java monitors hold", () => {
  const live = () => true;
  it("holds a partition for a minute after the last record, for a live other origin", () => {
    const t = new JavaTopics();
    t.map("mx.0001-000", "a", 1_000, true);
    t.map("mx.0001-003", "a", 2_000, true);
    assert.ok(t.holds("mx.0001-000", "b", 60_999, live));
    assert.ok(!t.holds("mx.0001-000", "b", 61_000, live), "expired a minute after");
    assert.ok(!t.holds("mx.0001-000", "a", 2_000, live), "not against its own origin");
    assert.ok(!t.holds("mx.0001-000", "b", 2_000, () => false), "not for a gone origin");
    assert.equal(t.named("a", 2_500), "mx.0001-003", "the latest lease");
    // A download answer holds too, but does not say where the origin reads.
    t.map("mx.0001-000", "a", 3_000, false);
    assert.equal(t.named("a", 3_000), "mx.0001-003");
    assert.ok(t.holds("mx.0001-000", "b", 62_000, live), "refreshed by the answer");
    // The latest mapping of a partition wins; an older record read later does not undo it.
    t.map("mx.0001-003", "c", 4_000, true);
    t.map("mx.0001-003", "a", 3_500, true);
    assert.ok(t.holds("mx.0001-003", "a", 4_000, live));
    assert.ok(!t.holds("mx.0001-003", "c", 4_000, live));
    t.expire(70_000);
    assert.ok(!t.holds("mx.0001-003", "a", 4_000, live), "forgotten once expired");
    assert.equal(t.named("a", 4_000), undefined);
  });
});
