// Actuator endpoints and Event over HTTP, served in-process on a free port.
import process from "node:process";
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import { encode } from "@msgpack/msgpack";
import { AppError, EventEnvelope, PostOffice, RequestTimeoutError } from "../mod.ts";
import { actuatorHandler, startHttp } from "../actuator/mod.ts";
import type { RunningServer } from "../actuator/mod.ts";
import { testPlatform } from "./_helpers.ts";

const platform = testPlatform({
  properties: {
    "application.name": "actuator-test",
    "info.app.version": "2.0.0",
    "info.app.description": "tests",
    "mandatory.health.dependencies": "dep.good",
    "optional.health.dependencies": "dep.optional",
    "show.env.variables": "MINIMESH_TEST_VAR",
    "show.application.properties": "application.name,info.app.version",
    "event.api.max.bytes": 100_000,
  },
});
let goodHealthy = true;
platform.registerPrivate("dep.good", (h) => {
  if (h.type === "info") return { service: "test", href: "here" };
  if (!goodHealthy) throw new AppError(503, "down for the test");
  return "fine";
});
platform.registerPrivate("dep.optional", (h) => {
  if (h.type === "info") return { service: "optional" };
  throw new AppError(500, "optional is broken");
});
platform.register("api.echo", (headers, body) => ({ headers, body }));
platform.register("api.slow", () => new Promise((r) => setTimeout(() => r("late"), 2000)));
platform.registerPrivate("api.private", () => "secret");

let server: RunningServer;
let base: string;
before(async () => {
  server = await startHttp(platform, { port: 0, hostname: "127.0.0.1" });
  base = `http://127.0.0.1:${server.port}`;
});
after(() => server.close());

const get = async (path: string) => {
  const res = await fetch(base + path);
  const text = await res.text();
  return { status: res.status, text, json: () => JSON.parse(text) };
};

describe("actuator endpoints", () => {
  it("/info shows the app, runtime, memory, origin, times and uptime", async () => {
    const r = await get("/info");
    assert.equal(r.status, 200);
    const info = r.json();
    assert.deepEqual(info.app, { name: "actuator-test", version: "2.0.0", description: "tests" });
    assert.equal(info.personality, "APP");
    assert.equal(info.origin, platform.origin);
    assert.ok(info.runtime.version && info.memory.heap_used > 0);
    assert.ok(Date.parse(info.time.start) <= Date.parse(info.time.current));
    assert.match(info.uptime, /^\d+ (ms|seconds?|minutes?)/, "as Java's elapsedTime writes it");
  });

  it("/info/lib lists the loaded libraries with versions", async () => {
    const lib = (await get("/info/lib")).json().library as { name: string; version: string }[];
    const names = lib.map((l) => l.name);
    for (const n of ["@minimesh/core", "@msgpack/msgpack", "yaml", "@logtape/logtape"]) {
      assert.ok(names.includes(n), `${n} in ${names}`);
    }
    assert.ok(lib.every((l) => /^\d+\.\d+\.\d+/.test(l.version)), JSON.stringify(lib));
  });

  it("/info/routes shows public and private functions with instances, no network alone", async () => {
    const r = (await get("/info/routes")).json();
    assert.equal(r.routing.public["api.echo"], 1);
    assert.equal(r.routing.private["dep.good"], 1);
    assert.equal(r.network, undefined);
  });

  it("/env shows only the listed variables and properties", async () => {
    process.env.MINIMESH_TEST_VAR = "visible";
    process.env.MINIMESH_OTHER = "hidden";
    const env = (await get("/env")).json().env;
    assert.deepEqual(env.environment, { MINIMESH_TEST_VAR: "visible" });
    assert.deepEqual(env.properties, {
      "application.name": "actuator-test",
      "info.app.version": "2.0.0",
    });
  });

  it("/health is UP with the dependencies' info, and only mandatory ones make it DOWN", async () => {
    goodHealthy = true;
    let r = await get("/health");
    assert.equal(r.status, 200);
    let h = r.json();
    assert.equal(h.status, "UP");
    assert.deepEqual(h.dependency, [
      {
        route: "dep.good",
        required: true,
        service: "test",
        href: "here",
        status_code: 200,
        message: "fine",
      },
      {
        route: "dep.optional",
        required: false,
        service: "optional",
        status_code: 500,
        message: "optional is broken",
      },
    ]);
    assert.equal((await get("/livenessprobe")).text, "OK");
    goodHealthy = false;
    r = await get("/health");
    assert.equal(r.status, 400);
    h = r.json();
    assert.equal(h.status, "DOWN");
    assert.equal(h.dependency[0].status_code, 503);
    const live = await get("/livenessprobe");
    assert.deepEqual([live.status, live.text], [
      400,
      "Unhealthy. Please check '/health' endpoint.",
    ]);
    goodHealthy = true;
    await get("/health");
    assert.equal((await get("/livenessprobe")).status, 200);
  });

  it("/health reports a missing dependency and a missing configuration", async () => {
    const p = testPlatform({ properties: { "mandatory.health.dependencies": "no.such.dep" } });
    const handle = actuatorHandler(p);
    const res = (await handle(new Request("http://x/health")))!;
    assert.equal(res.status, 400);
    assert.deepEqual((await res.json()).dependency[0], {
      route: "no.such.dep",
      required: true,
      status_code: 404,
      message: "Please check - no.such.dep not found",
    });
    const bare = (await actuatorHandler(testPlatform())(new Request("http://x/health")))!;
    assert.equal(bare.status, 200);
    assert.match(
      (await bare.json()).message,
      /Did you forget to define mandatory.health.dependencies/,
    );
  });

  it("answers unknown paths with a JSON 404 and other methods with 405", async () => {
    const r = await get("/nothing/here");
    assert.equal(r.status, 404);
    assert.deepEqual(r.json(), {
      type: "error",
      status: 404,
      message: "Resource not found: /nothing/here",
    });
    assert.equal((await fetch(base + "/info", { method: "DELETE" })).status, 405);
  });
});

