// The Kafka connector across real processes: a real broker, a real presence monitor, mesh
// applications as child processes, and this test process as one more mesh member.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { EventEnvelope, PostOffice } from "../../mod.ts";
import type { Platform } from "../../mod.ts";
import { eventRecord } from "../../internal.ts";
import type { KafkaConnector, LifeCycleEvent } from "../../connector/mod.ts";
import {
  BROKERS,
  eventually,
  meshArgs,
  meshMember,
  startMonitor,
  topicsFor,
} from "../_presence.ts";
import type { MonitorProcess } from "../_presence.ts";
import { testKafka } from "../_kafka.ts";
import { spawnDeno, stopAll } from "../_processes.ts";
import type { DenoProcess } from "../_processes.ts";

interface AppProcess extends DenoProcess {
  origin: string;
  topic: string;
}

let monitor: MonitorProcess;
let common: string[];
const apps: AppProcess[] = [];
let tester: Platform;
let connector: KafkaConnector;
const events: (LifeCycleEvent & { at: number })[] = [];

async function startApp(name: string): Promise<AppProcess> {
  const p = spawnDeno("tests/fixtures/mesh_app.ts", [`-Dapplication.name=${name}`, ...common]);
  const [, origin, topic] = /^JOINED (\w+) (\S+)/.exec(await p.waitFor(/^JOINED /))!;
  const app = { ...p, origin, topic };
  apps.push(app);
  return app;
}

const po = () => new PostOffice({}, tester);

before(async () => {
  const t = topicsFor("mesh");
  monitor = await startMonitor(t.args);
  common = meshArgs(monitor.port, t.args);
  ({ platform: tester, connector } = await meshMember("tester", common, (p) => {
    p.register("tester.hello", (_h, body) => `hello ${body}`);
    p.registerPrivate("tester.secret", () => "secret");
    p.register("demo.bcast", () => void testerBroadcasts++);
  }, (e) => events.push({ ...e, at: Date.now() })));
});

let testerBroadcasts = 0;

after(async () => {
  await connector?.stop();
  await stopAll([...apps, monitor]);
});

