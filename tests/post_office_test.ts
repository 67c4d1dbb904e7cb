import { describe, it } from "node:test";
import assert from "node:assert/strict";
import {
  AppError,
  EventEnvelope,
  InvalidRouteError,
  MinimeshError,
  PostOffice,
  RequestTimeoutError,
  RouteNotFoundError,
} from "../mod.ts";
import { deferred, sleep, testPlatform } from "./_helpers.ts";

describe("PostOffice.send", () => {
  it("delivers an event without a reply", async () => {
    const p = testPlatform();
    const got = deferred<unknown>();
    p.register("s.sink", (_h, body) => got.resolve(body));
    await new PostOffice({}, p).send({ to: "s.sink", body: "hello" });
    assert.equal(await got.promise, "hello");
  });

  it("rejects an unknown route, a missing route and a non-object", async () => {
    const po = new PostOffice({}, testPlatform());
    await assert.rejects(po.send({ to: "no.such.route" }), (e: unknown) => {
      assert.ok(e instanceof RouteNotFoundError);
      assert.equal(e.message, "Route no.such.route not found");
      assert.equal(e.status, 404);
      return true;
    });
    await assert.rejects(po.send({ body: 1 }), /Missing routing path/);
    await assert.rejects(po.send({ to: "Bad Route" }), (e: unknown) => {
      assert.ok(e instanceof InvalidRouteError);
      assert.match(e.message, /Invalid route "Bad Route": use only lowercase/);
      return true;
    });
    await assert.rejects(po.send(null as unknown as EventEnvelope), TypeError);
  });

  it("does not change the caller's envelope", async () => {
    const p = testPlatform();
    p.register("s.echo", (_h, b) => b);
    const event = new EventEnvelope({ to: "s.echo", body: 1, correlationId: "mine" });
    await new PostOffice({}, p).request(event, 1000);
    assert.equal(event.correlationId, "mine");
    assert.equal(event.replyTo, undefined);
    assert.deepEqual(event.tags, {});
  });
});

