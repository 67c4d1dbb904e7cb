// The presence monitor as a real process, with a real broker and scripted websocket clients.
import { after, describe, it } from "node:test";
import assert from "node:assert/strict";
import { EventEnvelope } from "../../mod.ts";
import { eventOf, newOriginId } from "../../internal.ts";
import { connect, eventually, startMonitor, topicsFor } from "../_presence.ts";
import { testKafka } from "../_kafka.ts";
import type { Client, MonitorProcess } from "../_presence.ts";

interface Info {
  more: {
    total: { topics: number; virtual_topics: number; connections: number };
    topics: string[];
    virtual_topics: string[];
    connections: { origin: string; topic: string | null; monitor: string; group: number }[];
    monitors: string[];
  };
}

async function info(m: MonitorProcess): Promise<Info["more"]> {
  const res = await m.get("/info");
  assert.equal(res.status, 200);
  return (res.body as Info).more;
}

const monitors: MonitorProcess[] = [];
const clients: Client[] = [];
after(async () => {
  for (const c of clients) c.ws.readyState <= 1 && c.ws.close();
  await Promise.all(monitors.map((m) => m.stop("SIGKILL")));
});

async function monitor(args: string[]): Promise<MonitorProcess> {
  const m = await startMonitor(args);
  monitors.push(m);
  return m;
}

function client(port: number, options: Parameters<typeof connect>[1] = {}): Client {
  const c = connect(port, options);
  clients.push(c);
  return c;
}

describe("presence monitor: one process", () => {
  it("leases unique virtual topics, shows exactly the connected clients, releases on close", async () => {
    const t = topicsFor("leases");
    const m = await monitor(t.args);
    const cs = Array.from({ length: 5 }, () => client(m.port));
    const topics = await Promise.all(cs.map((c) => c.ready));
    assert.equal(new Set(topics).size, 5, `unique: ${topics}`);
    assert.deepEqual(
      [...topics].sort(),
      [0, 1, 2, 3, 4].map((p) => `${t.prefix}.0001-00${p}`),
    );
    let more = await info(m);
    assert.deepEqual(
      more.connections.map((c) => c.origin).sort(),
      cs.map((c) => c.origin).sort(),
    );
    assert.equal(more.total.virtual_topics, 5);
    assert.ok(more.topics.includes(`${t.prefix}.0001 (32)`), more.topics.join());
    assert.ok(more.topics.includes(`${t.monitorTopic} (11)`), more.topics.join());
    assert.deepEqual(more.monitors.map((x) => x.split(" - ")[0]), [m.origin]);

    await cs[1].close();
    await cs[3].close();
    await eventually(async () => (await info(m)).total.connections === 3, 5000, "3 connections");
    more = await info(m);
    assert.deepEqual(
      more.connections.map((c) => c.origin).sort(),
      [cs[0], cs[2], cs[4]].map((c) => c.origin).sort(),
    );
    await m.waitFor(new RegExp(`${topics[1]} released by ${cs[1].origin}, test-app, 1.0.0`));
    // The lowest free topic is handed out again.
    const again = client(m.port);
    assert.equal(await again.ready, [topics[1], topics[3]].sort()[0]);
  });

  it("frees a lease when keep-alives stop", async () => {
    const t = topicsFor("idle");
    const m = await monitor([...t.args, "-Dwebsocket.idle.timeout=2"]);
    const c = client(m.port);
    const topic = await c.ready;
    const closed = await c.closed;
    assert.deepEqual(closed, { code: 1003, reason: "Idle for 2 seconds" });
    await m.waitFor(new RegExp(`${topic} released by ${c.origin}`));
    await eventually(async () => (await info(m)).total.virtual_topics === 0, 5000, "no lease");
  });

  it("keeps a lease while keep-alives come", async () => {
    const t = topicsFor("alive");
    const m = await monitor([...t.args, "-Dwebsocket.idle.timeout=2"]);
    const c = client(m.port);
    await c.ready;
    for (let i = 0; i < 6; i++) {
      await new Promise((r) => setTimeout(r, 500));
      c.sendEnvelope(new EventEnvelope({ to: "keep-alive", headers: { seq: String(i) } }));
      c.ws.send(JSON.stringify({ type: "keep-alive", seq: i, time: new Date().toISOString() }));
    }
    assert.equal(c.ws.readyState, WebSocket.OPEN);
    assert.equal((await info(m)).total.virtual_topics, 1);
  });

  it("announces leaves, and only leaves, on the group's partition of service.monitor", async () => {
    const t = topicsFor("announce");
    const m = await monitor(t.args);
    const link = testKafka("test-announce");
    const seen: EventEnvelope[] = [];
    const wrong: number[] = [];
    try {
      const group3 = link.consumePartition(t.monitorTopic, 3, (r) => {
        const e = eventOf(r);
        if (e) seen.push(e);
        if (r.headers._rx_ !== "monitor-3") wrong.push(r.partition);
      });
      await group3.ready;
      const other = client(m.port, { group: "2" });
      await other.ready;
      const c = client(m.port, { group: "3", name: "lambda-example", version: "4.1.8" });
      await c.ready;
      await c.close();
      await eventually(() => seen.some((e) => e.headers.type === "leave"), 5000, "a leave");
      await new Promise((r) => setTimeout(r, 300)); // nothing else follows
      // The app announces its own join (this raw client does not); the monitor, as the Java
      // one, writes no join to the group.
      assert.deepEqual(
        seen.map((e) => [e.to, e.headers.type, e.headers.origin]),
        [["system.service.registry@monitor-3", "leave", c.origin]],
      );
      assert.deepEqual(wrong, []);
    } finally {
      await link.close();
    }
  });

  it("answers /health with a Kafka loopback, and /livenessprobe", async () => {
    const t = topicsFor("health");
    const m = await monitor(t.args);
    const health = await m.get("/health");
    assert.equal(health.status, 200);
    const body = health.body as { status: string; dependency: { message: string }[] };
    assert.equal(body.status, "UP");
    assert.match(
      body.dependency[0].message,
      /^Loopback test took \d+ ms; System contains \d+ topics$/,
    );
    const live = await m.get("/livenessprobe");
    assert.deepEqual([live.status, live.body], [200, "OK"]);
    assert.equal((await m.get("/nope")).status, 404);
  });
});

