// The API that code ported from Java Mercury reaches for, in the TypeScript idiom: sendLater
// (with cancel and listing), waitForProvider, search, makePublic, case-insensitive headers and
// the `system.service.query` route. The table of Java names: docs/java.md.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import {
  AppError,
  EventEnvelope,
  headerOf,
  PostOffice,
  preload,
  registerPreloaded,
  RouteNotFoundError,
} from "../mod.ts";
import type { Composable, MeshTransport } from "../mod.ts";
import { SERVICE_QUERY, serviceQuery } from "../connector/service_query.ts";
import { elapsedText, localTimestamp } from "../protocol/format.ts";
import { captureLogs, configDir, sleep, stubMesh, testPlatform } from "./_helpers.ts";
import { actuatorHandler, eventApi } from "../actuator/mod.ts";
import { serve } from "#runtime";

describe("PostOffice.sendLater", () => {
  it("sends when due, with the post office's trace, and lists what waits, soonest first", async () => {
    const p = testPlatform();
    const seen: [unknown, string | undefined][] = [];
    p.register("later.sink", (h, body) => void seen.push([body, h.my_trace_id]));
    const po = new PostOffice({ my_trace_id: "t-1", my_trace_path: "GET /x" }, p);
    const second = po.sendLater({ to: "later.sink", body: 2 }, { delay: 60 });
    const first = po.sendLater({ to: "later.sink", body: 1 }, { at: new Date(Date.now() + 30) });
    assert.deepEqual(p.futureEvents().map((f) => f.id), [first, second]);
    assert.deepEqual(p.futureEvents("other.route"), []);
    assert.equal(p.futureEvents("later.sink")[1].to, "later.sink");
    await sleep(150);
    assert.deepEqual(seen, [[1, "t-1"], [2, "t-1"]]);
    assert.deepEqual(p.futureEvents(), []);
  });

  it("cancels by id or signal; a past time sends at once", async () => {
    const p = testPlatform();
    const seen: unknown[] = [];
    p.register("later.sink", (_h, body) => void seen.push(body));
    const po = new PostOffice({}, p);
    const id = po.sendLater({ to: "later.sink", body: "cancelled" }, { delay: 30 });
    const abort = new AbortController();
    po.sendLater({ to: "later.sink", body: "aborted" }, { delay: 30, signal: abort.signal });
    po.sendLater({ to: "later.sink", body: "past" }, { at: new Date(0) });
    assert.equal(p.cancelFutureEvent(id), true);
    assert.equal(p.cancelFutureEvent(id), false, "only once");
    abort.abort();
    await sleep(80);
    assert.deepEqual(seen, ["past"]);
  });

  it("refuses bad input with a clear error", () => {
    const po = new PostOffice({}, testPlatform());
    assert.throws(() => po.sendLater({ to: "a.b" }, { delay: -1 }), /Invalid delay.*-1/);
    assert.throws(() => po.sendLater({ to: "a.b" }, { delay: NaN }), RangeError);
    assert.throws(() => po.sendLater({ to: "a.b" }, { at: new Date("x") }), /Invalid time/);
    assert.throws(
      () => po.sendLater({ to: "a.b" }, { at: new Date(), delay: 1 }),
      /a delay or a time, not both/,
    );
    assert.throws(() => po.sendLater({ to: "Not A Route!" }, { delay: 1 }), /route/i);
    assert.throws(() => po.sendLater({ body: 1 }, { delay: 1 }), AppError);
    const aborted = AbortSignal.abort(new Error("gone"));
    assert.throws(() => po.sendLater({ to: "a.b" }, { delay: 1, signal: aborted }), /gone/);
  });

  it("logs an event that cannot be sent when due, and a stop drops what waits, saying so", async () => {
    const logs = await captureLogs();
    try {
      const p = testPlatform();
      const po = new PostOffice({}, p);
      po.sendLater({ to: "no.such.route" }, { delay: 0 });
      po.sendLater({ to: "no.such.route" }, { delay: 60_000 });
      await sleep(30);
      await p.stop({ gracePeriod: 0 });
      assert.deepEqual(p.futureEvents(), []);
      assert.ok(logs.lines.some((l) => /scheduled for no.such.route not sent: Route/.test(l)));
      assert.ok(logs.lines.some((l) => /1 event\(s\) scheduled for later not sent/.test(l)));
    } finally {
      await logs.stop();
    }
  });
});

