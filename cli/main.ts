/**
 * `minimesh`: the mesh from a terminal. `routes`, `call` and `watch` join the mesh as one more
 * member (with the settings an application has: `presence.url`, `bootstrap.servers` or a
 * `kafka.properties`, `mesh.tokens`, from application.properties in the working folder, the
 * environment or `-D` flags) and leave it when done; `info` and `health` ask an instance's (or
 * a monitor's) HTTP endpoints.
 *
 * `deno task minimesh <command> ...`, `npx minimesh <command> ...` (npm), or
 * `deno run -A cli/main.ts <command> ...`; `--help` for each.
 *
 * @module
 */
import process from "node:process";
import { Platform } from "../bus/platform.ts";
import { PostOffice } from "../bus/post_office.ts";
import { setupLogging } from "../bus/log.ts";
import { VERSION } from "../bus/libraries.ts";
import { within } from "../bus/_within.ts";
import { runtimeProblem } from "../runtime/node_version.ts";
import { connectToCloud } from "../connector/connector.ts";
import type { KafkaConnector } from "../connector/connector.ts";

const HELP: Record<string, string> = {
  "": `minimesh ${VERSION}: the mesh from a terminal

Usage: minimesh <command> [arguments] [-Dkey=value ...]

Commands:
  routes                    the mesh's public routes, with the instances that serve them
  call <route> [json]       a request to a route (the body as JSON); prints the reply
  watch                     joins, leaves and rates of the mesh as they happen (Ctrl-C ends it)
  info [url]                an instance's /info (default: the first monitor's)
  health [url]              an instance's /health (exit 1 when DOWN)

Settings, as an application's: presence.url, bootstrap.servers (or cloud.client.properties for
a kafka.properties), mesh.tokens, closed.user.group; from application.properties in the
working folder, the environment, or -D flags. --help after a command for more.`,
  routes: `Usage: minimesh routes [-Dkey=value ...]

Joins the mesh, prints every public route with the instances that serve it (name, version,
origin), and leaves.`,
  call: `Usage: minimesh call <route> [json] [--timeout ms] [-Dkey=value ...]

Joins the mesh and sends a request to <route> (route or route@origin) with the JSON body, if
any; prints the reply as JSON (status, headers, body) and leaves. Exit code 0 for a reply
with status 200-299, 1 otherwise. --timeout: milliseconds to wait (default 10000).`,
  watch: `Usage: minimesh watch [--every s] [-Dkey=value ...]

Joins the mesh and prints each join and leave of an instance (time, name, origin) until
Ctrl-C, and every 10 s (--every: seconds) how many peers and routes it sees, the mesh's
event rate, the busiest applications' rates and the busiest routes' (requests/s and p99 as
their callers see them), from the first presence.url's monitor (GET /dashboard/state;
with api.tokens set, the first token is sent).`,
  info: `Usage: minimesh info [url] [-Dkey=value ...]

Prints GET <url>/info as JSON. Default url: the first presence.url's monitor
(ws://host:port/... becomes http://host:port).`,
  health: `Usage: minimesh health [url] [-Dkey=value ...]

Prints GET <url>/health as JSON; exit code 1 when it is not UP. Default url as for info.`,
};

/** Applications listed with their rates in each summary of `watch`, the busiest first. */
const WATCH_RATES_SHOWN = 10;

const argv = process.argv.slice(2);
const flags = argv.filter((a) => a.startsWith("-D"));
const words = argv.filter((a) => !a.startsWith("-D"));
const command = words[0] ?? "";

if (command === "--version" || words.includes("--version")) {
  console.log(VERSION);
  process.exit(0);
}
if (command === "" || command === "--help" || command === "-h" || words.includes("--help")) {
  console.log(HELP[command in HELP && command !== "--help" ? command : ""]);
  process.exit(command === "" ? 2 : 0);
}
if (!(command in HELP)) fail(`Unknown command ${command}: see minimesh --help`, 2);
const problem = runtimeProblem();
if (problem !== undefined) fail(problem);