describe("presence monitor: bad input", () => {
  it("closes each bad client with a code and a reason, logs it, and keeps serving", async () => {
    const t = topicsFor("bad");
    const m = await monitor([...t.args, "-Dpresence.handshake.timeout=1"]);
    const cases: [string, Client, () => void, number, RegExp][] = [];
    const add = (name: string, c: Client, act: () => void, code: number, reason: RegExp) =>
      cases.push([name, c, act, code, reason]);

    add(
      "an invalid origin id",
      client(m.port, { path: "/ws/presence/not-an-origin" }),
      () => {},
      1008,
      /Invalid origin id "not-an-origin"/,
    );
    const raw = client(m.port, { info: false });
    add(
      "malformed bytes",
      raw,
      () => raw.ws.send(new Uint8Array([0x81, 0xa1])),
      1003,
      /Invalid event envelope/,
    );
    const text = client(m.port, { info: false });
    add("text garbage", text, () => text.ws.send("hello?"), 1003, /Invalid text frame/);
    add("no info", client(m.port, { info: false }), () => {}, 1013, /handshake not completed/);
    add(
      "a bad group",
      client(m.port, { group: "99" }),
      () => {},
      1003,
      /Invalid group "99": expected 1 to 10/,
    );
    const unknown = client(m.port, { info: false });
    add(
      "an unknown message",
      unknown,
      () => unknown.sendEnvelope(new EventEnvelope({ to: "hello" })),
      1003,
      /Unknown message "hello"/,
    );
    const early = client(m.port, { info: false });
    add(
      "keep-alive before info",
      early,
      () => early.sendEnvelope(new EventEnvelope({ to: "keep-alive" })),
      1003,
      /keep-alive before info/,
    );
    const earlyStats = client(m.port, { info: false });
    add(
      "stats before info",
      earlyStats,
      () => earlyStats.sendEnvelope(new EventEnvelope({ to: "stats", body: {} })),
      1003,
      /stats before info/,
    );
    const badStats = client(m.port);
    add(
      "invalid stats",
      badStats,
      () =>
        badStats.sendEnvelope(
          new EventEnvelope({
            to: "stats",
            body: { events: -1, errors: 0, started: new Date().toISOString() },
          }),
        ),
      1003,
      /Invalid stats: stats.events must be a non-negative integer/,
    );
    const big = client(m.port, { info: false });
    // Refused by the frame header (the server never reads the payload); ws sends no reason.
    add("an oversized frame", big, () => big.ws.send(new Uint8Array(70_000)), 1009, /^$/);

    await new Promise((r) => setTimeout(r, 300)); // let the sockets open
    for (const [, , act] of cases) act();
    for (const [name, c, , code, reason] of cases) {
      const closed = await c.closed;
      assert.equal(closed.code, code, `${name}: ${closed.code} ${closed.reason}`);
      assert.match(closed.reason, reason, `${name}: ${closed.code} ${closed.reason}`);
    }

    // A second connection claiming a connected origin is refused; the first keeps its lease.
    const first = client(m.port);
    await first.ready;
    const second = client(m.port, { origin: first.origin });
    assert.deepEqual(await second.closed, {
      code: 1013,
      reason: `Origin ${first.origin} is already connected`,
    });
    assert.equal(first.ws.readyState, WebSocket.OPEN);

    // A flood of connections that come and go.
    const flood = Array.from({ length: 150 }, () => client(m.port, { info: false }));
    await Promise.all(
      flood.map((c) => new Promise((r) => setTimeout(r, 100)).then(() => c.close())),
    );
    const normal = client(m.port);
    assert.match(await normal.ready, new RegExp(`^${t.prefix}\\.0001-\\d{3}$`));
    const health = await m.get("/health");
    assert.equal(health.status, 200, JSON.stringify(health.body));
    assert.equal(m.proc.exitCode, null, "the monitor is still running");
    for (
      const re of [
        /Refused websocket not-an-origin: Invalid origin id/,
        /Closing \w+ \(1003\): Invalid text frame/,
      ]
    ) {
      assert.ok(m.logs.some((l) => re.test(l)), `log line ${re}`);
    }
  });
});

