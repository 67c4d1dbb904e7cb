/**
 * A walk through the in-memory event bus (no mesh: `cloud.connector=none`).
 *
 * `deno task demo`, or `deno run -A examples/bus_demo.ts`. It registers the guide's
 * `hello.world` and `hello.pojo` functions, then sends, requests, forks and joins, broadcasts,
 * shows an error reply and a timeout, and prints what happened.
 *
 * @module
 */
import { AppError, EventEnvelope, Platform, PostOffice, setupLogging } from "../mod.ts";
import { getLogger } from "@logtape/logtape";

await setupLogging("info", "demo");
const log = getLogger(["demo"]);
const platform = new Platform({ dir: import.meta.dirname, args: [], env: {} });

// hello.world echoes what it got, with the instance that served it.
platform.register("hello.world", (headers, body, instance) => ({
  headers,
  body,
  instance,
  origin: platform.origin,
}), 5);

// hello.pojo returns the guide's PoJo for an id, or a 400 error for a bad one.
let seq = 0;
platform.register("hello.pojo", (headers, _body, instance) => {
  const id = Number(headers.id);
  if (!Number.isInteger(id) || id < 1) throw new AppError(400, `Invalid id "${headers.id}"`);
  return {
    id,
    name: "Simple PoJo class",
    address: "100 World Blvd, Planet Earth",
    date: new Date().toISOString(),
    instance,
    seq: ++seq,
    origin: platform.origin,
  };
}, 10);

// A private function that never answers, to show a timeout.
platform.registerPrivate("demo.sleepy", () => new Promise(() => {}));
// A broadcast listener.
platform.register("cache.invalidate", (_h, body) => {
  log.info("cache.invalidate got {body}", { body: JSON.stringify(body) });
});

// An edge PostOffice starts a trace, as an HTTP handler would.
const po = new PostOffice({
  my_route: "demo.main",
  my_trace_id: crypto.randomUUID().replaceAll("-", ""),
  my_trace_path: "GET /demo",
});
console.log(`\nOrigin ${platform.origin}, connector ${platform.cloudConnector}\n`);

const hello = await po.request({ to: "hello.world", headers: { a: "b" }, body: "hi" }, 3000);
console.log("request hello.world ->", JSON.stringify(hello.body));
console.log(
  `  status ${hello.status}, exec ${hello.execTime} ms, round trip ${hello.roundTrip} ms`,
);

const pojo = await po.request(new EventEnvelope({ to: "hello.pojo" }).setHeader("id", 1), 3000);
console.log("request hello.pojo id=1 ->", JSON.stringify(pojo.body, null, 2));

const bad = await po.request({ to: "hello.pojo", headers: { id: "x" } }, 3000);
console.log(`request hello.pojo id=x -> error ${bad.status}: ${bad.error}`);

const many = await po.request(
  [1, 2, 3].map((id) => ({
    to: "hello.pojo",
    headers: { id: String(id) },
    correlationId: `c${id}`,
  })),
  3000,
);
console.log(
  "fork-and-join of 3 ->",
  many.map((r) => `${r.correlationId}: id ${(r.body as { id: number }).id}`).join(", "),
);

await po.broadcast({ to: "cache.invalidate", body: { key: "session-42" } });

try {
  await po.request({ to: "demo.sleepy" }, 200);
} catch (e) {
  console.log(`request demo.sleepy -> ${(e as Error).name}: ${(e as Error).message}`);
}
try {
  await po.send({ to: "no.such.route" });
} catch (e) {
  console.log(`send no.such.route -> ${(e as Error).message}`);
}
console.log("\nRoutes:", platform.routes().map((r) => `${r.route} (${r.instances})`).join(", "));
