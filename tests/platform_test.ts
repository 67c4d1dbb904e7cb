import { describe, it } from "node:test";
import assert from "node:assert/strict";
import {
  AppError,
  EventEnvelope,
  InvalidRouteError,
  PostOffice,
  RouteNotFoundError,
} from "../mod.ts";
import type { LambdaFunction } from "../mod.ts";
import { captureLogs, deferred, sleep, testPlatform } from "./_helpers.ts";

describe("Platform registration", () => {
  it("registers public and private functions and releases them", () => {
    const p = testPlatform();
    p.register("pub.fn", () => 1, 3);
    p.registerPrivate("priv.fn", () => 2);
    assert.equal(p.hasRoute("pub.fn"), true);
    assert.equal(p.isPrivate("pub.fn"), false);
    assert.equal(p.isPrivate("priv.fn"), true);
    assert.deepEqual(
      p.routes().map((r) => [r.route, r.instances, r.isPrivate]),
      [["priv.fn", 1, true], ["pub.fn", 3, false]],
    );
    assert.equal(p.release("pub.fn"), true);
    assert.equal(p.release("pub.fn"), false);
    assert.equal(p.hasRoute("pub.fn"), false);
    assert.throws(() => p.isPrivate("pub.fn"), RouteNotFoundError);
  });

  it("rejects bad route names with an error naming the route", () => {
    const p = testPlatform();
    for (const bad of ["Hello.World", "noperiod", ".a.b", "a.b.", "a..b", "a b.c", "x.com", ""]) {
      assert.throws(() => p.register(bad, () => 1), (e: unknown) => {
        assert.ok(e instanceof InvalidRouteError, `${bad}: ${e}`);
        assert.ok(e.message.includes(`"${bad}"`), e.message);
        return true;
      });
    }
  });

  it("rejects bad instance counts and non-functions", () => {
    const p = testPlatform();
    assert.throws(() => p.register("a.b", () => 1, 0), /Instances for a.b must be an integer/);
    assert.throws(() => p.register("a.b", () => 1, 1.5), RangeError);
    assert.throws(() => p.register("a.b", "nope" as unknown as LambdaFunction), TypeError);
    assert.throws(() => p.register("temporary.inbox", () => 1), /reserved/);
  });

  it("replaces a route registered twice", async () => {
    const p = testPlatform();
    p.register("a.b", () => "old");
    p.register("a.b", () => "new");
    const reply = await new PostOffice({}, p).request({ to: "a.b" }, 1000);
    assert.equal(reply.body, "new");
  });

  it("gives each platform an origin id and reads name and version from config", () => {
    const p = testPlatform({
      properties: { "application.name": "demo", "info.app.version": "2.0" },
    });
    assert.match(p.origin, /^\d{8}[0-9a-f]{32}$/);
    assert.equal(p.name, "demo");
    assert.equal(p.version, "2.0");
    assert.equal(p.cloudConnector, "none");
    const q = testPlatform({ appId: "stable" });
    assert.equal(q.origin.slice(8), testPlatform({ appId: "stable" }).origin.slice(8));
  });
});