describe("presence monitor: two processes", () => {
  it("share one table, never lease a topic twice, and take over a killed monitor's clients", async () => {
    const t = topicsFor("pair");
    const args = [...t.args, "-Dmonitor.alive.interval=1"];
    const m1 = await monitor(args);
    const m2 = await monitor(args);
    await m2.waitFor(new RegExp(`Registered monitor \\(peer\\) ${m1.origin}`));
    // Clients spread over both monitors, connecting at the same moment.
    const cs = Array.from({ length: 10 }, (_, i) => client(i % 2 ? m2.port : m1.port));
    const topics = await Promise.all(cs.map((c) => c.ready));
    assert.equal(new Set(topics).size, 10, `unique leases: ${[...topics].sort()}`);
    for (const m of [m1, m2]) {
      await eventually(
        async () => (await info(m)).total.connections === 10,
        5000,
        "10 connections",
      );
      const more = await info(m);
      assert.equal(new Set(more.connections.map((c) => c.topic)).size, 10);
      assert.equal(more.monitors.length, 2);
    }

    // Kill monitor 1; its clients see their sockets close and reconnect to monitor 2.
    await m1.stop("SIGKILL");
    const orphans = cs.filter((_, i) => i % 2 === 0);
    await Promise.all(orphans.map((c) => c.closed));
    const back = orphans.map((c) => client(m2.port, { origin: c.origin }));
    const newTopics = await Promise.all(back.map((c) => c.ready));
    // Each is given back the lease it had: it goes on reading the same partition.
    assert.deepEqual(newTopics, topics.filter((_, i) => i % 2 === 0), "the same leases");
    const current = [...topics.filter((_, i) => i % 2 === 1), ...newTopics];
    assert.equal(new Set(current).size, 10, `no duplicates after failover: ${[...current].sort()}`);
    await eventually(
      async () => {
        const more = await info(m2);
        return more.total.connections === 10 &&
          more.connections.every((c) => c.monitor === m2.origin) &&
          more.monitors.length === 1;
      },
      10_000,
      "monitor 2 owns all 10 connections and has expired monitor 1",
    );
    const more = await info(m2);
    assert.deepEqual(new Set(more.connections.map((c) => c.topic)), new Set(current));
  });

  it("a stopping monitor hands its sessions over: same leases elsewhere, the rest released after the grace", async () => {
    const t = topicsFor("handover");
    const args = [...t.args, "-Dmonitor.alive.interval=1", "-Dpresence.handover.grace=2"];
    const m1 = await monitor(args);
    const m2 = await monitor(args);
    await m2.waitFor(new RegExp(`Registered monitor \\(peer\\) ${m1.origin}`));
    const cs = Array.from({ length: 4 }, () => client(m1.port));
    const topics = await Promise.all(cs.map((c) => c.ready));
    await m1.stop("SIGTERM");
    for (const c of cs) {
      assert.deepEqual(await c.closed, { code: 1001, reason: "monitor shutting down" });
    }
    // Three come back through the other monitor; the fourth does not.
    const back = cs.slice(0, 3).map((c) => client(m2.port, { origin: c.origin }));
    assert.deepEqual(await Promise.all(back.map((c) => c.ready)), topics.slice(0, 3));
    const link = testKafka("handover-test");
    const leaves: string[] = [];
    try {
      await link.ensureTopic(t.monitorTopic, 11);
      const reader = link.consumePartition(t.monitorTopic, 1, (r) => {
        const e = eventOf(r);
        if (e?.headers.type === "leave") leaves.push(e.headers.origin);
      });
      await reader.ready;
      await m2.waitFor(new RegExp(`${topics[3]} released by ${cs[3].origin}`));
      await eventually(() => leaves.length > 0, 5000, "the leave of the one that did not return");
      await new Promise((r) => setTimeout(r, 500));
      assert.deepEqual(leaves, [cs[3].origin], "only the instance that did not come back left");
    } finally {
      await link.close();
    }
    const more = await info(m2);
    assert.deepEqual(more.connections.map((c) => c.topic).sort(), topics.slice(0, 3).sort());
  });

  it("drops a client that answers no pings within presence.hung.timeout", async () => {
    const t = topicsFor("hung");
    const m = await monitor([...t.args, "-Dpresence.hung.timeout=2"]);
    const frozen = client(m.port, { answerPings: false });
    const alive = client(m.port);
    const topic = await frozen.ready;
    await alive.ready;
    const readyAt = Date.now();
    await m.waitFor(new RegExp(`${topic} released by ${frozen.origin}`));
    const took = Date.now() - readyAt;
    assert.ok(took < 4000, `dropped ${took} ms after it stopped answering`);
    await m.waitFor(/no answer to pings/);
    assert.equal(alive.ws.readyState, WebSocket.OPEN, "a client that answers stays");
    assert.equal((await info(m)).total.connections, 1);
  });

  it("a monitor started later loads the table from the running one", async () => {
    const t = topicsFor("late");
    const m1 = await monitor(t.args);
    const cs = Array.from({ length: 3 }, () => client(m1.port));
    await Promise.all(cs.map((c) => c.ready));
    const m2 = await monitor(t.args);
    await m2.waitFor(/Loaded 3 connection\(s\) from a peer monitor/);
    const c = client(m2.port);
    const topic = await c.ready;
    assert.equal(topic, `${t.prefix}.0001-003`, "the late monitor knows 000-002 are taken");
    assert.equal((await info(m2)).total.connections, 4);
  });
});