describe("PostOffice.request", () => {
  it("returns the reply with the caller's correlation id restored", async () => {
    const p = testPlatform();
    p.register("r.echo", (_h, body, _i, event) => ({ body, cid: event.correlationId }));
    const reply = await new PostOffice({}, p).request(
      { to: "r.echo", body: 7, correlationId: "my-cid" },
      1000,
    );
    const body = reply.body as { body: number; cid: string };
    assert.equal(body.body, 7);
    assert.notEqual(body.cid, "my-cid", "the function sees the inbox id");
    assert.equal(reply.correlationId, "my-cid");
    assert.equal(reply.from, "r.echo");
    assert.equal(reply.to, undefined);
    assert.equal(reply.tags.rpc, undefined);
  });

  it("rejects with RequestTimeoutError when no reply comes in time", async () => {
    const p = testPlatform();
    p.register("r.never", () => new Promise(() => {}));
    const t0 = performance.now();
    await assert.rejects(new PostOffice({}, p).request({ to: "r.never" }, 50), (e: unknown) => {
      assert.ok(e instanceof RequestTimeoutError);
      assert.equal(e.message, "Timeout for 50 ms");
      assert.equal(e.status, 408);
      return true;
    });
    const took = performance.now() - t0;
    assert.ok(took >= 49, `timed out early: ${took} ms`);
    assert.ok(took < 1000, `timed out late: ${took} ms`);
  });

  it("resolves a timeout as a 408 envelope when asked", async () => {
    const p = testPlatform();
    p.register("r.slow", () => sleep(200));
    const reply = await new PostOffice({}, p).request({ to: "r.slow" }, {
      timeout: 30,
      timeoutException: false,
    });
    assert.equal(reply.status, 408);
    assert.equal(reply.error, "Timeout for 30 ms");
  });

  it("never times out early, for many timeouts at once", async () => {
    const p = testPlatform();
    p.register("r.hang", () => new Promise(() => {}), 100);
    const po = new PostOffice({}, p);
    const started = performance.now();
    const timeouts = [20, 35, 20, 60, 35, 20, 80];
    const ended = await Promise.all(
      timeouts.map((t) =>
        po.request({ to: "r.hang" }, t).catch((e) => {
          assert.ok(e instanceof RequestTimeoutError);
          return [t, performance.now() - started];
        })
      ),
    );
    for (const [t, at] of ended as [number, number][]) {
      assert.ok(at >= t - 1, `timeout ${t} fired at ${at}`);
      assert.ok(at < t + 500, `timeout ${t} fired late at ${at}`);
    }
  });

  it("rejects bad timeouts and unknown routes without waiting", async () => {
    const p = testPlatform();
    p.register("r.ok", () => 1);
    const po = new PostOffice({}, p);
    for (const bad of [0, -1, NaN, Infinity, "5" as unknown as number]) {
      await assert.rejects(po.request({ to: "r.ok" }, bad), /Timeout must be a positive number/);
    }
    await assert.rejects(po.request({ to: "r.missing" }, 1000), RouteNotFoundError);
    assert.equal(p.pendingRequests, 0, "a failed send leaves nothing waiting");
  });

  it("accepts route@origin for this instance and refuses other origins", async () => {
    const p = testPlatform();
    p.register("r.self", () => "me");
    const po = new PostOffice({}, p);
    assert.equal((await po.request({ to: `r.self@${p.origin}` }, 1000)).body, "me");
    await assert.rejects(po.request({ to: "r.self@20260101" + "0".repeat(32) }, 1000), /not found/);
  });

  it("measures round trip and execution time for traced requests", async () => {
    const p = testPlatform();
    p.register("r.traced", () => sleep(5));
    const po = new PostOffice({ my_trace_id: "t1", my_trace_path: "GET /x" }, p);
    const reply = await po.request({ to: "r.traced" }, 1000);
    assert.ok(reply.execTime! >= 4, `exec ${reply.execTime}`);
    assert.ok(reply.roundTrip! >= reply.execTime!, `round trip ${reply.roundTrip}`);
  });
});

describe("fork-and-join", () => {
  it("returns replies in request order, matched to their requests", async () => {
    const p = testPlatform();
    p.register("f.slow", async (_h, n) => {
      await sleep(30 - (n as number) * 5);
      return (n as number) * 10;
    }, 5);
    const events = [1, 2, 3, 4, 5].map((n) => ({ to: "f.slow", body: n, correlationId: `c${n}` }));
    const replies = await new PostOffice({}, p).request(events, 1000);
    assert.deepEqual(replies.map((r) => r.body), [10, 20, 30, 40, 50]);
    assert.deepEqual(replies.map((r) => r.correlationId), ["c1", "c2", "c3", "c4", "c5"]);
  });

  it("spans several routes", async () => {
    const p = testPlatform();
    p.register("f.a", () => "a");
    p.register("f.b", () => "b");
    const replies = await new PostOffice({}, p).request([{ to: "f.a" }, { to: "f.b" }], 1000);
    assert.deepEqual(replies.map((r) => r.body), ["a", "b"]);
  });

  it("gives partial results on timeout when asked, and rejects otherwise", async () => {
    const p = testPlatform();
    p.register("f.maybe", (_h, n) => n === 2 ? new Promise(() => {}) : n, 3);
    const po = new PostOffice({}, p);
    const events = [1, 2, 3].map((n) => ({ to: "f.maybe", body: n, correlationId: `c${n}` }));
    const partial = await po.request(events, { timeout: 50, timeoutException: false });
    assert.deepEqual(partial.map((r) => [r.correlationId, r.body]), [["c1", 1], ["c3", 3]]);
    await assert.rejects(po.request(events, 50), RequestTimeoutError);
  });

  it("sends nothing when one route is unknown", async () => {
    const p = testPlatform();
    let calls = 0;
    p.register("f.count", () => calls++);
    await assert.rejects(
      new PostOffice({}, p).request([{ to: "f.count" }, { to: "f.nope" }], 1000),
      RouteNotFoundError,
    );
    await sleep(5);
    assert.equal(calls, 0);
  });

  it("returns an empty list for no events", async () => {
    assert.deepEqual(await new PostOffice({}, testPlatform()).request([], 100), []);
  });
});