describe("/health with the Kafka connector", () => {
  it("is DOWN with 400 while the instance is not connected to a monitor", async () => {
    const { connectToCloud } = await import("../connector/mod.ts");
    const p = testPlatform({
      args: [
        "-Dcloud.connector=kafka",
        "-Dpresence.url=ws://127.0.0.1:1/ws/presence",
        "-Dmandatory.health.dependencies=cloud.connector.health",
      ],
    });
    const connector = connectToCloud(p)!;
    try {
      const res = (await actuatorHandler(p)(new Request("http://x/health")))!;
      assert.equal(res.status, 400);
      const h = await res.json();
      assert.equal(h.status, "DOWN");
      assert.deepEqual([h.dependency[0].status_code, h.dependency[0].message], [
        503,
        "Not connected to a presence monitor",
      ]);
      assert.equal(h.dependency[0].service, "kafka");
    } finally {
      await connector.stop();
    }
  });
});

describe("Event over HTTP: POST /api/event", () => {
  const post = (body: BodyInit, headers: Record<string, string> = {}) =>
    fetch(base + "/api/event", { method: "POST", body, headers });

  it("delivers a STANDARD envelope and replies in STANDARD", async () => {
    const e = new EventEnvelope({ to: "api.echo", headers: { a: "b" }, body: { n: 1 } });
    const res = await post(e.toBytes("standard") as BodyInit);
    assert.equal(res.status, 200);
    const bytes = new Uint8Array(await res.arrayBuffer());
    assert.equal(EventEnvelope.formatOf(bytes), "standard");
    const reply = EventEnvelope.fromBytes(bytes);
    assert.deepEqual(reply.body, { headers: { a: "b", my_route: "api.echo" }, body: { n: 1 } });
  });

  it("delivers a COMPACT envelope and replies in COMPACT", async () => {
    const res = await post(new EventEnvelope({ to: "api.echo", body: 2 }).toBytes() as BodyInit);
    const bytes = new Uint8Array(await res.arrayBuffer());
    assert.equal(EventEnvelope.formatOf(bytes), "compact");
    assert.deepEqual((EventEnvelope.fromBytes(bytes).body as { body: number }).body, 2);
  });

  it("takes JSON too (content-type: application/json) and answers in JSON", async () => {
    const json = { "content-type": "application/json" };
    const res = await post(
      JSON.stringify({ to: "api.echo", headers: { a: "b" }, body: [1] }),
      json,
    );
    assert.equal(res.status, 200);
    assert.match(res.headers.get("content-type") ?? "", /application\/json/);
    const reply = await res.json();
    assert.deepEqual(reply.body, { headers: { a: "b", my_route: "api.echo" }, body: [1] });
    assert.equal(reply.status, 200);
    const cases: [string, RegExp][] = [
      ["{not json", /malformed JSON/],
      ["[1]", /must be an object/],
      [JSON.stringify({ to: "api.echo", status: "x" }), /status/],
      ["{" + '"a":{'.repeat(200) + "}".repeat(201), /nested deeper/],
    ];
    for (const [body, message] of cases) {
      const bad = await post(body, json);
      assert.equal(bad.status, 400, body.slice(0, 30));
      assert.match((await bad.json()).message, message);
    }
    // JSON sent without its content type is read as MsgPack: the error says what it takes.
    const plain = await post(JSON.stringify({ to: "api.echo" }));
    assert.equal(plain.status, 400);
    assert.match((await plain.json()).message, /takes a MsgPack envelope .* or JSON/);
  });

  it("answers 202 for x-async", async () => {
    const res = await post(new EventEnvelope({ to: "api.echo" }).toBytes() as BodyInit, {
      "x-async": "true",
    });
    assert.equal(res.status, 202);
    const body = EventEnvelope.fromBytes(new Uint8Array(await res.arrayBuffer())).body as Record<
      string,
      unknown
    >;
    assert.equal(body.type, "async");
    assert.equal(body.delivered, true);
  });

  const cases: [string, () => Promise<Response>, number, RegExp][] = [
    [
      "an unknown route",
      () => post(new EventEnvelope({ to: "no.such.route" }).toBytes() as BodyInit),
      404,
      /Route no.such.route not found/,
    ],
    [
      "a private route",
      () => post(new EventEnvelope({ to: "api.private" }).toBytes() as BodyInit),
      403,
      /Route api.private is private/,
    ],
    [
      "no route",
      () => post(new EventEnvelope({ body: 1 }).toBytes() as BodyInit),
      400,
      /Missing routing path/,
    ],
    [
      "malformed bytes",
      () => post(new Uint8Array([0x81, 0xa1]) as BodyInit),
      400,
      /Invalid event envelope/,
    ],
    [
      "a list instead of a map",
      () => post(encode([1, 2]) as BodyInit),
      400,
      /top level must be a map/,
    ],
    ["an oversized body", () => post(new Uint8Array(200_000) as BodyInit), 413, /over 100000/],
    [
      "a timeout",
      () => post(new EventEnvelope({ to: "api.slow" }).toBytes() as BodyInit, { "x-ttl": "200" }),
      408,
      /Timeout for 200 ms/,
    ],
    ["a GET", () => fetch(base + "/api/event"), 405, /Use POST/],
  ];
  for (const [name, send, status, message] of cases) {
    it(`answers ${status} for ${name}`, async () => {
      const res = await send();
      assert.equal(res.status, status);
      const bytes = new Uint8Array(await res.arrayBuffer());
      const text = res.headers.get("content-type")?.includes("json")
        ? JSON.parse(new TextDecoder().decode(bytes)).message
        : EventEnvelope.fromBytes(bytes).body;
      assert.match(String(text), message);
    });
  }

  it("a PostOffice request can target a remote /api/event URL", async () => {
    const caller = testPlatform();
    const po = new PostOffice({}, caller);
    const reply = await po.request(
      { to: "api.echo", body: "over http", correlationId: "c9" },
      {
        timeout: 3000,
        url: `${base}/api/event`,
      },
    );
    assert.deepEqual([reply.status, (reply.body as { body: string }).body, reply.correlationId], [
      200,
      "over http",
      "c9",
    ]);
    const missing = await po.request({ to: "no.such.route" }, {
      timeout: 3000,
      url: `${base}/api/event`,
    });
    assert.deepEqual([missing.status, missing.error], [404, "Route no.such.route not found"]);
    await assert.rejects(
      po.request({ to: "api.slow" }, { timeout: 200, url: `${base}/api/event` }),
      RequestTimeoutError,
    );
    await assert.rejects(
      po.request({ to: "api.echo" }, { timeout: 1000, url: "http://127.0.0.1:1/api/event" }),
      /Event over HTTP to http:\/\/127.0.0.1:1\/api\/event failed/,
    );
  });
});

