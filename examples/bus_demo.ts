/**
 * A walk through the in-memory event bus (no mesh: `cloud.connector=none`).
 *
 * `deno task demo:bus`, or `deno run -A examples/bus_demo.ts`. It registers a few functions,
 * then sends, requests, forks and joins, broadcasts, shows an error reply and a timeout, and
 * prints what happened.
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

// greeting.make greets a name, or answers a 400 error for a missing one.
let greetings = 0;
interface Greeting {
  text: string;
  instance: number;
  count: number;
}
platform.register<unknown, Greeting>("greeting.make", (headers, _body, instance) => {
  if (!headers.name) throw new AppError(400, "Missing header name");
  return { text: `Hello, ${headers.name}!`, instance, count: ++greetings };
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

const hello = await po.request({ to: "hello.world", headers: { a: "b" }, body: "hi" }, {
  timeout: 3000,
});
console.log("request hello.world ->", JSON.stringify(hello.body));
console.log(
  `  status ${hello.status}, exec ${hello.execTime} ms, round trip ${hello.roundTrip} ms`,
);

const greeting = await po.request<Greeting>(
  new EventEnvelope({ to: "greeting.make" }).setHeader("name", "Ada"),
  { timeout: 3000 },
);
console.log("request greeting.make name=Ada ->", JSON.stringify(greeting.body));

const bad = await po.request({ to: "greeting.make" }, { timeout: 3000 });
console.log(`request greeting.make without a name -> error ${bad.status}: ${bad.error}`);

const names = ["Ann", "Bo", "Cy"].map((name, i) => ({
  to: "greeting.make",
  headers: { name },
  correlationId: `c${i + 1}`,
}));
const many = await po.request<Greeting>(names, { timeout: 3000 });
console.log(
  "fork-and-join of 3 ->",
  many.map((r) => `${r.correlationId}: ${r.body.text}`).join(", "),
);
const arrived: string[] = [];
for await (const r of po.forkJoin<Greeting>(names, { timeout: 3000 })) {
  arrived.push(r.correlationId!);
}
console.log("the same, as the replies arrive ->", arrived.join(", "));

await po.broadcast({ to: "cache.invalidate", body: { key: "session-42" } });

try {
  await po.request({ to: "demo.sleepy" }, { timeout: 200 });
} catch (e) {
  console.log(`request demo.sleepy -> ${(e as Error).name}: ${(e as Error).message}`);
}
try {
  await po.request({ to: "demo.sleepy" }, { timeout: 5000, signal: AbortSignal.timeout(50) });
} catch (e) {
  console.log(`request demo.sleepy, aborted by its signal -> ${(e as Error).name}`);
}
try {
  await po.send({ to: "no.such.route" });
} catch (e) {
  console.log(`send no.such.route -> ${(e as Error).message}`);
}
console.log("\nRoutes:", platform.routes().map((r) => `${r.route} (${r.instances})`).join(", "));