describe("presence monitor: origin ids", () => {
  it("uses yyyyMMdd + 32 hex", () => assert.match(newOriginId(), /^\d{8}[0-9a-f]{32}$/));
});

describe("presence monitor: Kafka goes away", () => {
  it("reports DOWN with 400 on /health when its broker is unreachable", async () => {
    // A broker of its own, so stopping it does not disturb the other tests.
    const { devBroker, startKafka, stopKafka } = await import("../../scripts/kafka_dev.ts");
    const b = devBroker(undefined, 19_192);
    await startKafka(b);
    let m: MonitorProcess | undefined;
    try {
      const t = topicsFor("down");
      m = await monitor([...t.args, `-Dbootstrap.servers=${b.brokers}`]);
      assert.equal((await m.get("/health")).status, 200);
      await stopKafka(b);
      const health = await m.get("/health");
      assert.equal(health.status, 400);
      const body = health.body as {
        status: string;
        dependency: { status_code: number; message: string }[];
      };
      assert.equal(body.status, "DOWN");
      assert.equal(body.dependency[0].status_code, 503);
      assert.equal((await m.get("/livenessprobe")).status, 400);
      assert.equal(m.proc.exitCode, null, "the monitor keeps running");
    } finally {
      await stopKafka(b);
      await m?.stop("SIGKILL");
    }
  });
});