describe("PostOffice.waitForProvider and search", () => {
  it("waits for a route to appear, up to its timeout, and stops on abort", async () => {
    const p = testPlatform();
    const po = new PostOffice({}, p);
    setTimeout(() => p.register("late.route", () => 1), 50);
    assert.equal(await po.waitForProvider("late.route", { timeout: 2000 }), true);
    const started = Date.now();
    assert.equal(await po.waitForProvider("never.there", { timeout: 150 }), false);
    assert.ok(Date.now() - started >= 140);
    await assert.rejects(
      po.waitForProvider("never.there", { timeout: 5000, signal: AbortSignal.timeout(50) }),
      { name: "TimeoutError" },
    );
  });

  it("lists this instance for a public route it serves, and the mesh's peers", () => {
    const p = testPlatform();
    const peers = ["20261127" + "b".repeat(32), "20261127" + "c".repeat(32)];
    const mesh: MeshTransport = { ...stubMesh(() => {}), origins: () => peers };
    p.attachMesh(mesh);
    p.register("both.here", () => 1);
    p.registerPrivate("private.here", () => 1);
    const po = new PostOffice({}, p);
    assert.deepEqual(po.search("both.here"), [p.origin, ...peers]);
    assert.deepEqual(po.search("both.here", { remoteOnly: true }), peers);
    assert.deepEqual(po.search("private.here", { remoteOnly: false }), peers);
  });
});

describe("Platform.makePublic", () => {
  it("advertises a private route to the mesh, once", () => {
    const p = testPlatform();
    const changes: [string, boolean][] = [];
    p.attachMesh({ ...stubMesh(() => {}), routeChanged: (r, added) => changes.push([r, added]) });
    p.registerPrivate("was.private", () => 1);
    assert.deepEqual(changes, []);
    p.makePublic("was.private");
    p.makePublic("was.private");
    assert.equal(p.isPrivate("was.private"), false);
    assert.deepEqual(changes, [["was.private", true]]);
    assert.throws(() => p.makePublic("no.such.route"), RouteNotFoundError);
  });
});

describe("case-insensitive headers", () => {
  it("find a header whatever its case, the exact name first, never a prototype's", () => {
    const headers = { "Content-Type": "a", "content-type": "b", "X-Id": "7" };
    assert.equal(headerOf(headers, "content-type"), "b");
    assert.equal(headerOf(headers, "CONTENT-TYPE"), "a");
    assert.equal(headerOf(headers, "x-id"), "7");
    assert.equal(headerOf(headers, "toString"), undefined);
    assert.equal(headerOf(headers, "__proto__"), undefined);
    const e = new EventEnvelope({ headers: { UserId: "ann" } });
    assert.equal(e.header("userid"), "ann");
    assert.equal(new EventEnvelope().header("x"), undefined);
  });
});

describe("system.service.query", () => {
  it("answers info, download, find and search as the Java original's ServiceQuery", async () => {
    const p = testPlatform({ args: ["-Dapplication.name=query-app"] });
    p.register("here.route", () => 1);
    const table = { routes: {}, nodes: [], name: "query-app, v1.0.0" };
    p.registerPrivate(SERVICE_QUERY, serviceQuery(p, "APP", () => table), 10);
    const po = new PostOffice({}, p);
    const call = async (headers: Record<string, string>, body?: unknown) => {
      const reply = await po.request({ to: SERVICE_QUERY, headers, body }, 1000);
      if (reply.isError) throw new AppError(reply.status, reply.error!);
      return reply.body;
    };
    assert.deepEqual(await call({ type: "info" }), {
      personality: "APP",
      version: p.version,
      name: "query-app",
      origin: p.origin,
    });
    assert.deepEqual(await call({ type: "download" }), table);
    assert.equal(await call({ type: "find", route: "here.route" }), true);
    assert.equal(await call({ type: "find", route: "not.here" }), false);
    assert.equal(await call({ type: "find", route: p.origin }), true, "an origin id");
    assert.equal(await call({ type: "find", route: "*" }, ["here.route"]), true);
    assert.equal(await call({ type: "find", route: "*" }, ["here.route", "not.here"]), false);
    assert.equal(await call({ type: "find", route: "*" }, "here.route"), false);
    assert.deepEqual(await call({ type: "search", route: "here.route" }), [p.origin]);
    const bad: Record<string, string>[] = [{}, { type: "find" }, { type: "search" }, { type: "x" }];
    for (const headers of bad) {
      await assert.rejects(call(headers), (e: unknown) => {
        assert.ok(e instanceof AppError && e.status === 400);
        assert.match(e.message, /^Usage: type=download, info/);
        return true;
      });
    }
  });
});