try {
  switch (command) {
    case "routes":
      await withMesh(routes);
      break;
    case "call":
      await withMesh(call);
      break;
    case "watch":
      await withMesh(watch);
      break;
    case "info":
    case "health":
      await http(command);
      break;
  }
} catch (e) {
  fail((e as Error).message);
}
process.exit(process.exitCode ?? 0);

function fail(message: string, code = 1): never {
  console.error(message);
  process.exit(code);
}

// Joins the mesh as a member without routes of its own, runs `job`, leaves.
async function withMesh(job: (p: Platform, c: KafkaConnector) => Promise<void>): Promise<void> {
  const platform = new Platform({
    args: [...flags, "-Dcloud.connector=kafka"],
    defaults: { "application.name": "minimesh-cli", "info.app.version": VERSION },
  });
  await setupLogging(platform.config.getString("log.level", "warning"), "minimesh-cli");
  const connector = connectToCloud(platform)!;
  try {
    if (!(await within(connector.joined, 15_000))) {
      const why = connector.kafkaProblem ?? "no presence monitor answered (presence.url)";
      throw new Error(`Could not join the mesh in 15 s: ${why}`);
    }
    await job(platform, connector);
  } finally {
    await connector.stop();
  }
}

function routes(_p: Platform, c: KafkaConnector): Promise<void> {
  const rows: string[][] = [["ROUTE", "INSTANCES"]];
  for (const [route, origins] of [...c.table.routes()].sort(([a], [b]) => a < b ? -1 : 1)) {
    const who = [...origins.keys()].map((o) => {
      const peer = c.table.peer(o);
      return peer ? `${peer.name} ${peer.version} ${o}` : o;
    });
    rows.push([route, who.join("; ")]);
  }
  if (rows.length === 1) {
    console.log("No public routes in the mesh (closed user group %s)", c.settings.group);
    return Promise.resolve();
  }
  const width = Math.max(...rows.map((r) => r[0].length));
  for (const [route, who] of rows) console.log(`${route.padEnd(width)}  ${who}`);
  return Promise.resolve();
}

async function call(p: Platform): Promise<void> {
  const [, route, json] = words;
  if (!route) fail("Usage: minimesh call <route> [json] (see minimesh call --help)", 2);
  let body: unknown;
  if (json !== undefined) {
    try {
      body = JSON.parse(json);
    } catch (e) {
      fail(`The body is not JSON (${(e as Error).message}): quote it, as '{"a": 1}'`, 2);
    }
  }
  const at = argv.indexOf("--timeout");
  const timeout = at >= 0 ? Number(argv[at + 1]) : 10_000;
  const reply = await new PostOffice({}, p).request(
    { to: route, body },
    { timeout, timeoutException: false },
  );
  console.log(JSON.stringify({ status: reply.status, headers: reply.headers, body: reply.body }));
  if (reply.status < 200 || reply.status > 299) process.exitCode = 1;
}

async function watch(p: Platform, c: KafkaConnector): Promise<void> {
  const stop = new AbortController();
  process.once("SIGINT", () => stop.abort());
  process.once("SIGTERM", () => stop.abort());
  const seen = () => `${c.table.peers().length} peer(s), ${c.table.routes().size} route(s)`;
  console.log(`${new Date().toISOString()} watching: ${seen()}`);
  const at = argv.indexOf("--every");
  const every = at >= 0 ? Number(argv[at + 1]) : 10;
  if (!(every >= 1 && every <= 3600)) fail("--every takes seconds, 1 to 3600", 2);
  const base = monitorBase(p);
  // The rates come from the monitor's dashboard state (what the applications report to it).
  const summary = setInterval(async () => {
    let rates = "";
    try {
      rates = ratesLine(await getJson(p, `${base}/dashboard/state`) as WatchedState);
    } catch (e) {
      rates = ` (no rates: ${(e as Error).message})`;
    }
    console.log(`${new Date().toISOString()} ${seen()}${rates}`);
  }, every * 1000);
  try {
    for await (const e of c.lifeCycle({ signal: stop.signal })) {
      if (e.type !== "join" && e.type !== "leave") continue;
      const peer = c.table.peer(e.origin);
      const name = e.name ?? peer?.name ?? "";
      console.log(`${new Date().toISOString()} ${e.type.padEnd(5)} ${name} ${e.origin}`);
    }
  } finally {
    clearInterval(summary);
  }
}