describe("Kafka connector", () => {
  let a: AppProcess;

  it("two applications discover each other's public routes, not private ones", async () => {
    a = await startApp("app-a");
    await eventually(() => connector.reaches("demo.echo"), 10_000, "demo.echo in the table");
    assert.equal(connector.reaches("demo.secret"), false, "private routes are not advertised");
    assert.deepEqual(connector.table.origins("demo.echo"), [a.origin]);
    assert.equal(connector.table.peer(a.origin)?.topic, a.topic);
    assert.ok(events.some((e) => e.type === "join" && e.origin === a.origin), "join event");
    // Requests both ways: tester -> app-a, and app-a -> tester (through demo.call).
    const echo = await po().request({ to: "demo.echo", body: { n: 1 } }, 5000);
    assert.deepEqual([echo.status, echo.body, echo.from], [200, { n: 1 }, "demo.echo"]);
    assert.ok(echo.roundTrip! > 0 && echo.execTime! >= 0, "round trip and exec time measured");
    const back = await po().request(
      { to: "demo.call", headers: { target: "tester.hello" }, body: "from a" },
      5000,
    );
    assert.deepEqual([back.status, back.body], [200, "hello from a"]);
    const secret = await po().request(
      { to: "demo.call", headers: { target: "tester.secret" }, body: "x" },
      5000,
    );
    assert.equal(secret.status, 404, `a private route is not reachable: ${secret.body}`);
    assert.match(String(secret.body), /Route tester.secret not found/);
    // The guide's log lines, on app-a.
    assert.ok(a.logs.some((l) => l.includes(`Peer ${tester.origin} joins (tester 1.0.0)`)));
    assert.ok(
      a.logs.some((l) => l.includes(`tester.hello (tester, APP.${tester.origin}) registered`)),
    );
  });

  it("fails at once for a route no instance serves, and for an unknown origin", async () => {
    const t0 = Date.now();
    await assert.rejects(po().request({ to: "nobody.serves.this" }, 5000), /not found/);
    await assert.rejects(
      po().request({ to: `demo.echo@20200101${"0".repeat(32)}` }, 5000),
      /not found/,
    );
    assert.ok(Date.now() - t0 < 500);
  });

  it("targets one instance with route@origin, and forks and joins across instances", async () => {
    const r = await po().request({ to: `demo.whoami@${a.origin}` }, 5000);
    assert.equal(r.body, a.origin);
    const replies = await po().request(
      [1, 2, 3].map((n) => ({ to: "demo.echo", body: n, correlationId: `c${n}` })),
      5000,
    );
    assert.deepEqual(replies.map((x) => [x.correlationId, x.body]), [["c1", 1], ["c2", 2], [
      "c3",
      3,
    ]]);
  });

  it("carries a 5 MB body both ways, in blocks", async () => {
    const big = new Uint8Array(5 * 1024 * 1024);
    for (let i = 0; i < big.length; i++) big[i] = (i * 31) % 251;
    const reply = await po().request({ to: "demo.echo", body: big }, 30_000);
    assert.equal(reply.status, 200);
    const body = reply.body as Uint8Array;
    assert.equal(body.length, big.length);
    assert.ok(body.every((v, i) => v === big[i]), "same bytes");
  });

  let b1: AppProcess, b2: AppProcess;

  it("shares requests evenly between two instances of one application", async () => {
    [b1, b2] = await Promise.all([startApp("app-b"), startApp("app-b")]);
    await eventually(
      () => connector.table.origins("app-b.whoami").length === 2,
      10_000,
      "both instances serve app-b.whoami",
    );
    const counts = new Map<string, number>();
    const batch = Array.from({ length: 1000 }, () => po().request({ to: "app-b.whoami" }, 10_000));
    for (const r of await Promise.all(batch)) {
      counts.set(r.body as string, (counts.get(r.body as string) ?? 0) + 1);
    }
    const shares = [b1.origin, b2.origin].map((o) => (counts.get(o) ?? 0) / 1000);
    for (const share of shares) assert.ok(share >= 0.4 && share <= 0.6, `shares ${shares}`);
    assert.equal(shares[0] + shares[1], 1);
  });

  it("spreads a fork-and-join to a slow route over every instance, each time", async () => {
    const instances = connector.origins("demo.slow.origin");
    assert.ok(instances.length >= 3, `instances ${instances}`);
    for (let round = 0; round < 2; round++) {
      const slow = instances.map(() => ({ to: "demo.slow.origin", headers: { ms: "300" } }));
      const replies = await po().request(slow, 10_000);
      assert.deepEqual(replies.map((r) => r.body).sort(), [...instances].sort(), `round ${round}`);
    }
  });

  it("broadcast reaches every instance exactly once, the sender included", async () => {
    await po().broadcast({ to: "demo.bcast" });
    await eventually(
      async () => {
        const counts = await Promise.all(
          [a, b1, b2].map((x) => po().request({ to: `demo.count@${x.origin}` }, 5000)),
        );
        return counts.every((c) => c.body === 1) && testerBroadcasts === 1;
      },
      10_000,
      "one broadcast each",
    );
    await new Promise((r) => setTimeout(r, 300));
    const counts = await Promise.all(
      [a, b1, b2].map((x) => po().request({ to: `demo.count@${x.origin}` }, 5000)),
    );
    assert.deepEqual([...counts.map((c) => c.body), testerBroadcasts], [1, 1, 1, 1]);
  });

  it("a graceful stop removes the instance's routes from its peers within 1 s", async () => {
    const t0 = Date.now();
    b1.proc.kill("SIGTERM");
    await eventually(() => !connector.knows(b1.origin), 1000, "b1 gone from the table");
    assert.ok(!connector.table.origins("demo.whoami").includes(b1.origin));
    const left = events.find((e) => e.type === "leave" && e.origin === b1.origin);
    assert.ok(left && left.at - t0 <= 1000, `leave after ${left && left.at - t0} ms`);
    await b1.exited;
  });

  it("a killed instance's in-flight requests fail fast, and peers drop it within 2 s", async () => {
    const pending = po().request(
      { to: `demo.slow@${b2.origin}`, headers: { ms: "20000" } },
      30_000,
    );
    await new Promise((r) => setTimeout(r, 300));
    const t0 = Date.now();
    b2.proc.kill("SIGKILL");
    const reply = await pending;
    const took = Date.now() - t0;
    assert.equal(reply.status, 503, `in-flight request: ${reply.status} ${reply.body}`);
    assert.match(String(reply.body), /left before replying/);
    assert.ok(took < 2000, `failed after ${took} ms`);
    assert.equal(connector.knows(b2.origin), false);
  });

  it("a restarted instance rejoins with a fresh lease and is callable", async () => {
    const b3 = await startApp("app-b");
    assert.notEqual(b3.origin, b2.origin);
    await eventually(() => connector.knows(b3.origin), 10_000, "b3 known");
    const r = await po().request({ to: `demo.whoami@${b3.origin}` }, 5000);
    assert.equal(r.body, b3.origin);
  });

  it("answers its health check with a loopback through its own partition", async () => {
    const h = await po().request(
      { to: "cloud.connector.health", headers: { type: "health" } },
      10_000,
    );
    assert.equal(h.status, 200);
    assert.match(String(h.body), /^Loopback test took \d+ ms$/);
    const info = await po().request(
      { to: "cloud.connector.health", headers: { type: "info" } },
      5000,
    );
    assert.deepEqual(info.body, {
      service: "kafka",
      href: BROKERS.split(",")[0],
      topics: "on-demand",
    });
  });

  it("skips bad records on its partition, counts them, and keeps working", async () => {
    const link = testKafka("test-bad");
    const [topic, p] = [
      connector.topic!.slice(0, connector.topic!.lastIndexOf("-")),
      Number(connector.topic!.slice(-3)),
    ];
    const before = { ...connector.stats };
    try {
      const block = (n: number, id: string) =>
        new EventEnvelope({
          headers: { _id_: id, _blk_: String(n), _max_: "3" },
          body: new Uint8Array([n]),
        });
      await link.send([
        {
          topic,
          partition: p,
          headers: { _event_: "1", _rx_: tester.origin },
          value: new Uint8Array([0xc1, 0x00]),
        },
        eventRecord(
          topic,
          p,
          "20200101" + "f".repeat(32),
          new EventEnvelope({ to: "tester.hello" }),
        ),
        eventRecord(topic, p, tester.origin, block(1, "set-1")),
        eventRecord(topic, p, tester.origin, block(1, "set-1")),
        eventRecord(topic, p, tester.origin, block(9, "set-2")),
        eventRecord(topic, p, tester.origin, new EventEnvelope({ to: "no.such.route" })),
      ]);
      await eventually(
        () =>
          connector.stats.undecodable > before.undecodable &&
          connector.stats.misdirected > before.misdirected &&
          connector.stats.badBlocks >= before.badBlocks + 2 &&
          connector.stats.unknownRoute > before.unknownRoute,
        5000,
        `bad records counted: ${JSON.stringify(connector.stats)}`,
      );
    } finally {
      await link.close();
    }
    const r = await po().request({ to: "demo.echo", body: "still fine" }, 5000);
    assert.equal(r.body, "still fine");
  });
});

describe("Kafka connector: joining", () => {
  it("joined means the routing table is filled: a remote route answers the first request after it", async () => {
    // Any instance serving demo.echo will do (those the tests above started, or a new one).
    if (!connector.reaches("demo.echo")) await startApp("app-first");
    // As docs/mesh.md tells users: join, await joined, call a route another process serves.
    for (let i = 0; i < 4; i++) {
      const { platform, connector: c } = await meshMember(`newcomer-${i}`, common);
      try {
        const reply = await new PostOffice({}, platform).request(
          { to: "demo.echo", body: i },
          5000,
        );
        assert.deepEqual([reply.status, reply.body], [200, i], `newcomer ${i}`);
      } finally {
        await c.stop();
      }
    }
  });
});
