// The mesh without a broker beside a Java monitor: one lease table, the Java monitors' protocol
// on partition 0 as the Java original writes it (docs/wire.md, "The monitors' channel").
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { EventEnvelope } from "../mod.ts";
import { eventOf, eventRecord, MemoryKafka } from "../internal.ts";
import { eventually } from "./_presence.ts";
import { sleep } from "./_helpers.ts";
import { startApp, startMonitor } from "./_mesh_memory.ts";
import type { App } from "./_mesh_memory.ts";

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
});
