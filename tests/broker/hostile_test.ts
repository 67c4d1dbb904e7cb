// The mesh under attack (docs/security.md): each row of the hardening issue's table as a
// regression test against real processes (a presence monitor, mesh applications with HTTP, this
// process as one more mesh member, a real broker). After every attack the processes still run
// and still serve genuine clients, and none logged an uncaught error.
import { after, before, describe, it } from "node:test";
import fc from "fast-check";
import assert from "node:assert/strict";
import net from "node:net";
import { EventEnvelope, PostOffice } from "../../mod.ts";
import type { Platform } from "../../mod.ts";
import { eventRecord, newOriginId, splitVirtualTopic } from "../../internal.ts";
import type { KafkaConnector } from "../../connector/mod.ts";
import {
  connect,
  eventually,
  meshArgs,
  meshMember,
  startMonitor,
  topicsFor,
} from "../_presence.ts";
import type { MonitorProcess } from "../_presence.ts";
import { testKafka } from "../_kafka.ts";
import { spawnDeno, stopAll } from "../_processes.ts";
import { alive, postEvent, startApp as startMeshApp } from "../_apps.ts";
import type { App } from "../_apps.ts";
import { chunkedPost, sendFirstBlocks } from "../_attacks.ts";
import { devBroker, killKafka, startKafka, stopKafka } from "../../scripts/kafka_dev.ts";
import type { DenoProcess } from "../_processes.ts";

const t = topicsFor("hostile");
let monitor: MonitorProcess;
let common: string[];
let tester: Platform;
let connector: KafkaConnector;
let app: App;
const processes: DenoProcess[] = [];

const startApp = (
  name: string,
  options: { extra?: string[]; mesh?: string[]; wrap?: string } = {},
) => startMeshApp(name, options.mesh ?? common, processes, options);

/**
 * A broker on a port of its own (to kill and restart), a monitor on it, and two applications,
 * `caller` and `callee`, that can reach each other.
 */