describe("Functions", () => {
  it("receive headers, body, instance number and the envelope", async () => {
    const p = testPlatform();
    let seen: unknown[] = [];
    p.register("fn.args", (headers, body, instance, event) => {
      seen = [headers, body, instance, event];
      return "ok";
    });
    await new PostOffice({}, p).request({ to: "fn.args", headers: { a: "1" }, body: [1] }, 1000);
    const [headers, body, instance, event] = seen as [
      Record<string, string>,
      unknown,
      number,
      EventEnvelope,
    ];
    assert.deepEqual(headers, { a: "1", my_route: "fn.args" });
    assert.deepEqual(body, [1]);
    assert.equal(instance, 1);
    assert.ok(event instanceof EventEnvelope);
    assert.equal(event.to, "fn.args");
    assert.equal(event.tags.rpc, "1000");
  });

  it("cannot spoof the read-only my_* headers", async () => {
    const p = testPlatform();
    p.register("fn.spoof", (headers) => headers);
    const reply = await new PostOffice({}, p).request(
      { to: "fn.spoof", headers: { my_route: "evil.route", my_trace_id: "x" } },
      1000,
    );
    assert.deepEqual(reply.body, { my_route: "fn.spoof" });
  });

  it("may return an envelope to set status and headers", async () => {
    const p = testPlatform();
    p.register("fn.env", () => new EventEnvelope({ status: 201, headers: { h: "v" }, body: "b" }));
    const reply = await new PostOffice({}, p).request({ to: "fn.env" }, 1000);
    assert.equal(reply.status, 201);
    assert.deepEqual(reply.headers, { h: "v" });
    assert.equal(reply.body, "b");
    assert.equal(reply.from, "fn.env");
  });

  it("turn thrown errors into error replies with their status", async () => {
    const p = testPlatform();
    p.register("fn.app", () => {
      throw new AppError(422, "bad things");
    });
    p.register("fn.plain", () => {
      throw new Error("plain failure");
    });
    p.register("fn.async", () => Promise.reject(new AppError(403, "forbidden")));
    const po = new PostOffice({}, p);
    const a = await po.request({ to: "fn.app" }, 1000);
    assert.deepEqual([a.status, a.body, a.isError, a.error], [
      422,
      "bad things",
      true,
      "bad things",
    ]);
    assert.match(a.stack ?? "", /bad things/);
    const b = await po.request({ to: "fn.plain" }, 1000);
    assert.deepEqual([b.status, b.body], [500, "plain failure"]);
    const c = await po.request({ to: "fn.async" }, 1000);
    assert.deepEqual([c.status, c.body], [403, "forbidden"]);
    const ok = await po.request({ to: "fn.app", body: 1 }, 1000).then(() => "resolved");
    assert.equal(ok, "resolved", "an error reply resolves; it does not reject");
  });

  it("log the failure of an event that nobody waits for", async () => {
    const p = testPlatform();
    p.register("fn.fails", () => {
      throw new Error("nobody listens");
    });
    const logs = await captureLogs();
    try {
      await new PostOffice({}, p).send({ to: "fn.fails" });
      await sleep(5);
    } finally {
      await logs.stop();
    }
    assert.ok(
      logs.lines.some((l) =>
        l.startsWith("warning: fn.fails failed on event") &&
        l.endsWith("nobody listens")
      ),
      logs.lines.join("\n"),
    );
  });

  it("survive a thenable whose then() throws", async () => {
    const p = testPlatform();
    p.register("fn.thenable", () => ({
      then() {
        throw new Error("broken thenable");
      },
    }));
    const reply = await new PostOffice({}, p).request({ to: "fn.thenable" }, 1000);
    assert.deepEqual([reply.status, reply.error], [500, "broken thenable"]);
  });

  it("trims the stack trace to stack.trace.transport.size lines", async () => {
    const p = testPlatform({ properties: { "stack.trace.transport.size": 3 } });
    const deep = (n: number): never => {
      if (n === 0) throw new Error("deep");
      return deep(n - 1);
    };
    p.register("fn.deep", () => deep(20));
    const reply = await new PostOffice({}, p).request({ to: "fn.deep" }, 1000);
    const lines = reply.stack!.split("\n");
    assert.equal(lines.length, 4);
    assert.match(lines[3], /^\.\.\.\(\d+\)$/);
  });
});

describe("Workers", () => {
  it("never run more than `instances` events at once, and run waiting ones in order", async () => {
    const p = testPlatform();
    let running = 0, peak = 0;
    const order: number[] = [];
    const instancesSeen = new Set<number>();
    p.register("work.slow", async (_h, body, instance) => {
      running++;
      peak = Math.max(peak, running);
      instancesSeen.add(instance);
      order.push(body as number);
      await sleep(5);
      running--;
      return body;
    }, 3);
    const po = new PostOffice({}, p);
    const replies = await Promise.all(
      Array.from({ length: 30 }, (_, i) => po.request({ to: "work.slow", body: i }, 5000)),
    );
    assert.deepEqual(replies.map((r) => r.body), Array.from({ length: 30 }, (_, i) => i));
    assert.equal(peak, 3);
    assert.deepEqual(order, Array.from({ length: 30 }, (_, i) => i));
    assert.deepEqual([...instancesSeen].sort(), [1, 2, 3]);
  });

  it("lose no event under a burst of sends", async () => {
    const p = testPlatform();
    const got = new Set<number>();
    const all = deferred();
    p.register("work.count", (_h, body) => {
      got.add(body as number);
      if (got.size === 10_000) all.resolve();
    }, 2);
    const po = new PostOffice({}, p);
    for (let i = 0; i < 10_000; i++) await po.send({ to: "work.count", body: i });
    await all.promise;
    assert.equal(got.size, 10_000);
  });

  it("answer waiting requests with 503 when the route is released", async () => {
    const p = testPlatform();
    const gate = deferred();
    p.register("work.gate", () => gate.promise.then(() => "done"), 1);
    const po = new PostOffice({}, p);
    const first = po.request({ to: "work.gate" }, 2000);
    const second = po.request({ to: "work.gate" }, 2000);
    await sleep(5);
    p.release("work.gate");
    const r2 = await second;
    assert.equal(r2.status, 503);
    assert.match(r2.error!, /released/);
    gate.resolve();
    assert.equal((await first).body, "done");
  });
});

