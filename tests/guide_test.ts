// The service-mesh guide, walked with real processes: a presence monitor, lambda-example and
// rest-example on a real broker.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import type { ChildProcess } from "node:child_process";
import process from "node:process";
import { fileURLToPath } from "node:url";
import { BROKERS, eventually, startMonitor, topicsFor } from "./_presence.ts";
import type { MonitorProcess } from "./_presence.ts";

interface App {
  proc: ChildProcess;
  logs: string[];
  port: number;
  origin: string;
  exited: Promise<void>;
}

const file = (p: string) => fileURLToPath(new URL(`../${p}`, import.meta.url));
let monitor: MonitorProcess;
let mesh: string[];
let lambda: App, rest: App;

function startExample(path: string): Promise<App> {
  const proc = spawn(process.execPath, [
    "run",
    "-A",
    file(path),
    ...mesh,
    "-Dserver.port=0",
    "-Dserver.host=127.0.0.1",
  ], { stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, NO_COLOR: "1" } });
  const logs: string[] = [];
  const exited = new Promise<void>((r) => proc.on("exit", () => r()));
  return new Promise((resolve, reject) => {
    let port = 0;
    const timer = setTimeout(
      () => reject(new Error(`${path} did not join:\n${logs.join("\n")}`)),
      30_000,
    );
    const onData = (d: Uint8Array) => {
      for (const line of new TextDecoder().decode(d).split("\n")) {
        if (!line.trim()) continue;
        logs.push(line);
        const p = /HTTP server running on port (\d+)/.exec(line);
        if (p) port = Number(p[1]);
        const ready = /Connected (\w+), ws:/.exec(line);
        if (ready) (proc as unknown as { origin: string }).origin = ready[1];
        if (/partition \d+ ready/.test(line) && port) {
          clearTimeout(timer);
          resolve({
            proc,
            logs,
            port,
            origin: (proc as unknown as { origin: string }).origin,
            exited,
          });
        }
      }
    };
    proc.stdout!.on("data", onData);
    proc.stderr!.on("data", onData);
  });
}

before(async () => {
  const t = topicsFor("guide");
  monitor = await startMonitor(t.args);
  mesh = [
    ...t.args,
    `-Dpresence.url=ws://127.0.0.1:${monitor.port}/ws/presence`,
    `-Dbootstrap.servers=${BROKERS}`,
    "-Dcloud.connector=kafka",
    "-Dmandatory.health.dependencies=cloud.connector.health",
  ];
  [lambda, rest] = await Promise.all([
    startExample("examples/lambda_example/main.ts"),
    startExample("examples/rest_example/main.ts"),
  ]);
});

after(async () => {
  for (const app of [lambda, rest]) app?.proc.kill("SIGKILL");
  await monitor?.stop("SIGKILL");
});

const get = async (port: number, path: string) => {
  const res = await fetch(`http://127.0.0.1:${port}${path}`);
  return { status: res.status, body: await res.json() };
};

describe("the service-mesh guide", () => {
  it("GET /api/pojo/mesh/1 returns the guide's PoJo from lambda-example", async () => {
    await eventually(
      async () => (await get(rest.port, "/api/pojo/mesh/1")).status === 200,
      15_000,
      "the PoJo",
    );
    const { status, body } = await get(rest.port, "/api/pojo/mesh/1");
    assert.equal(status, 200);
    assert.deepEqual(Object.keys(body), [
      "id",
      "name",
      "address",
      "date",
      "instance",
      "seq",
      "origin",
    ]);
    assert.equal(body.id, 1);
    assert.equal(body.name, "Simple PoJo class");
    assert.equal(body.address, "100 World Blvd, Planet Earth");
    assert.ok(!Number.isNaN(Date.parse(body.date)));
    assert.ok(body.instance >= 1 && body.instance <= 10);
    assert.equal(body.origin, lambda.origin);
    const bad = await get(rest.port, "/api/pojo/mesh/abc");
    assert.equal(bad.status, 400);
    assert.match(bad.body.message, /Invalid id "abc"/);
  });

  it("the rest-example logs the discovery as the guide shows", () => {
    assert.ok(
      rest.logs.some((l) => l.includes(`Peer ${lambda.origin} joins (lambda-example 1.0.0)`)),
    );
    for (const route of ["hello.world", "hello.pojo"]) {
      assert.ok(
        rest.logs.some((l) =>
          l.includes(`${route} (lambda-example, APP.${lambda.origin}) registered`)
        ),
        route,
      );
    }
  });

  it("the monitor's /info lists both connections", async () => {
    const { body } = await get(monitor.port, "/info");
    assert.equal(body.personality, "RESOURCES");
    const names = body.more.connections.map((c: { name: string; origin: string }) =>
      `${c.name} ${c.origin}`
    );
    assert.deepEqual(names.sort(), [
      `lambda-example ${lambda.origin}`,
      `rest-example ${rest.origin}`,
    ]);
    assert.equal(body.more.total.connections, 2);
    assert.equal(body.more.total.virtual_topics, 2);
  });

  it("both /health are UP with the loopback message", async () => {
    for (const app of [lambda, rest]) {
      const { status, body } = await get(app.port, "/health");
      assert.equal(status, 200);
      assert.equal(body.status, "UP");
      assert.equal(body.dependency[0].route, "cloud.connector.health");
      assert.match(body.dependency[0].message, /^Loopback test took \d+ ms$/);
    }
    const { body } = await get(monitor.port, "/health");
    assert.match(
      body.dependency[0].message,
      /^Loopback test took \d+ ms; System contains 2 topics$/,
    );
  });

  it("rest-example's /info/routes shows the distributed routing table", async () => {
    const { body } = await get(rest.port, "/info/routes");
    assert.deepEqual(body.network.routes["hello.pojo"], [`lambda-example, app, ${lambda.origin}`]);
    assert.equal(body.routing.private["cloud.connector.health"], 2);
  });

  it("stopping lambda-example: rest-example logs the leave, then answers a clear error within 1 s", async () => {
    lambda.proc.kill("SIGINT");
    const t0 = Date.now();
    await eventually(
      () => rest.logs.some((l) => l.includes(`Peer ${lambda.origin} left (lambda-example 1.0.0)`)),
      5000,
      "the leave",
    );
    for (const route of ["hello.world", "hello.pojo"]) {
      assert.ok(rest.logs.some((l) => l.includes(`${route} ${lambda.origin} unregistered`)), route);
    }
    const { status, body } = await get(rest.port, "/api/pojo/mesh/1");
    const took = Date.now() - t0;
    assert.equal(status, 404);
    assert.deepEqual(body, {
      type: "error",
      status: 404,
      message: "hello.pojo is not available: no instance in the mesh serves it",
    });
    assert.ok(took < 1000, `clear error after ${took} ms`);
    await lambda.exited;
  });
});