describe("what an application reports to a monitor, in the Java original's forms", () => {
  it("elapsed as Utility.elapsedTime writes it, quirks included", () => {
    const vectors: [number, string][] = [
      [0, "0 ms"],
      [999, "999 ms"],
      [1000, "1 second"],
      [61_000, "1 minute 1 second"],
      [60_000, "60 seconds"], // Java compares with >: a whole minute stays in seconds
      [3_600_000, "60 minutes"],
      [3_600_000 + 2 * 60_000 + 3000, "1 hour 2 minutes 3 seconds"],
      [2 * 86_400_000 + 3_600_001, "2 days 1 hour"],
      [1_512_000, "25 minutes 12 seconds"],
    ];
    for (const [ms, text] of vectors) assert.equal(elapsedText(ms), text, `${ms} ms`);
  });

  it("created as Utility.getLocalTimestamp writes it (LocalDateTime, a space for the T)", () => {
    const local = (...a: [number, number, number, number, number, number, number]) =>
      new Date(...a).getTime();
    assert.equal(localTimestamp(local(2026, 10, 27, 18, 55, 1, 123)), "2026-11-27 18:55:01.123");
    assert.equal(localTimestamp(local(2026, 10, 27, 18, 55, 7, 0)), "2026-11-27 18:55:07");
    assert.equal(localTimestamp(local(2026, 0, 2, 3, 4, 0, 0)), "2026-01-02 03:04");
    assert.equal(localTimestamp(local(2026, 0, 2, 3, 4, 0, 5)), "2026-01-02 03:04:00.005");
  });
});

describe("route substitution (application.feature.route.substitution)", () => {
  it("sends events for the original to the replacement, route@origin too, and shows the table", async () => {
    const p = testPlatform({
      args: [
        "-Dapplication.feature.route.substitution=true",
        "-Droute.substitution=v1.hello:v2.hello, old.name:new.name",
      ],
    });
    p.register("v2.hello", (_h, body) => `v2 got ${body}`);
    const po = new PostOffice({}, p);
    assert.equal((await po.request({ to: "v1.hello", body: "x" }, 1000)).body, "v2 got x");
    assert.equal(
      (await po.request({ to: `v1.hello@${p.origin}`, body: "y" }, 1000)).body,
      "v2 got y",
    );
    assert.deepEqual(p.routeSubstitutions(), { "v1.hello": "v2.hello", "old.name": "new.name" });
    const info = await (await actuatorHandler(p)(new Request("http://x/info/routes")))!.json();
    assert.deepEqual(info.route_substitution, p.routeSubstitutions());
  });

  it("reads the YAML list, and refuses nested or malformed entries, naming them", () => {
    const dir = configDir({
      "subst.yaml": "route:\n  substitution:\n    - 'a.one -> b.one'\n",
      "nested.yaml": "route.substitution:\n  - 'a.one -> b.one'\n  - 'b.one -> c.one'\n",
      "bad.yaml": "route.substitution:\n  - 'a.one => b.one'\n",
    });
    const platform = (yaml: string) =>
      testPlatform({
        dir,
        args: [
          "-Dapplication.feature.route.substitution=true",
          `-Dyaml.route.substitution=${yaml}`,
        ],
      });
    assert.deepEqual(platform("subst.yaml").routeSubstitutions(), { "a.one": "b.one" });
    assert.throws(() => platform("nested.yaml"), /route.substitution\[1\].*no nested substitution/);
    assert.throws(() => platform("bad.yaml"), /route.substitution\[0\].*original -> replacement/);
    assert.throws(() => platform("missing.yaml"), /yaml.route.substitution/);
    assert.throws(
      () =>
        testPlatform({
          args: [
            "-Dapplication.feature.route.substitution=true",
            "-Droute.substitution=a.b:NOT OK",
          ],
        }),
      /route.substitution/,
    );
    // Off unless the feature is on.
    assert.deepEqual(
      testPlatform({ args: ["-Droute.substitution=a.b:c.d"] }).routeSubstitutions(),
      {},
    );
  });
});