describe("Bounded queues", () => {
  it("answer 503 busy at once beyond route.queue.limit, and reject sends; memory stays flat", async () => {
    const p = testPlatform({ args: ["-Droute.queue.limit=100"] });
    const gate = deferred();
    p.register("slow.fn", async () => {
      await gate.promise;
      return "done";
    }, 2);
    const po = new PostOffice({}, p);
    // 2 running, 100 waiting; everything beyond is refused at once.
    const accepted = Array.from({ length: 102 }, () => po.request({ to: "slow.fn" }, 5000));
    const refused = await po.request({ to: "slow.fn" }, 5000).then(
      () => undefined,
      (e: AppError) => e,
    );
    assert.ok(refused instanceof AppError, "a request over the limit is refused");
    assert.equal(refused.status, 503);
    assert.match(refused.message, /slow\.fn is busy: 100 events waiting/);
    await assert.rejects(po.send({ to: "slow.fn" }), /busy/);
    // A flood of 20,000 sends: the queue never holds more than its limit.
    let rejected = 0;
    for (let i = 0; i < 20_000; i++) await po.send({ to: "slow.fn" }).catch(() => rejected++);
    assert.equal(rejected, 20_000);
    assert.equal(p.routes().find((r) => r.route === "slow.fn")?.backlog, 100);
    gate.resolve();
    const replies = await Promise.all(accepted);
    assert.ok(replies.every((r) => r.body === "done"), "what was accepted is served");
  });
});

describe("Graceful stop", () => {
  it("drains participants first, waits for work in progress, then stops them last-first", async () => {
    const p = testPlatform();
    const steps: string[] = [];
    for (const name of ["http", "mesh"]) {
      p.onStop({
        name,
        drain: () => void steps.push(`drain ${name}`),
        pending: () => 0,
        stop: () => Promise.resolve(void steps.push(`stop ${name}`)),
      });
    }
    p.register("slow.fn", async () => {
      await sleep(100);
      steps.push("work done");
      return 1;
    });
    const reply = new PostOffice({}, p).request({ to: "slow.fn" }, 5000);
    await sleep(10);
    await p.stop({ gracePeriod: 5000 });
    assert.deepEqual(steps, ["drain http", "drain mesh", "work done", "stop mesh", "stop http"]);
    assert.equal((await reply).body, 1);
    assert.equal(p.stopping, true);
    assert.equal(p.stop(), p.stop(), "one stop");
  });

  it("stops anyway when the grace period is over, saying how much work was left", async () => {
    const p = testPlatform();
    const logs = await captureLogs();
    let stopped = false;
    try {
      p.onStop({
        name: "busy",
        pending: () => 1,
        stop: () => Promise.resolve(void (stopped = true)),
      });
      await p.stop({ gracePeriod: 200 });
    } finally {
      await logs.stop();
    }
    assert.ok(stopped);
    assert.ok(
      logs.lines.some((l) => /Grace period over with 1 unit/.test(l)),
      logs.lines.join("\n"),
    );
  });

  it("finishes within its grace period whatever a participant waits for", async () => {
    const p = testPlatform();
    const logs = await captureLogs();
    const never = () => new Promise<void>(() => {});
    const started = Date.now();
    try {
      p.onStop({ name: "stuck", drain: never, pending: () => 1, stop: never });
      p.onStop({ name: "fine", stop: () => Promise.resolve() });
      await p.stop({ gracePeriod: 2000 });
    } finally {
      await logs.stop();
    }
    const took = Date.now() - started;
    assert.ok(took >= 1900 && took < 2400, `stopped after ${took} ms`);
    assert.ok(logs.lines.some((l) => /stuck did not drain in time/.test(l)), logs.lines.join("\n"));
    assert.ok(logs.lines.some((l) => /stuck did not stop in time/.test(l)), logs.lines.join("\n"));
  });
});
