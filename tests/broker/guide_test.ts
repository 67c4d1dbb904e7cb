// The service-mesh guide, walked with real processes: a presence monitor, lambda-example and
// rest-example on a real broker.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { eventually, meshArgs, startMonitor, topicsFor } from "../_presence.ts";
import type { MonitorProcess } from "../_presence.ts";
import { spawnDeno, spawnProcess, stopAll } from "../_processes.ts";
import { readFileSync, rmSync, writeFileSync } from "node:fs";
import net from "node:net";
import process from "node:process";
import { VERSION } from "../../mod.ts";
import type { DenoProcess } from "../_processes.ts";

interface App extends DenoProcess {
  port: number;
  origin: string;
}

let monitor: MonitorProcess;
let mesh: string[];
let lambda: App, rest: App;

async function startExample(path: string): Promise<App> {
  const p = spawnDeno(path, [...mesh, "-Dserver.port=0", "-Dserver.host=127.0.0.1"]);
  const port = Number(/port (\d+)/.exec(await p.waitFor(/HTTP server running on port \d+/))![1]);
  const origin = /Connected (\w+), ws:/.exec(await p.waitFor(/Connected \w+, ws:/))![1];
  await p.waitFor(/partition \d+ ready/);
  return { ...p, port, origin };
}

before(async () => {
  const t = topicsFor("guide");
  monitor = await startMonitor(t.args);
  mesh = [
    ...meshArgs(monitor.port, t.args),
    "-Dmandatory.health.dependencies=cloud.connector.health",
  ];
  [lambda, rest] = await Promise.all([
    startExample("examples/lambda_example/main.ts"),
    startExample("examples/rest_example/main.ts"),
  ]);
});

after(async () => {
  await stopAll([lambda, rest, monitor]);
});

const get = async (port: number, path: string) => {
  const res = await fetch(`http://127.0.0.1:${port}${path}`);
  return { status: res.status, body: await res.json() };
};