describe("the options-object API", () => {
  it("takes the timeout in an options object, and types the reply's body", async () => {
    const p = testPlatform();
    p.register<{ a: number; b: number }, number>("o.add", (_h, { a, b }) => a + b);
    const reply = await new PostOffice({}, p).request<number>(
      { to: "o.add", body: { a: 2, b: 3 } },
      { timeout: 500 },
    );
    const sum: number = reply.body;
    assert.equal(sum, 5);
    await assert.rejects(
      new PostOffice({}, p).request({ to: "o.add" }, {} as { timeout: number }),
      /Timeout must be a positive number of ms, got undefined/,
    );
  });

  it("aborts a request with the signal's reason, and drops the late reply", async () => {
    const p = testPlatform();
    const release = deferred();
    p.register("o.slow", async () => {
      await release.promise;
      return "late";
    });
    const controller = new AbortController();
    const po = new PostOffice({}, p);
    const pending = po.request({ to: "o.slow" }, { timeout: 5000, signal: controller.signal });
    controller.abort(new Error("user went away"));
    await assert.rejects(pending, /user went away/);
    assert.equal(p.pendingRequests, 0, "nothing waits any more");
    release.resolve();
    await sleep(10);
    // An aborted signal refuses before sending anything.
    let calls = 0;
    p.register("o.count", () => ++calls);
    await assert.rejects(
      po.request({ to: "o.count" }, { timeout: 100, signal: AbortSignal.abort() }),
      (e: Error) => e.name === "AbortError",
    );
    assert.equal(calls, 0);
  });

  it("yields fork-and-join replies as they arrive, then throws at the timeout", async () => {
    const p = testPlatform();
    p.register<number, number>("o.wait", async (_h, ms) => {
      await sleep(ms);
      return ms;
    }, 3);
    const po = new PostOffice({}, p);
    const events = [30, 1, 10].map((ms) => ({ to: "o.wait", body: ms }));
    const order: number[] = [];
    for await (const r of po.forkJoin<number>(events, { timeout: 1000 })) order.push(r.body);
    assert.deepEqual(order, [1, 10, 30]);

    const slow = [1, 500].map((ms) => ({ to: "o.wait", body: ms }));
    const got: number[] = [];
    await assert.rejects(async () => {
      for await (const r of po.forkJoin<number>(slow, { timeout: 100 })) got.push(r.body);
    }, RequestTimeoutError);
    assert.deepEqual(got, [1], "the reply that came is yielded before the timeout");
    const partial: number[] = [];
    const it = po.forkJoin<number>(slow, { timeout: 100, timeoutException: false });
    for await (const r of it) partial.push(r.body);
    assert.deepEqual(partial, [1]);
    await assert.rejects(
      po.forkJoin([{ to: "no.such" }], { timeout: 100 }).next(),
      RouteNotFoundError,
    );
  });

  it("gives every error one base class with a code and a status", async () => {
    const p = testPlatform();
    const po = new PostOffice({}, p);
    const e = await po.request({ to: "no.where" }, { timeout: 100 }).catch((e) => e);
    assert.ok(e instanceof MinimeshError);
    assert.deepEqual([e.name, e.code, e.status], ["RouteNotFoundError", "ROUTE_NOT_FOUND", 404]);
    p.register("o.never", () => new Promise(() => {}));
    const t = await po.request({ to: "o.never" }, { timeout: 20 }).catch((e) => e);
    assert.ok(t instanceof RequestTimeoutError);
    assert.deepEqual([t.name, t.code, t.status], ["RequestTimeoutError", "TIMEOUT", 408]);
    assert.equal(new AppError(418, "teapot").code, "APP_ERROR");
  });
});