describe("fire and forget over HTTP (PostOffice.send with a url, x-async)", () => {
  it("resolves once the remote instance accepted the event, and says why it did not", async () => {
    const got: unknown[] = [];
    platform.register("api.sink", (_h, body) => void got.push(body));
    const po = new PostOffice({}, testPlatform());
    const url = `${base}/api/event`;
    await po.send({ to: "api.sink", body: "one way" }, { url });
    for (let i = 0; i < 50 && got.length === 0; i++) await new Promise((r) => setTimeout(r, 10));
    assert.deepEqual(got, ["one way"]);
    await assert.rejects(po.send({ to: "no.such.route" }, { url }), (e: unknown) => {
      assert.ok(e instanceof AppError);
      assert.deepEqual([e.status, e.message], [404, "Route no.such.route not found"]);
      return true;
    });
    await assert.rejects(po.send({ to: "api.private" }, { url }), { status: 403 });
    await assert.rejects(
      po.send({ to: "api.sink" }, { url: "http://127.0.0.1:1/api/event", timeout: 1000 }),
      /Event over HTTP to http:\/\/127.0.0.1:1\/api\/event failed/,
    );
    platform.release("api.sink");
  });
});

describe("protected endpoints (api.tokens, protect.info.endpoints, authorize)", () => {
  const event = (auth?: string) =>
    new Request("http://x/api/event", {
      method: "POST",
      headers: auth ? { authorization: auth } : {},
      body: new EventEnvelope({ to: "hello.echo", body: "hi" }).toBytes() as BodyInit,
    });

  it("/api/event needs a bearer token of api.tokens when they are set", async () => {
    const p = testPlatform({ args: ["-Dapi.tokens=first-t0ken,second-t0ken"] });
    p.register("hello.echo", (_h, body) => body);
    const handle = actuatorHandler(p);
    const none = (await handle(event()))!;
    assert.equal(none.status, 401);
    assert.equal(none.headers.get("www-authenticate"), "Bearer");
    assert.doesNotMatch(await none.text(), /t0ken/);
    assert.equal((await handle(event("Bearer wrong")))!.status, 401);
    assert.equal((await handle(event("Basic Zmlyc3QtdDBrZW4=")))!.status, 401);
    const ok = (await handle(event("Bearer second-t0ken")))!;
    assert.equal(ok.status, 200);
    assert.equal(EventEnvelope.fromBytes(new Uint8Array(await ok.arrayBuffer())).body, "hi");
    // /info stays open: protect.info.endpoints is not set.
    assert.equal((await handle(new Request("http://x/info")))!.status, 200);
  });

  it("protect.info.endpoints with api.tokens: a token only, never the origin; health stays open", async () => {
    const p = testPlatform({ args: ["-Dprotect.info.endpoints=true", "-Dapi.tokens=t0ken"] });
    const handle = actuatorHandler(p);
    const get = (path: string, headers: Record<string, string> = {}) =>
      handle(new Request(`http://x${path}`, { headers }));
    // Generated header sets: the origin (which /health shows to anyone) in every spelling, any
    // authorization; a request passes exactly when it carries the token.
    const headers = fc.record({
      "x-app-instance": fc.constantFrom(p.origin, p.origin.toUpperCase(), ` ${p.origin}`, ""),
      authorization: fc.constantFrom(
        "Bearer t0ken",
        "bearer t0ken",
        "Bearer t0ken ",
        "Bearer t0ke",
        "Bearer " + p.origin,
        "Basic dDBrZW4=",
        "t0ken",
        "",
      ),
    }, { requiredKeys: [] });
    const paths = fc.constantFrom("/info", "/info/lib", "/info/routes", "/env", "/metrics");
    await fc.assert(
      fc.asyncProperty(paths, headers, async (path, h) => {
        const status = (await get(path, h as Record<string, string>))!.status;
        const token = /^Bearer\s+t0ken\s*$/i.test(h.authorization ?? "");
        assert.equal(status, token ? 200 : 401, `${path} ${JSON.stringify(h)}`);
      }),
      { numRuns: 200 },
    );
    assert.equal((await get("/livenessprobe"))!.status, 200);
    assert.notEqual((await get("/health"))!.status, 401);
  });

  it("protect.info.endpoints without tokens: X-App-Instance, as in the Java original", async () => {
    const p = testPlatform({ args: ["-Dprotect.info.endpoints=true"] });
    const handle = actuatorHandler(p);
    for (const path of ["/info", "/info/lib", "/info/routes", "/env"]) {
      const get = (headers: Record<string, string>) =>
        handle(new Request(`http://x${path}`, { headers }));
      assert.equal((await get({}))!.status, 401, path);
      assert.equal((await get({ "x-app-instance": p.origin }))!.status, 200, path);
    }
  });

  it("an application's own check comes on top of the configured rule", async () => {
    const p = testPlatform({ args: [] });
    p.register("hello.echo", (_h, body) => body);
    const handle = actuatorHandler(p, {
      authorize: (req, kind) => kind === "event" && req.headers.get("x-team") === "blue",
    });
    assert.equal((await handle(event()))!.status, 401);
    const ok = await handle(
      new Request("http://x/api/event", {
        method: "POST",
        headers: { "x-team": "blue" },
        body: new EventEnvelope({ to: "hello.echo", body: "hi" }).toBytes() as BodyInit,
      }),
    );
    assert.equal(ok!.status, 200);
    assert.equal((await handle(new Request("http://x/info")))!.status, 401, "kind info refused");
    assert.equal((await handle(new Request("http://x/livenessprobe")))!.status, 200);
  });
});