describe("yaml.event.over.http", () => {
  it("sends a listed route's requests and events to the target's /api/event, with its headers", async () => {
    const remote = testPlatform({ args: ["-Dapi.tokens=t0ken"] });
    const seen: string[] = [];
    remote.register("remote.hello", (h, body) => {
      seen.push(h["x-event-api"]);
      return `remote got ${body}`;
    });
    const server = await serve({
      port: 0,
      hostname: "127.0.0.1",
      wsPrefix: "/ws/",
      handlers: { open() {}, message() {}, close() {} },
      fetch: async (req) =>
        (await actuatorHandler(remote)(req)) ?? new Response(null, { status: 404 }),
    });
    try {
      const dir = configDir({
        "http.yaml": [
          "event.http:",
          "  - route: remote.hello",
          `    target: http://127.0.0.1:${server.port}/api/event`,
          "    headers:",
          "      authorization: Bearer t0ken",
        ].join("\n"),
      });
      const local = testPlatform({ dir, args: ["-Dyaml.event.over.http=http.yaml"] });
      const po = new PostOffice({}, local);
      const reply = await po.request({ to: "remote.hello", body: "hi" }, 3000);
      assert.deepEqual([reply.status, reply.body], [200, "remote got hi"]);
      await po.send({ to: "remote.hello", body: "one way" });
      for (let i = 0; i < 50 && seen.length < 2; i++) await sleep(10);
      assert.deepEqual(seen, ["asyncRequest", "send"], "marked so that it is not forwarded again");
    } finally {
      await server.close();
    }
  });

  it("refuses a bad entry, naming it", () => {
    const dir = configDir({
      "bad-url.yaml": "event.http:\n  - route: a.b\n    target: ftp://x/api/event\n",
      "bad-route.yaml": "event.http:\n  - route: 'not a route'\n    target: http://x/api/event\n",
      "no-list.yaml": "event.http: 3\n",
    });
    const platform = (f: string) => testPlatform({ dir, args: [`-Dyaml.event.over.http=${f}`] });
    assert.throws(() => platform("bad-url.yaml"), /event.http\[0\].target.*http\(s\) URL/);
    assert.throws(() => platform("bad-route.yaml"), /event.http\[0\].route/);
    assert.throws(() => platform("no-list.yaml"), /event.http list/);
  });
});

// Declared once for the tests below: @preload collects classes for registerPreloaded.
@preload({ route: "pre.private.one, pre.private.two", instances: 3 })
class PrivateByDefault implements Composable<string, string> {
  handleEvent(_h: Record<string, string>, body: string, instance: number) {
    return `${body} on ${instance}`;
  }
}

@preload({
  route: "pre.public",
  instances: 2,
  envInstances: "pre.public.instances",
  isPrivate: false,
})
class Counted implements Composable {
  handleEvent() {
    return "counted";
  }
}