interface WatchedState {
  mesh: { rate: number; errorRate: number };
  groups: { name: string; instances: number; rate: number; errorRate: number }[];
  routes: { route: string; rate: number | null; errorRate: number | null; p99: number | null }[];
}

// ", 12.5 events/s (0.1 errors/s); apps: a x2 10/s, ...; routes: a.b 8/s p99 3.1 ms, ...".
function ratesLine(state: WatchedState): string {
  const round = (n: number) => Math.round(n * 10) / 10;
  const errors = (n: number | null) => (n ?? 0) > 0 ? ` (${round(n ?? 0)} err/s)` : "";
  const busy = state.groups.filter((g) => g.rate > 0).sort((a, b) => b.rate - a.rate);
  const apps = busy.slice(0, WATCH_RATES_SHOWN)
    .map((g) => `${g.name} x${g.instances} ${round(g.rate)}/s${errors(g.errorRate)}`);
  if (busy.length > WATCH_RATES_SHOWN) apps.push(`+${busy.length - WATCH_RATES_SHOWN} more`);
  // The page's routes come busiest first.
  const routes = state.routes.filter((r) => (r.rate ?? 0) > 0).slice(0, WATCH_RATES_SHOWN)
    .map((r) =>
      `${r.route} ${round(r.rate ?? 0)}/s${errors(r.errorRate)}` +
      (r.p99 === null ? "" : ` p99 ${r.p99} ms`)
    );
  return `, ${round(state.mesh.rate)} events/s (${round(state.mesh.errorRate)} errors/s)` +
    (apps.length > 0 ? `; apps: ${apps.join(", ")}` : "") +
    (routes.length > 0 ? `; routes: ${routes.join(", ")}` : "");
}

// The first presence.url's monitor as an HTTP address (ws://host:port/... -> http://host:port).
function monitorBase(p: Platform): string {
  const first = (p.config.getString("presence.url") ?? "ws://127.0.0.1:8080/ws/presence")
    .split(",")[0];
  const url = new URL(first.trim());
  return `${url.protocol === "wss:" ? "https:" : "http:"}//${url.host}`;
}

// GET with the first of api.tokens as a bearer token, when set (protected endpoints need it).
async function get(p: Platform, url: string): Promise<Response> {
  const token = p.config.getList("api.tokens")[0];
  try {
    return await fetch(url, {
      signal: AbortSignal.timeout(5000),
      headers: token === undefined ? {} : { authorization: `Bearer ${token}` },
    });
  } catch (e) {
    throw new Error(`No answer from ${url}: ${(e as Error).message}`);
  }
}

async function getJson(p: Platform, url: string): Promise<unknown> {
  const res = await get(p, url);
  if (!res.ok) {
    await res.body?.cancel();
    throw new Error(`${url} answered ${res.status}`);
  }
  return await res.json();
}

async function http(what: "info" | "health"): Promise<void> {
  const p = new Platform({ args: flags });
  const base = words[1] ?? monitorBase(p);
  const res = await get(p, `${base.replace(/\/+$/, "")}/${what}`);
  const text = await res.text();
  try {
    console.log(JSON.stringify(JSON.parse(text), null, 2));
  } catch {
    console.log(text);
  }
  if (what === "health" && !res.ok) process.exitCode = 1;
}