async function brokerOfTheirOwn(port: number, name: string) {
  const b = devBroker(undefined, port);
  await startKafka(b);
  try {
    const own = topicsFor(name);
    const m = await startMonitor([...own.args, `-Dbootstrap.servers=${b.brokers}`]);
    processes.push(m);
    const mesh = [
      ...meshArgs(m.port, own.args).filter((a) => !a.startsWith("-Dbootstrap")),
      `-Dbootstrap.servers=${b.brokers}`,
    ];
    const [caller, callee] = await Promise.all([
      startApp("caller", { mesh }),
      startApp("callee", { mesh }),
    ]);
    await eventually(
      async () =>
        (await postEvent(caller.port, new EventEnvelope({ to: "callee.whoami" }))).status === 200,
      10_000,
      "callee reachable",
    );
    return { b, caller, callee };
  } catch (e) {
    await stopKafka(b);
    throw e;
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

before(async () => {
  monitor = await startMonitor([...t.args, "-Dpresence.handshake.timeout=2"]);
  processes.push(monitor);
  common = meshArgs(monitor.port, t.args);
  ({ platform: tester, connector } = await meshMember("tester", common, (p) => {
    p.register("tester.hello", (_h, body) => `hello ${body}`);
  }));
  app = await startApp("target", { extra: ["-Devent.api.max.bytes=1000000"] });
  await eventually(() => connector.reaches("demo.echo"), 10_000, "demo.echo in the table");
});

after(async () => {
  await connector?.stop();
  await stopAll(processes); // fails if any of them logged an uncaught error
});

describe("hostile clients: privacy", () => {
  it("Event over HTTP reaches public routes only (row 1)", async () => {
    const cases: [string, number][] = [
      [`cloud.connector.health@${tester.origin}`, 404], // a private route in another instance
      [`demo.echo@${app.origin}`, 404], // route@origin, even a public one: never from outside
      [`tester.hello@${tester.origin}`, 404],
      ["cloud.connector.health", 403], // private here
      ["demo.secret", 403],
      ["temporary.inbox", 404],
      ["system.service.registry", 404],
      ["no.such.route", 404],
    ];
    for (const [to, status] of cases) {
      const { status: got, reply } = await postEvent(
        app.port,
        new EventEnvelope({ to, headers: { type: "health" } }),
      );
      assert.equal(got, status, `${to}: ${JSON.stringify((reply as EventEnvelope).body)}`);
    }
    // Public routes still work, here and in the mesh.
    const here = await postEvent(app.port, new EventEnvelope({ to: "demo.echo", body: "hi" }));
    assert.deepEqual([here.status, (here.reply as EventEnvelope).body], [200, "hi"]);
    const there = await postEvent(app.port, new EventEnvelope({ to: "tester.hello", body: "x" }));
    assert.deepEqual([there.status, (there.reply as EventEnvelope).body], [200, "hello x"]);
  });

  it("an event from the mesh to a private route is refused with 404 and counted", async () => {
    const po = new PostOffice({}, tester);
    const r = await po.request({ to: `demo.secret@${app.origin}` }, {
      timeout: 5000,
      timeoutException: false,
    });
    assert.equal(r.status, 404);
    assert.match(String(r.body), /Route demo.secret not found/);
    const h = await po.request(
      { to: `cloud.connector.health@${app.origin}`, headers: { type: "health" } },
      {
        timeout: 5000,
        timeoutException: false,
      },
    );
    assert.equal(h.status, 404, "not even the health check");
    await app.waitFor(/Refused an event from the mesh to the private route demo.secret/);
  });
});

describe("hostile clients: forged replies (row 2)", () => {
  it("neither HTTP nor Kafka can complete another instance's pending request", async () => {
    const po = new PostOffice({}, tester);
    const pending = po.request({ to: "demo.slow", headers: { ms: "2500" } }, 10_000);
    await sleep(200);
    // Over HTTP: a sweep of guessed ids to the tester's inbox, relayed by the app.
    const guesses = Array.from({ length: 400 }, (_, i) => String(i + 1));
    const statuses = new Set<number>();
    for (let i = 0; i < guesses.length; i += 50) {
      const batch = guesses.slice(i, i + 50).map((cid) =>
        postEvent(
          app.port,
          new EventEnvelope({
            to: `temporary.inbox@${tester.origin}`,
            correlationId: cid,
            body: "forged",
          }),
          { "x-async": "true" },
        )
      );
      for (const r of await Promise.all(batch)) statuses.add(r.status);
    }
    assert.deepEqual([...statuses], [404]);
    // Over Kafka, straight onto the tester's partition: bare ids and guessed tokens.
    const before = connector.stats.unmatchedReplies;
    const link = testKafka("attacker");
    try {
      const [topic, partition] = splitVirtualTopic(connector.topic!);
      const forged = [
        ...guesses,
        ...guesses.map((g) => crypto.randomUUID().replaceAll("-", "") + g),
      ]
        .map((cid) =>
          eventRecord(
            topic,
            partition,
            tester.origin,
            new EventEnvelope({ to: tester.inboxAddress, correlationId: cid, body: "forged" }),
          )
        );
      await link.send(forged);
    } finally {
      await link.close();
    }
    await eventually(
      () => connector.stats.unmatchedReplies - before >= 800,
      10_000,
      "800 forged replies dropped",
    );
    const reply = await pending;
    assert.equal(reply.body, "slow", "the genuine reply arrives");
  });
});

describe("hostile clients: the presence monitor", () => {
  it("refuses a malformed path without crashing (row 3)", async () => {
    for (const path of ["/ws/presence/%E0%A4%A", "/ws/presence/%", "/ws/presence/%00"]) {
      const c = connect(monitor.port, { path, info: false });
      const closed = await c.closed;
      assert.equal(closed.code, 1008, path);
    }
    assert.equal((await monitor.get("/livenessprobe")).status, 200);
  });

  it("refuses an oversized frame from its header (row 6)", async () => {
    const clients = Array.from({ length: 5 }, () => connect(monitor.port));
    await Promise.all(clients.map((c) => c.ready));
    const t0 = Date.now();
    for (const c of clients) c.ws.send(new Uint8Array(10_000_000));
    // The monitor sends 1009 as soon as it has read a frame header, stops reading and closes.
    // A client still busy writing its 10 MB may not read that close frame before the reset.
    const codes = await Promise.all(clients.map((c) => c.closed.then((x) => x.code)));
    assert.ok(codes.every((code) => [1009, 1006, 0].includes(code)), `codes ${codes}`);
    assert.ok(Date.now() - t0 < 5000, "closed at once");
    await monitor.waitFor(/Bad client: websocket: Max payload size exceeded/);
    // A client that reads sees the 1009.
    const reader = connect(monitor.port);
    await reader.ready;
    reader.ws.send(new Uint8Array(100_000));
    assert.equal((await reader.closed).code, 1009);
    assert.equal((await monitor.get("/livenessprobe")).status, 200);
  });

  it("validates info exactly and refuses a second one (row 11)", async () => {
    const cases: [Record<string, string>, number, RegExp][] = [
      [{ group: " 1 " }, 1003, /Invalid group " 1 "/],
      [{ group: "1e0" }, 1003, /Invalid group "1e0"/],
      [{ group: "0x1" }, 1003, /Invalid group "0x1"/],
      [{ group: "01" }, 1003, /Invalid group "01"/],
      [{ type: "ROOT" }, 1003, /Invalid type "ROOT"/],
    ];
    for (const [headers, code, reason] of cases) {
      const c = connect(monitor.port, { info: false });
      c.ws.onopen = () => c.sendEnvelope(info(headers));
      const closed = await c.closed;
      assert.equal(closed.code, code, JSON.stringify(headers));
      assert.match(closed.reason, reason);
    }
    const twice = connect(monitor.port);
    await twice.ready;
    twice.sendEnvelope(info({ group: "2" }));
    assert.deepEqual(await twice.closed, { code: 1008, reason: "info already received" });
  });

  it("coalesces and limits keep-alives (row 9)", async () => {
    const link = testKafka("counter");
    const origin = newOriginId();
    let puts = 0;
    const consumer = link.consumePartition(t.monitorTopic, 0, (r) => {
      const e = EventEnvelope.fromBytes(r.value);
      if (e.headers.type === "put" && e.headers.origin === origin) puts++;
    });
    try {
      await consumer.ready;
      const c = connect(monitor.port, { origin });
      await c.ready;
      const ka = new EventEnvelope({ to: "keep-alive", headers: { seq: "2" } }).toBytes();
      for (let i = 0; i < 50_000 && c.ws.readyState === WebSocket.OPEN; i++) c.ws.send(ka);
      const closed = await c.closed;
      assert.equal(closed.code, 1008);
      assert.match(closed.reason, /Too many frames/);
      const t0 = Date.now();
      assert.equal((await monitor.get("/info")).status, 200);
      assert.ok(Date.now() - t0 < 1000, "/info answers at once");
      await sleep(1000);
      // The info's record, and none for the keep-alives (coalesced, then the session closed).
      assert.equal(puts, 1, `${puts} put records`);
    } finally {
      await consumer.stop();
      await link.close();
    }
  });

  it("keeps idle connections from locking out applications (row 10)", async () => {
    const idle = Array.from({ length: 300 }, () => connect(monitor.port, { info: false }));
    await sleep(500);
    const genuine = connect(monitor.port);
    assert.match(await genuine.ready, new RegExp(`^${t.prefix}\\.`));
    const refused = await Promise.all(idle.slice(0, 200).map((c) => c.closed));
    assert.ok(refused.every((r) => r.code === 1013), "the oldest idle sessions were closed");
    await genuine.close();
    await Promise.all(idle.map((c) => c.close()));
  });
});

function info(overrides: Record<string, string>): EventEnvelope {
  return new EventEnvelope({
    to: "info",
    headers: {
      created: new Date().toISOString(),
      seq: "1",
      name: "hostile",
      version: "1.0.0",
      group: "1",
      type: "APP",
      ...overrides,
    },
  });
}

describe("hostile clients: HTTP servers", () => {
  it("bound half-open connections and stay up with few file descriptors (row 4)", async () => {
    const small = await startApp("small", {
      extra: ["-Dserver.max.connections=100", "-Dserver.header.timeout=2"],
      wrap: "ulimit -n 400",
    });
    let closedByServer = 0;
    const sockets = Array.from({ length: 1000 }, () => {
      const s = net.connect(small.port, "127.0.0.1");
      s.on("error", () => {});
      s.on("connect", () => s.write("GET /info HTTP/1.1\r\nHost: x\r\n"));
      s.on("close", () => closedByServer++);
      return s;
    });
    await eventually(() => closedByServer >= 900, 10_000, "connections over the limit closed");
    // Within the header timeout the held ones are closed too, and genuine clients are served.
    await eventually(() => closedByServer === 1000, 10_000, "half-open connections timed out");
    assert.ok(await alive(small.port));
    for (const s of sockets) s.destroy();
    assert.equal(small.proc.exitCode, null);
    await small.waitFor(/Connection refused: .*over server.max.connections(.per.address)? \(\d+\)/);
  });

  it("refuse an oversized chunked body while it streams (row 7)", async () => {
    // A raw socket, so that the test sees exactly how much it could send before the answer.
    // Once in about 15 suite runs the client saw the connection end without the answer (status
    // 0, after 13 ms): a reset reached it while it was still writing, and a reset discards what
    // it had not read yet. The limit held (the body stopped early); the answer is looked for in a
    // second attempt, and both must stop early.
    const attempts = [await chunkedPost(app.port)];
    if (attempts[0].status === 0) attempts.push(await chunkedPost(app.port));
    assert.equal(attempts.at(-1)!.status, 413);
    for (const { sent } of attempts) {
      assert.ok(sent < 20 * 1024 * 1024, `refused after ${sent} bytes, not 100 MB`);
    }
    assert.ok(await alive(app.port));
  });

  it("tell clients that the mesh is unavailable, never its address (row 12)", async () => {
    const { b, caller, callee } = await brokerOfTheirOwn(19_193, "nobroker");
    try {
      await stopKafka(b);
      const { status, reply } = await postEvent(
        caller.port,
        new EventEnvelope({ to: "callee.whoami" }),
        { "x-ttl": "20000" },
      );
      const text = JSON.stringify(reply instanceof EventEnvelope ? reply.body : reply);
      assert.equal(status, 503, text);
      assert.match(text, /Mesh unavailable/);
      assert.doesNotMatch(text, /127\.0\.0\.1|ECONNREFUSED|19193|kafka/i);
      assert.ok(await alive(callee.port));
      assert.equal(caller.proc.exitCode, null);
    } finally {
      await stopKafka(b);
    }
  });

  it("fail fast while Kafka is away, and recover by themselves when it is back", async () => {
    const { b, caller, callee } = await brokerOfTheirOwn(19_194, "fastfail");
    try {
      const remote = () =>
        postEvent(caller.port, new EventEnvelope({ to: "callee.whoami" }), { "x-ttl": "5000" });
      const health = async () => {
        const res = await fetch(`http://127.0.0.1:${caller.port}/health`);
        await res.body?.cancel();
        return res.status;
      };
      assert.equal(await health(), 200);

      await killKafka(b);
      const killed = performance.now();
      await eventually(async () => (await health()) === 400, 5000, "/health DOWN");
      const downAfter = Math.round(performance.now() - killed);
      const times: number[] = [];
      for (let i = 0; i < 5; i++) {
        const t0 = performance.now();
        const { status, reply } = await remote();
        times.push(Math.round(performance.now() - t0));
        assert.equal(status, 503, JSON.stringify(reply));
      }
      // Local routes keep working.
      const local = await postEvent(caller.port, new EventEnvelope({ to: "caller.whoami" }));
      assert.equal(local.status, 200);
      assert.ok(await alive(callee.port));

      await startKafka(b, { keepData: true });
      const restarted = performance.now();
      await eventually(async () => (await remote()).status === 200, 60_000, "requests again");
      const backAfter = Math.round(performance.now() - restarted);
      await eventually(async () => (await health()) === 200, 10_000, "/health UP again");
      console.log(
        `Kafka away: /health DOWN after ${downAfter} ms; remote requests answered 503 in ` +
          `${times.join(", ")} ms; requests served again ${backAfter} ms after the restart`,
      );
      assert.ok(downAfter < 2000, `/health DOWN after ${downAfter} ms`);
      assert.ok(Math.max(...times) < 100, `503 in ${times.join(", ")} ms`);
    } finally {
      await stopKafka(b);
    }
  });
});

describe("hostile clients: Kafka producers", () => {
  it("cap incomplete block sets (row 8)", async () => {
    const capped = await startApp("capped", {
      extra: ["-Dblock.max.pending.sets=20", "-Dblock.max.pending.bytes=8000000"],
    });
    await sendFirstBlocks(capped.topic, capped.origin, 50, 900_000);
    await capped.waitFor(/Block set set-\d+ dropped with 1 of 100 blocks: over the pending caps/);
    // It still carries a genuine large event.
    const big = new Uint8Array(3 * 1024 * 1024).fill(7);
    const r = await new PostOffice({}, tester).request(
      { to: `demo.echo@${capped.origin}`, body: big },
      30_000,
    );
    assert.equal((r.body as Uint8Array).length, big.length);
  });

  it("an application whose Kafka is unreachable keeps running (row 5)", async () => {
    const lost = spawnDeno("tests/fixtures/mesh_app.ts", [
      "-Dapplication.name=lost",
      "-Dserver.port=0",
      ...common.filter((a) => !a.startsWith("-Dbootstrap")),
      "-Dbootstrap.servers=127.0.0.1:9",
    ]);
    processes.push(lost);
    const port = Number(/^HTTP (\d+)/.exec(await lost.waitFor(/^HTTP \d+/))![1]);
    // It says why, and waits for Kafka before it asks a monitor for a lease.
    await lost.waitFor(/No broker answers at 127\.0\.0\.1:9 .*trying again/, 60_000);
    await sleep(500);
    assert.equal(lost.proc.exitCode, null, "still running");
    assert.ok(await alive(port));
  });
});

describe("hostile clients: fuzzing across processes", () => {
  const headers = fc.dictionary(
    fc.constantFrom("name", "version", "group", "type", "seq", "topic", "x"),
    fc.oneof(fc.string({ maxLength: 12 }), fc.constantFrom("1", "APP", "0", "99")),
  );
  const frame = fc.oneof(
    fc.uint8Array({ maxLength: 300 }),
    fc.string({ maxLength: 100 }),
    fc.record({ to: fc.constantFrom("info", "keep-alive", "ready", "x.y"), headers }).map((e) =>
      new EventEnvelope(e).toBytes()
    ),
  );

  it("presence frames: each session closes with a documented code or stays, the monitor serves on", async () => {
    const documented = new Set([1003, 1008, 1009, 1013]);
    const cases = fc.sample(fc.array(frame, { minLength: 1, maxLength: 3 }), 150);
    for (let i = 0; i < cases.length; i += 50) {
      const batch = cases.slice(i, i + 50).map((frames) => {
        const c = connect(monitor.port, { info: false });
        c.ws.onopen = () => frames.forEach((f) => c.ws.send(f));
        return c;
      });
      await sleep(700);
      for (const c of batch) {
        if (c.ws.readyState === WebSocket.OPEN) continue;
        const { code, reason } = await c.closed;
        assert.ok(documented.has(code), `close ${code} ${reason}`);
      }
      await Promise.all(batch.map((c) => c.close()));
    }
    assert.equal((await monitor.get("/livenessprobe")).status, 200);
  });

  it("Kafka records: an application skips what it cannot use and serves on", async () => {
    const value = fc.oneof(
      fc.uint8Array({ maxLength: 300 }),
      fc.record({
        to: fc.constantFrom("demo.echo", "demo.secret", "temporary.inbox", "x.y", undefined),
        correlationId: fc.string({ maxLength: 40 }),
        replyTo: fc.constantFrom(undefined, tester.inboxAddress, "nowhere.at.all"),
        headers: fc.dictionary(fc.constantFrom("_id_", "_blk_", "_max_", "a"), fc.string()),
        body: fc.oneof(fc.uint8Array({ maxLength: 100 }), fc.string()),
      }).map((e) => new EventEnvelope(e).toBytes()),
    );
    const [topic, partition] = splitVirtualTopic(app.topic);
    const link = testKafka("fuzzer");
    try {
      await link.send(
        fc.sample(value, 300).map((v) => eventRecord(topic, partition, app.origin, v)),
      );
    } finally {
      await link.close();
    }
    await app.waitFor(/Skipping record \d+/);
    const r = await new PostOffice({}, tester).request(
      { to: `demo.echo@${app.origin}`, body: 2 },
      5000,
    );
    assert.equal(r.body, 2);
  });
});

describe("hostile clients: the genuine ones", () => {
  it("are still served by every process", async () => {
    const r = await new PostOffice({}, tester).request(
      { to: `demo.echo@${app.origin}`, body: 1 },
      5000,
    );
    assert.equal(r.body, 1);
    assert.equal((await monitor.get("/health")).status, 200);
    assert.ok(await alive(app.port));
    const c = connect(monitor.port, { origin: newOriginId() });
    assert.ok(await c.ready);
    await c.close();
  });
});