describe("@preload (the Java original's @PreLoad)", () => {
  it("registers decorated classes: several routes, private by default, instances from the config", async () => {
    const p = testPlatform({ args: ["-Dpre.public.instances=7"] });
    const routes = registerPreloaded(p);
    assert.deepEqual(routes.filter((r) => r.startsWith("pre.")), [
      "pre.private.one",
      "pre.private.two",
      "pre.public",
    ]);
    const info = new Map(p.routes().map((r) => [r.route, r]));
    assert.deepEqual(
      [info.get("pre.private.one")?.isPrivate, info.get("pre.private.one")?.instances],
      [true, 3],
    );
    assert.deepEqual([info.get("pre.public")?.isPrivate, info.get("pre.public")?.instances], [
      false,
      7,
    ]);
    const reply = await new PostOffice({}, p).request({ to: "pre.private.two", body: "x" }, 1000);
    assert.equal(reply.body, "x on 1");
    assert.ok(PrivateByDefault.name && Counted.name);
    // Without the key (or with a value that is not a number), the declared count.
    const q = testPlatform({ args: ["-Dpre.public.instances=many"] });
    registerPreloaded(q);
    assert.equal(q.routes().find((r) => r.route === "pre.public")?.instances, 2);
  });

  it("refuses a class without handleEvent, naming it", () => {
    assert.throws(() => {
      // @ts-expect-error: no handleEvent; plain JavaScript gets the check at run time
      @preload({ route: "pre.broken" })
      class Broken {}
      return Broken;
    }, /@preload: Broken needs a handleEvent method/);
  });
});

describe("an interceptor (RegisterOptions.interceptor)", () => {
  it("is not answered by its return value; it replies itself, later, to replyTo", async () => {
    const p = testPlatform();
    const logs = await captureLogs();
    try {
      p.register("relay.later", (_h, body, _i, event) => {
        const po = new PostOffice({}, p);
        setTimeout(() =>
          po.send({
            to: event.replyTo!,
            correlationId: event.correlationId,
            body: `late ${body}`,
          }), 30);
        return "not the reply";
      }, { instances: 2, interceptor: true });
      p.register("relay.silent", () => "ignored", { interceptor: true });
      p.register("relay.failing", () => {
        throw new AppError(400, "intercepted failure");
      }, { interceptor: true });
      const po = new PostOffice({}, p);
      const reply = await po.request({ to: "relay.later", body: "x" }, 1000);
      assert.equal(reply.body, "late x");
      const silent = await po.request({ to: "relay.silent" }, {
        timeout: 150,
        timeoutException: false,
      });
      assert.equal(silent.status, 408, "no reply at all");
      const failed = await po.request({ to: "relay.failing" }, {
        timeout: 150,
        timeoutException: false,
      });
      assert.equal(failed.status, 408);
      assert.ok(
        logs.lines.some((l) => /relay.failing failed on event .*intercepted failure/.test(l)),
      );
      assert.equal(p.routes().find((r) => r.route === "relay.later")?.instances, 2);
      assert.throws(
        () => p.register("relay.bad", 42 as unknown as () => void, { interceptor: true }),
        /The function for relay.bad must be a function, got number/,
      );
    } finally {
      await logs.stop();
    }
  });
});

describe("serializer.null.transport", () => {
  const body = { a: null, b: 1, list: [null, { c: null, d: "x" }], nested: { e: null } };
  const call = async (args: string[]) => {
    const p = testPlatform({ args });
    let seen: unknown;
    p.register("null.echo", (_h, input) => (seen = input, "ok"));
    const res = await eventApi(p)(
      new Request("http://127.0.0.1/api/event", {
        method: "POST",
        headers: { "content-type": "application/octet-stream" },
        body: new EventEnvelope({ to: "null.echo", body }).toBytes() as BodyInit,
      }),
    );
    assert.equal(res.status, 200);
    return seen;
  };

  it("drops nulls in maps of what arrives, as Java does by default; lists keep theirs", async () => {
    assert.deepEqual(await call([]), { b: 1, list: [null, { d: "x" }], nested: {} });
  });

  it("keeps them with serializer.null.transport=true", async () => {
    assert.deepEqual(await call(["-Dserializer.null.transport=true"]), body);
  });

  it("leaves events inside the process as they were given", async () => {
    const p = testPlatform();
    p.register("null.local", (_h, input) => input);
    const reply = await new PostOffice({}, p).request(
      { to: "null.local", body: { a: null } },
      1000,
    );
    assert.deepEqual(reply.body, { a: null });
  });
});