describe("broadcast and exists", () => {
  it("broadcast delivers locally once without a mesh, tagged as a broadcast", async () => {
    const p = testPlatform();
    const got: string[] = [];
    p.register("b.cache", (_h, body, _i, event) => {
      got.push(`${body}:${event.tags.broadcast}`);
    }, 4);
    await new PostOffice({}, p).broadcast({ to: "b.cache", body: "k1" });
    await sleep(5);
    assert.deepEqual(got, ["k1:1"]);
    await assert.rejects(new PostOffice({}, p).broadcast({ to: "b.none" }), RouteNotFoundError);
  });

  it("exists is true only when every route exists", () => {
    const p = testPlatform();
    p.register("e.one", () => 1);
    p.registerPrivate("e.two", () => 2);
    const po = new PostOffice({}, p);
    assert.equal(po.exists("e.one"), true);
    assert.equal(po.exists("e.one", "e.two"), true);
    assert.equal(po.exists("e.one", "e.three"), false);
    assert.equal(po.exists(), false);
    assert.equal(po.exists(p.origin), true);
    assert.equal(po.exists("20200101" + "a".repeat(32)), false);
  });
});

describe("trace propagation", () => {
  it("carries route, trace id, trace path and correlation into nested calls", async () => {
    const p = testPlatform();
    p.register("t.inner", (headers, _b, _i, event) => ({
      headers,
      from: event.from,
      traceId: event.traceId,
      tracePath: event.tracePath,
      span: event.spanId,
    }));
    p.register("t.outer", async (headers) => {
      const po = new PostOffice(headers, p);
      return (await po.request({ to: "t.inner" }, 1000)).body;
    });
    const edge = new PostOffice(
      { my_route: "http.edge", my_trace_id: "trace-1", my_trace_path: "GET /api/x" },
      p,
    );
    const reply = await edge.request({ to: "t.outer", correlationId: "biz-1" }, 1000);
    const inner = reply.body as Record<string, unknown>;
    assert.deepEqual(inner.headers, {
      my_route: "t.inner",
      my_trace_id: "trace-1",
      my_trace_path: "GET /api/x",
    });
    assert.equal(inner.from, "t.outer");
    assert.equal(inner.traceId, "trace-1");
    assert.equal(inner.tracePath, "GET /api/x");
    assert.match(inner.span as string, /^[0-9a-f]{16}$/);
    assert.equal(reply.traceId, "trace-1");
  });

  it("passes the business correlation id as my_correlation_id", async () => {
    const p = testPlatform();
    p.register("t.cid", (headers) => headers.my_correlation_id ?? null);
    p.register("t.first", async (headers) => {
      const po = new PostOffice(headers, p);
      return (await po.request({ to: "t.cid" }, 1000)).body;
    });
    const po = new PostOffice({ my_correlation_id: "order-9" }, p);
    assert.equal((await po.request({ to: "t.first" }, 1000)).body, "order-9");
  });

  it("does not start a trace by itself", async () => {
    const p = testPlatform();
    p.register("t.none", (_h, _b, _i, e) => [e.traceId ?? null, e.spanId ?? null]);
    const reply = await new PostOffice({}, p).request({ to: "t.none" }, 1000);
    assert.deepEqual(reply.body, [null, null]);
  });

  it("a function's AppError reaches the caller with its status", async () => {
    const p = testPlatform();
    p.register("t.deny", () => {
      throw new AppError(401, "who are you");
    });
    const reply = await new PostOffice({}, p).request({ to: "t.deny" }, 1000);
    assert.deepEqual([reply.status, reply.error], [401, "who are you"]);
  });
});