describe("the examples without a mesh", () => {
  it("rest-example runs on its own and answers a clear 404 for the PoJo", async () => {
    const p = spawnDeno("examples/rest_example/main.ts", [
      "-Dserver.port=0",
      "-Dserver.host=127.0.0.1",
    ]);
    try {
      const port = Number(
        /port (\d+)/.exec(await p.waitFor(/HTTP server running on port \d+/))![1],
      );
      const { status, body } = await get(port, "/api/pojo/mesh/1");
      assert.equal(status, 404);
      assert.match(body.message, /no instance in the mesh serves it/);
      const health = await get(port, "/health");
      assert.equal(health.status, 200);
      assert.match(health.body.message, /Did you forget/);
      assert.ok(p.logs.some((l) => l.includes("cloud.connector=none")));
    } finally {
      await p.stop();
    }
  });
});

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

  it("Event over HTTP on rest-example reaches hello.world in lambda-example, across the mesh", async () => {
    const { EventEnvelope } = await import("../../mod.ts");
    const res = await fetch(`http://127.0.0.1:${rest.port}/api/event`, {
      method: "POST",
      body: new EventEnvelope({ to: "hello.world", headers: { a: "b" }, body: "over http" })
        .toBytes("standard") as BodyInit,
      headers: { "content-type": "application/octet-stream" },
    });
    assert.equal(res.status, 200);
    const bytes = new Uint8Array(await res.arrayBuffer());
    assert.equal(EventEnvelope.formatOf(bytes), "standard");
    const body = EventEnvelope.fromBytes(bytes).body as Record<string, unknown>;
    assert.equal(body.body, "over http");
    assert.equal(body.origin, lambda.origin);
  });

  it("hello.pojo's reply names the Java class the guide's Java REST app expects, with a span id", async () => {
    const { EventEnvelope } = await import("../../mod.ts");
    const res = await fetch(`http://127.0.0.1:${rest.port}/api/event`, {
      method: "POST",
      body: new EventEnvelope({ to: "hello.pojo", headers: { id: "7" } }).toBytes() as BodyInit,
      headers: { "content-type": "application/octet-stream", "x-trace-id": "t1" },
    });
    assert.equal(res.status, 200);
    const reply = EventEnvelope.fromBytes(new Uint8Array(await res.arrayBuffer()));
    assert.equal(reply.type, "org.platformlambda.models.SamplePoJo");
    assert.equal((reply.body as { id: number }).id, 7);
    assert.match(reply.spanId ?? "", /^[0-9a-f]{16}$/, "a traced reply carries a span id");
  });

  it("system.service.query answers as the Java original's (private: in-process only)", async () => {
    const { EventEnvelope } = await import("../../mod.ts");
    const res = await fetch(`http://127.0.0.1:${rest.port}/api/event`, {
      method: "POST",
      body: new EventEnvelope({ to: "system.service.query", headers: { type: "info" } })
        .toBytes() as BodyInit,
      headers: { "content-type": "application/octet-stream" },
    });
    assert.equal(res.status, 403, "a private route is not reachable over HTTP");
    await res.body?.cancel();
  });

  it("stopping lambda-example: rest-example logs the leave, then answers a clear error within 1 s", async () => {
    lambda.proc.kill("SIGINT");
    const t0 = Date.now();
    // The leave's lines are logged together but may reach this process in separate reads of
    // the pipe: each is waited for.
    const lines = [
      `Peer ${lambda.origin} left (lambda-example 1.0.0)`,
      ...["hello.world", "hello.pojo"].map((route) => `${route} ${lambda.origin} unregistered`),
    ];
    await eventually(
      () => lines.every((line) => rest.logs.some((l) => l.includes(line))),
      5000,
      "the leave and its routes",
    );
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

// Its log, for a failure's message.
const LOGGED = 'import { setupLogging } from "@minimesh/core";\nawait setupLogging("info");\n';

describe("docs/mesh.md's first example, run as written", () => {
  it("reaches hello.pojo on lambda-example right after joined, every time", async () => {
    const text = readFileSync(new URL("../../docs/mesh.md", import.meta.url), "utf8");
    const code = /```ts\n([\s\S]*?)```/.exec(text)![1];
    assert.match(code, /await connector\?\.joined;/);
    // In the repository, so that `@minimesh/core` resolves to this package; one line added to
    // show the reply.
    const file = new URL(`../../.mesh_example_${process.pid}.ts`, import.meta.url);
    // Its own lambda-example: a test above stops the first one.
    const pojo = await startExample("examples/lambda_example/main.ts");
    writeFileSync(
      file,
      `${LOGGED}${code}\nconsole.log("REPLY", JSON.stringify(reply.body));\nDeno.exit(0);\n`,
    );
    try {
      for (let i = 0; i < 3; i++) {
        const p = spawnProcess(
          process.execPath,
          ["run", "-A", file.pathname, ...mesh, "-Dcloud.connector=kafka"],
          "docs/mesh.md example",
        );
        const line = await p.waitFor(/^REPLY /, 20_000);
        const body = JSON.parse(line.slice(6));
        assert.deepEqual([body.id, body.name, body.origin], [
          1,
          "Simple PoJo class",
          pojo.origin,
        ]);
        await p.exited;
      }
    } finally {
      rmSync(file, { force: true });
      await stopAll([pojo]);
    }
  });
});

describe("the minimesh CLI against the guide's mesh", () => {
  const cli = async (...args: string[]) => {
    const p = spawnProcess(process.execPath, ["run", "-A", "cli/main.ts", ...args], "minimesh");
    await p.exited;
    return { code: p.proc.exitCode ?? -1, out: p.logs.join("\n") };
  };

  it("lists routes, calls one with a JSON body, says why a call failed, checks health", async () => {
    const lambda2 = await startExample("examples/lambda_example/main.ts");
    try {
      const routes = await cli("routes", ...mesh);
      assert.equal(routes.code, 0, routes.out);
      assert.match(
        routes.out,
        new RegExp(`hello\\.pojo +lambda-example 1\\.0\\.0 ${lambda2.origin}`),
      );
      const ok = await cli("call", `hello.world@${lambda2.origin}`, '{"n": 1}', ...mesh);
      assert.equal(ok.code, 0, ok.out);
      const reply = JSON.parse(ok.out.split("\n").find((l) => l.startsWith("{"))!);
      assert.deepEqual([reply.status, reply.body.body], [200, { n: 1 }]);
      const bad = await cli("call", "hello.pojo", ...mesh);
      assert.equal(bad.code, 1, bad.out);
      assert.match(bad.out, /"status":400/);
      const json = await cli("call", "hello.world", "{oops", ...mesh);
      assert.equal(json.code, 2, json.out);
      assert.match(json.out, /The body is not JSON/);
      const health = await cli("health", `http://127.0.0.1:${lambda2.port}`);
      assert.equal(health.code, 0, health.out);
      assert.match(health.out, /"status": "UP"/);
      const help = await cli("call", "--help");
      assert.match(help.out, /Usage: minimesh call <route> \[json\]/);
      assert.equal((await cli("--version")).out.trim(), VERSION);
      assert.equal((await cli("nonsense")).code, 2);
    } finally {
      await stopAll([lambda2]);
    }
  });

  it("says why it cannot join, and ends, when no monitor answers", async () => {
    const closed = net.createServer();
    await new Promise<void>((r) => closed.listen(0, "127.0.0.1", r));
    const port = (closed.address() as net.AddressInfo).port;
    await new Promise((r) => closed.close(r));
    const away = mesh.map((a) =>
      a.startsWith("-Dpresence.url=") ? `-Dpresence.url=ws://127.0.0.1:${port}/ws/presence` : a
    );
    const t0 = performance.now();
    const routes = await cli("routes", ...away);
    const s = (performance.now() - t0) / 1000;
    assert.equal(routes.code, 1, routes.out);
    assert.match(routes.out, /Could not join the mesh in 15 s: no presence monitor answered/);
    assert.ok(s >= 15 && s < 30, `ended after ${s.toFixed(1)} s`);
  });

  it("watches joins, leaves and the rates of the applications under load", async () => {
    const watch = spawnProcess(
      process.execPath,
      ["run", "-A", "cli/main.ts", "watch", "--every", "1", ...mesh],
      "minimesh watch",
    );
    try {
      await watch.waitFor(/watching: \d+ peer/);
      const lambda2 = await startExample("examples/lambda_example/main.ts");
      await watch.waitFor(new RegExp(`join +lambda-example ${lambda2.origin}`));
      // rest-example's /api/pojo/mesh/1 calls hello.pojo on a lambda-example: the callee's
      // report (every 5 s) carries the rate.
      const busy = new RegExp(
        `events/s \\([\\d.]+ errors/s\\); apps: .*lambda-example x\\d+ [\\d.]+/s.*; ` +
          `routes: .*hello\\.pojo [\\d.]+/s`,
      );
      const until = Date.now() + 20_000;
      while (!watch.logs.some((l) => busy.test(l)) && Date.now() < until) {
        await Promise.all(Array.from({ length: 10 }, () => get(rest.port, "/api/pojo/mesh/1")));
      }
      assert.ok(watch.logs.some((l) => busy.test(l)), watch.logs.slice(-5).join("\n"));
      await stopAll([lambda2]);
      await watch.waitFor(new RegExp(`leave +lambda-example ${lambda2.origin}`));
    } finally {
      await watch.stop();
    }
  });
});
