/**
 * `deno task java:failover`: one mesh with Java Mercury through monitor failures (issue 34,
 * docs/java.md). Builds Mercury's kafka-presence, lambda-example and rest-spring-4-example with
 * Maven, then runs real processes on the development broker and counts what went wrong.
 *
 * ```sh
 * deno task java:failover build <mercury-composable checkout>   # mvn install, a JDK >= 21
 * deno task java:failover run [--scenario all|start|restart|failover] [--runs 3]
 *                             [--kinds mixed,java,ts] [--out results.json]
 * ```
 *
 * Scenarios (each on topics of its own):
 * - `start`: a Java monitor with apps; a TypeScript monitor starts and an app joins through it at
 *   once. Checked: the TypeScript monitor knew the Java monitor when it became ready, and the
 *   Java monitor logged no ERROR from then on.
 * - `restart`: a Java monitor (A) and a TypeScript one (B); TypeScript apps list B first, a Java
 *   app uses A. kill -9 of B: A leases the TypeScript apps new partitions. A new B starts, and at
 *   once an app joins through it alone. Watched for 70 s.
 * - `failover`: monitors A and B (`mixed`: Java A, TypeScript B; `java`: both Java; `ts`: both
 *   TypeScript), three TypeScript apps (lambda-example, rest-example, a probe) listing B first,
 *   two Java apps (lambda-example, rest-spring-4-example) listing A first; four request loops
 *   (both rest apps' `GET /api/pojo/mesh/1`, whose `hello.pojo` either lambda-example serves; Event
 *   over HTTP through the TypeScript rest app to `hello.declarative`, which only Java serves, and
 *   to the probe's `demo.echo`: TypeScript to TypeScript); kill -9 of A, 30 s, A again, 20 s,
 *   kill -9 of B, 30 s (each kill up to a second later, at random). Per window: failed requests
 *   and the longest time a loop went without an answer.
 *
 * In every scenario: a partition read by two apps shows as `Skipping record ... belongs to` in
 * an app's log (every app gets requests or replies all along), or as two apps naming one
 * partition in the same sample (TypeScript apps' `/info/routes`, Java apps' `Subscribed` lines).
 *
 * Environment: `MERCURY_HOME` (the checkout with the built jars; default `../mercury` beside
 * this repository), `JAVA` (a java >= 21; default `$JAVA_HOME/bin/java`, else the first
 * `/usr/lib/jvm/*25*`), `KAFKA_BROKERS` (default `127.0.0.1:9092`), `MINIMESH_DIR` (the minimesh
 * checkout whose monitor and apps run, to compare versions; default this one). Without a Mercury build it
 * says so and exits 0 (CI has none: it cannot reach GitHub).
 *
 * @module
 */
import { spawn, spawnSync } from "node:child_process";
import type { ChildProcess } from "node:child_process";
import {
  createWriteStream,
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  writeFileSync,
} from "node:fs";
import { join, resolve } from "node:path";
import process from "node:process";
import { parseArgs } from "node:util";
import { Platform, PostOffice } from "../mod.ts";

const ROOT = resolve(import.meta.dirname!, "..");
/** The minimesh checkout whose monitor and apps run (another version, to compare). */
const UNDER_TEST = resolve(process.env.MINIMESH_DIR ?? ROOT);
const MERCURY = resolve(process.env.MERCURY_HOME ?? join(ROOT, "..", "mercury"));
const BROKERS = process.env.KAFKA_BROKERS ?? "127.0.0.1:9092";
const JARS = {
  monitor: "connectors/adapters/kafka/kafka-presence/target/kafka-presence-4.11.10.jar",
  lambda: "examples/lambda-example/target/lambda-example-4.11.10.jar",
  rest: "examples/rest-spring-4-example/target/rest-spring-4-example-4.11.10.jar",
};
const MODULES = [
  "connectors/adapters/kafka/kafka-presence",
  "examples/lambda-example",
  "examples/rest-spring-4-example",
];
const DENO = process.execPath;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function javaBinary(): string | undefined {
  if (process.env.JAVA) return process.env.JAVA;
  if (process.env.JAVA_HOME) {
    const j = join(process.env.JAVA_HOME, "bin", "java");
    if (javaVersion(j) >= 21) return j;
  }
  const jvm = "/usr/lib/jvm";
  const dirs = existsSync(jvm) ? readdirSync(jvm).filter((d) => /25/.test(d)) : [];
  return dirs.map((d) => join(jvm, d, "bin", "java")).find((j) => javaVersion(j) >= 21);
}

function javaVersion(java: string): number {
  const r = spawnSync(java, ["-version"], { encoding: "utf8" });
  const m = /version "(\d+)/.exec(`${r.stderr}`);
  return m ? Number(m[1]) : 0;
}

// ---- processes ----

interface Proc {
  name: string;
  child: ChildProcess;
  log: string;
  started: number;
}

const procs: Proc[] = [];

function start(name: string, dir: string, cmd: string, args: string[], cwd = UNDER_TEST): Proc {
  const log = join(dir, `${name}.log`);
  const out = createWriteStream(log, { flags: "a" });
  const child = spawn(cmd, args, { cwd, stdio: ["ignore", "pipe", "pipe"] });
  child.stdout!.pipe(out);
  child.stderr!.pipe(out);
  const p = { name, child, log, started: Date.now() };
  procs.push(p);
  return p;
}

function kill9(p: Proc): void {
  p.child.kill("SIGKILL");
}

async function stopAll(): Promise<void> {
  for (const p of procs.splice(0)) {
    if (p.child.exitCode === null && p.child.signalCode === null) p.child.kill("SIGKILL");
  }
  await sleep(500);
}

function logOf(p: Proc): string {
  try {
    return readFileSync(p.log, "utf8");
  } catch {
    return "";
  }
}

interface Mesh {
  dir: string;
  monitorTopic: string;
  prefix: string;
  java: string;
}

function monitorUrls(ports: number[]): string {
  return ports.map((p) => `ws://127.0.0.1:${p}/ws/presence`).join(",");
}

function javaMonitor(m: Mesh, name: string, port: number): Proc {
  return start(name, m.dir, m.java, [
    `-Dserver.port=${port}`,
    `-Dcloud.client.properties=file:${m.dir}/kafka.properties`,
    "-Dkafka.replication.factor=1",
    `-Dmonitor.topic=${m.monitorTopic}`,
    `-Dapp.topic.prefix=${m.prefix}`,
    "-jar",
    join(MERCURY, JARS.monitor),
  ]);
}

function tsMonitor(m: Mesh, name: string, port: number): Proc {
  return start(name, m.dir, DENO, [
    "run",
    "-A",
    "presence/main.ts",
    `-Dserver.port=${port}`,
    `-Dbootstrap.servers=${BROKERS}`,
    "-Dkafka.replication.factor=1",
    `-Dmonitor.topic=${m.monitorTopic}`,
    `-Dapp.topic.prefix=${m.prefix}`,
  ]);
}

function monitor(m: Mesh, kind: "java" | "ts", name: string, port: number): Proc {
  return kind === "java" ? javaMonitor(m, name, port) : tsMonitor(m, name, port);
}

const TS_APPS = {
  lambda: "examples/lambda_example/main.ts",
  rest: "examples/rest_example/main.ts",
  probe: "tests/fixtures/mesh_app.ts",
};

function tsApp(m: Mesh, name: string, kind: keyof typeof TS_APPS, port: number, ports: number[]) {
  return start(name, m.dir, DENO, [
    "run",
    "-A",
    TS_APPS[kind],
    `-Dapplication.name=${kind === "probe" ? "ts-probe" : `${kind}-example`}`,
    `-Dserver.port=${port}`,
    "-Dcloud.connector=kafka",
    `-Dpresence.url=${monitorUrls(ports)}`,
    `-Dbootstrap.servers=${BROKERS}`,
    `-Dmonitor.topic=${m.monitorTopic}`,
  ]);
}

function javaApp(m: Mesh, name: string, kind: "lambda" | "rest", port: number, ports: number[]) {
  const presence = join(m.dir, `${name}.presence.properties`);
  writeFileSync(presence, `url=${monitorUrls(ports)}\n`);
  const ports_ = kind === "lambda"
    ? [`-Drest.server.port=${port}`]
    : [`-Dserver.port=${port}`, `-Dwebsocket.server.port=${port + 1000}`];
  return start(name, m.dir, m.java, [
    ...ports_,
    "-Dcloud.connector=kafka",
    `-Dpresence.properties=file:${presence}`,
    `-Dcloud.client.properties=file:${m.dir}/kafka.properties`,
    `-Dmonitor.topic=${m.monitorTopic}`,
    "-Dlog.format=text",
    "-jar",
    join(MERCURY, kind === "lambda" ? JARS.lambda : JARS.rest),
  ]);
}

function newMesh(java: string, out: string, name: string): Mesh {
  const tag = `jf${crypto.randomUUID().slice(0, 6)}`;
  const dir = join(out, `${name}-${tag}`);
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, "kafka.properties"), `bootstrap.servers=${BROKERS}\n`);
  return { dir, monitorTopic: `${tag}.monitor`, prefix: tag, java };
}

// ---- requests ----

const caller = new Platform({ dir: "/nonexistent", env: {}, args: ["-Dlog.level=error"] });
const po = new PostOffice({ my_route: "java.failover" }, caller);

/** A request loop: each call says what went wrong, or undefined when it was answered. */
interface Loop {
  name: string;
  call: () => Promise<string | undefined>;
  results: { at: number; why?: string }[];
}

function getOk(url: string): () => Promise<string | undefined> {
  return async () => {
    const r = await fetch(url, { signal: AbortSignal.timeout(6000) });
    const text = await r.text();
    return r.status === 200 ? undefined : `${r.status} ${text.slice(0, 120)}`;
  };
}

function eventOk(port: number, to: string) {
  return async () => {
    const body = { n: Date.now() };
    const reply = await po.request({ to, body }, {
      timeout: 5000,
      url: `http://127.0.0.1:${port}/api/event`,
    });
    return reply.isError ? `${reply.status} ${reply.error?.slice(0, 120)}` : undefined;
  };
}

function runLoops(loops: Loop[], signal: AbortSignal): Promise<void> {
  return Promise.all(loops.map(async (l) => {
    while (!signal.aborted) {
      const at = Date.now();
      const why = await l.call().catch((e) => (e as Error).message.slice(0, 120));
      l.results.push(why === undefined ? { at } : { at, why });
      await sleep(200);
    }
  })).then(() => {});
}

/**
 * The longest time without an answer in [from, to): from the start of the first failed request
 * after an answer (or `from`) to the start of the next answered one. Unlike a count of failures
 * it does not depend on how long each failure took.
 */
function longestOutage(results: Loop["results"], from: number, to: number): number {
  let longest = 0;
  let since: number | undefined;
  for (const r of results) {
    if (r.at >= to) break;
    if (r.why !== undefined) {
      if (since === undefined && r.at >= from) since = r.at;
    } else if (since !== undefined) {
      longest = Math.max(longest, r.at - since);
      since = undefined;
    }
  }
  return since === undefined ? longest : Math.max(longest, to - since);
}

// Every loop answers three times in a row (each app knows the others: a Java app that joined
// a moment ago drops replies to peers it has not heard yet).
async function warm(loops: Loop[]): Promise<void> {
  for (const l of loops) {
    let streak = 0;
    await until(
      `loop ${l.name}`,
      async () => (streak = (await l.call().catch(() => "no")) === undefined ? streak + 1 : 0) >= 3,
      180_000,
    );
  }
}

async function until(what: string, check: () => Promise<boolean> | boolean, ms: number) {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (await Promise.resolve(check()).catch(() => false)) return;
    await sleep(500);
  }
  throw new Error(`timed out waiting for ${what}`);
}

// ---- what the processes say ----

/** The partition a TypeScript app reads now, from its /info/routes. */
async function tsTopic(port: number): Promise<string | undefined> {
  const r = await fetch(`http://127.0.0.1:${port}/info/routes`, {
    signal: AbortSignal.timeout(2000),
  });
  const j = await r.json() as { network?: { topic?: unknown } };
  const topic = j.network?.topic;
  return typeof topic === "string" ? topic : undefined;
}

/**
 * The app partition a Java app subscribed last (its log's `Subscribed <topic>.<partition>` and
 * `Unsubscribed`), named as a virtual topic (`<topic>-NNN`).
 */
function javaTopic(p: Proc, prefix: string): string | undefined {
  let topic: string | undefined;
  const re = new RegExp(`(Subscribed|Unsubscribed) (${prefix}\\.\\d{4})\\.(\\d+)\\b`, "g");
  for (const m of logOf(p).matchAll(re)) {
    topic = m[1] === "Subscribed" ? `${m[2]}-${m[3].padStart(3, "0")}` : undefined;
  }
  return topic;
}

interface Samples {
  shared: string[];
}

async function sampleTopics(
  apps: { p: Proc; port: number; ts: boolean }[],
  prefix: string,
  into: Samples,
): Promise<void> {
  const seen = new Map<string, string>();
  for (const a of apps) {
    if (a.p.child.exitCode !== null || a.p.child.signalCode !== null) continue;
    const t = a.ts ? await tsTopic(a.port).catch(() => undefined) : javaTopic(a.p, prefix);
    if (t === undefined) continue;
    const other = seen.get(t);
    if (other !== undefined) {
      into.shared.push(`${new Date().toISOString()} ${t}: ${other}, ${a.p.name}`);
    }
    seen.set(t, a.p.name);
  }
}

function skipping(ps: Proc[]): number {
  return ps.reduce(
    (n, p) => n + (logOf(p).match(/Skipping record \S+:? (because )?it belongs to/g)?.length ?? 0),
    0,
  );
}

function javaErrors(ps: Proc[], since = 0): string[] {
  const out: string[] = [];
  for (const p of ps) {
    for (const line of logOf(p).split("\n")) {
      const m = /^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+) ERROR (.*)$/.exec(line);
      if (m && Date.parse(m[1].replace(" ", "T")) >= since) {
        out.push(`${p.name}: ${m[2].slice(0, 200)}`);
      }
    }
  }
  return out;
}

function monitorLines(ps: Proc[], re: RegExp): string[] {
  return ps.flatMap((p) =>
    logOf(p).split("\n").filter((l) => re.test(l)).map((l) => `${p.name}: ${l.slice(0, 200)}`)
  );
}

// ---- scenarios ----

const P = { a: 18180, b: 18181 };
const PORTS = {
  tsLambda: 18185,
  tsRest: 18183,
  tsProbe: 18187,
  javaLambda: 18195,
  javaRest: 18193,
  tsLate: 18189,
};

async function scenarioStart(java: string, out: string) {
  const m = newMesh(java, out, "start");
  try {
    const a = javaMonitor(m, "java-monitor-a", P.a);
    await until("the Java monitor", () => logOf(a).includes("Registered monitor (me)"), 90_000);
    const jl = javaApp(m, "java-lambda", "lambda", PORTS.javaLambda, [P.a]);
    const tl = tsApp(m, "ts-lambda", "lambda", PORTS.tsLambda, [P.a]);
    await until(
      "apps through the Java monitor",
      async () =>
        (await tsTopic(PORTS.tsLambda)) !== undefined && javaTopic(jl, m.prefix) !== undefined,
      90_000,
    );
    const t0 = Date.now();
    const b = tsMonitor(m, "ts-monitor-b", P.b);
    const late = tsApp(m, "ts-late", "probe", PORTS.tsLate, [P.b]);
    await until(
      "the app through the new monitor",
      async () => (await tsTopic(PORTS.tsLate)) !== undefined,
      60_000,
    );
    await sleep(25_000); // a Java monitor_alive round, and one of the TypeScript monitor's
    const bLog = logOf(b);
    const readyAt = bLog.indexOf(" ready: ");
    const javaAt = bLog.indexOf("a Java monitor: leases are given under its RSVP lock");
    const samples: Samples = { shared: [] };
    await sampleTopics(
      [{ p: jl, port: 0, ts: false }, { p: tl, port: PORTS.tsLambda, ts: true }, {
        p: late,
        port: PORTS.tsLate,
        ts: true,
      }],
      m.prefix,
      samples,
    );
    return {
      javaKnownBeforeReady: javaAt >= 0 && readyAt >= 0 && javaAt < readyAt,
      // The Java monitor saw the TypeScript monitor's round of the lock (its bid came first).
      joinedUnderLock: /Monitor \(peer\) \S+ starts RSVP/.test(logOf(a)),
      javaErrorsSinceStart: javaErrors([a], t0),
      shared: samples.shared,
      skipping: skipping([jl, tl, late]),
    };
  } finally {
    await stopAll();
  }
}

async function scenarioRestart(java: string, out: string) {
  const m = newMesh(java, out, "restart");
  const loopsStop = new AbortController();
  try {
    const a = javaMonitor(m, "java-monitor-a", P.a);
    let b = tsMonitor(m, "ts-monitor-b", P.b);
    await until(
      "both monitors",
      () => logOf(a).includes("Registered monitor (me)") && logOf(b).includes(" ready: "),
      90_000,
    );
    const tl = tsApp(m, "ts-lambda", "lambda", PORTS.tsLambda, [P.b, P.a]);
    const tr = tsApp(m, "ts-rest", "rest", PORTS.tsRest, [P.b, P.a]);
    const jl = javaApp(m, "java-lambda", "lambda", PORTS.javaLambda, [P.a]);
    const apps = [
      { p: tl, port: PORTS.tsLambda, ts: true },
      { p: tr, port: PORTS.tsRest, ts: true },
      { p: jl, port: 0, ts: false },
    ];
    await until(
      "the apps",
      async () =>
        (await tsTopic(PORTS.tsLambda)) !== undefined &&
        (await tsTopic(PORTS.tsRest)) !== undefined && javaTopic(jl, m.prefix) !== undefined,
      120_000,
    );
    const loops: Loop[] = [
      {
        name: "TS rest",
        call: getOk(`http://127.0.0.1:${PORTS.tsRest}/api/pojo/mesh/1`),
        results: [],
      },
    ];
    await warm(loops);
    const running = runLoops(loops, loopsStop.signal);
    await sleep(5000);
    const before = [await tsTopic(PORTS.tsLambda), await tsTopic(PORTS.tsRest)];
    kill9(b);
    const killedAt = Date.now();
    await until("the TypeScript apps moved by the Java monitor", async () => {
      const now = [
        await tsTopic(PORTS.tsLambda).catch(() => undefined),
        await tsTopic(PORTS.tsRest).catch(() => undefined),
      ];
      return now[0] !== undefined && now[1] !== undefined && now[0] !== before[0] &&
        now[1] !== before[1];
    }, 60_000).catch(() => {});
    const movedAfterMs = Date.now() - killedAt;
    const after = [await tsTopic(PORTS.tsLambda), await tsTopic(PORTS.tsRest)];
    b = tsMonitor(m, "ts-monitor-b2", P.b);
    const late = tsApp(m, "ts-late", "probe", PORTS.tsLate, [P.b]);
    apps.push({ p: late, port: PORTS.tsLate, ts: true });
    const samples: Samples = { shared: [] };
    const end = Date.now() + 70_000;
    while (Date.now() < end) {
      await sampleTopics(apps, m.prefix, samples);
      await sleep(1000);
    }
    loopsStop.abort();
    await running;
    return {
      before,
      after,
      movedAfterMs,
      late: await tsTopic(PORTS.tsLate).catch(() => undefined),
      shared: samples.shared,
      skipping: skipping(apps.map((x) => x.p)),
      alreadyAssigned: monitorLines([a], /already assigned|Topic already/),
      javaErrors: javaErrors([a], killedAt),
      failed: loops[0].results.filter((r) => r.why).map((r) =>
        `${new Date(r.at).toISOString()} ${r.why}`
      ),
      requests: loops[0].results.length,
    };
  } finally {
    loopsStop.abort();
    await stopAll();
  }
}

async function scenarioFailover(java: string, out: string, kind: "mixed" | "java" | "ts") {
  const m = newMesh(java, out, `failover-${kind}`);
  const loopsStop = new AbortController();
  const kindA = kind === "ts" ? "ts" : "java";
  const kindB = kind === "java" ? "java" : "ts";
  try {
    const monitors = [monitor(m, kindA, "monitor-a", P.a), monitor(m, kindB, "monitor-b", P.b)];
    const kindOf = (p: Proc) => (p.name.startsWith("monitor-a") ? kindA : kindB);
    const up = (p: Proc) =>
      logOf(p).includes(kindOf(p) === "java" ? "Registered monitor (me)" : " ready: ");
    await until("both monitors", () => monitors.every(up), 90_000);
    const tl = tsApp(m, "ts-lambda", "lambda", PORTS.tsLambda, [P.b, P.a]);
    const tr = tsApp(m, "ts-rest", "rest", PORTS.tsRest, [P.b, P.a]);
    const tp = tsApp(m, "ts-probe", "probe", PORTS.tsProbe, [P.b, P.a]);
    const jl = javaApp(m, "java-lambda", "lambda", PORTS.javaLambda, [P.a, P.b]);
    const jr = javaApp(m, "java-rest", "rest", PORTS.javaRest, [P.a, P.b]);
    const apps = [
      { p: tl, port: PORTS.tsLambda, ts: true },
      { p: tr, port: PORTS.tsRest, ts: true },
      { p: tp, port: PORTS.tsProbe, ts: true },
      { p: jl, port: 0, ts: false },
      { p: jr, port: 0, ts: false },
    ];
    const loops: Loop[] = [
      {
        name: "TS rest (hello.pojo)",
        call: getOk(`http://127.0.0.1:${PORTS.tsRest}/api/pojo/mesh/1`),
        results: [],
      },
      {
        name: "Java rest (hello.pojo)",
        call: getOk(`http://127.0.0.1:${PORTS.javaRest}/api/pojo/mesh/1`),
        results: [],
      },
      {
        name: "TS -> Java (hello.declarative)",
        call: eventOk(PORTS.tsRest, "hello.declarative"),
        results: [],
      },
      { name: "TS -> TS (demo.echo)", call: eventOk(PORTS.tsRest, "demo.echo"), results: [] },
    ];
    await warm(loops);
    const running = runLoops(loops, loopsStop.signal);
    const samples: Samples = { shared: [] };
    const sampling = (async () => {
      while (!loopsStop.signal.aborted) {
        await sampleTopics(apps, m.prefix, samples);
        await sleep(1000);
      }
    })();
    await sleep(5000);
    const windows: { killed: string; from: number; to: number }[] = [];
    // A Java monitor hands out partitions on a 1-s tick (3 s after the last bid): where a kill
    // falls against it decides up to five requests. A random phase makes runs comparable.
    await sleep(Math.random() * 1000);
    kill9(monitors[0]);
    windows.push({ killed: "a", from: Date.now(), to: Date.now() + 30_000 });
    await sleep(30_000);
    monitors.push(monitor(m, kindA, "monitor-a2", P.a));
    await sleep(20_000 + Math.random() * 1000);
    kill9(monitors[1]);
    windows.push({ killed: "b", from: Date.now(), to: Date.now() + 30_000 });
    await sleep(30_000);
    loopsStop.abort();
    await Promise.all([running, sampling]);
    const javaMonitors = monitors.filter((p) => kindOf(p) === "java");
    return {
      kind,
      windows: windows.map((w) => ({
        killed: w.killed === "a" ? `A (${kindA})` : `B (${kindB})`,
        loops: Object.fromEntries(loops.map((l) => {
          const inWindow = l.results.filter((r) => r.at >= w.from && r.at < w.to);
          return [l.name, {
            failed: inWindow.filter((r) => r.why).length,
            why: [...new Set(inWindow.flatMap((r) => r.why ? [r.why] : []))].slice(0, 5),
            requests: inWindow.length,
            longestOutageMs: longestOutage(l.results, w.from, w.to),
          }];
        })),
      })),
      shared: samples.shared,
      skipping: skipping(apps.map((x) => x.p)),
      javaMonitorErrors: javaErrors(javaMonitors),
    };
  } finally {
    loopsStop.abort();
    await stopAll();
  }
}

// ---- commands ----

const USAGE =
  "Usage: deno task java:failover build <mercury checkout> | run [--scenario all|start|restart|failover] [--runs 3] [--kinds mixed,java,ts] [--out file.json]";
const parsed = parseArgs({
  args: process.argv.slice(2),
  allowPositionals: true,
  options: {
    scenario: { type: "string", default: "all" },
    runs: { type: "string", default: "3" },
    kinds: { type: "string", default: "mixed,java,ts" },
    out: { type: "string" },
  },
});
const [command, arg] = parsed.positionals;
const java = javaBinary();
if (command === "build") {
  const src = resolve(arg ?? MERCURY);
  if (java === undefined) {
    console.error("No JDK >= 21 found: set JAVA_HOME");
    process.exit(1);
  }
  const javaHome = resolve(java, "..", "..");
  console.log(`Building ${MODULES.join(", ")} in ${src} with ${javaHome}`);
  const r = spawnSync("mvn", [
    "-B",
    "-q",
    "-DskipTests",
    "-Dmaven.javadoc.skip=true",
    "install",
    "-pl",
    MODULES.join(","),
    "-am",
  ], {
    cwd: src,
    stdio: "inherit",
    env: { ...process.env, JAVA_HOME: javaHome, PATH: `${javaHome}/bin:${process.env.PATH}` },
  });
  process.exit(r.status ?? 1);
} else if (command === "run") {
  const missing = Object.values(JARS).filter((j) => !existsSync(join(MERCURY, j)));
  if (missing.length > 0 || java === undefined) {
    console.log(
      `skipped: no Mercury 4.11.10 build in ${MERCURY} (${
        missing.join(", ") || "no JDK >= 21"
      }); build it with: deno task java:failover build <checkout>`,
    );
    process.exit(0);
  }
  const out = join(ROOT, ".scratch", "java-failover");
  mkdirSync(out, { recursive: true });
  const results: Record<string, unknown[]> = {};
  const scenarios = parsed.values.scenario === "all"
    ? ["start", "restart", "failover"]
    : [parsed.values.scenario];
  const runs = Number(parsed.values.runs);
  const save = () =>
    parsed.values.out && writeFileSync(parsed.values.out, JSON.stringify(results, null, 2));
  process.on("SIGINT", () => stopAll().finally(() => process.exit(130)));
  try {
    for (const s of scenarios) {
      const kinds = s === "failover"
        ? parsed.values.kinds.split(",") as ("mixed" | "java" | "ts")[]
        : [undefined];
      for (const kind of kinds) {
        const key = kind ? `${s}-${kind}` : s;
        results[key] = [];
        for (let i = 1; i <= runs; i++) {
          console.log(`== ${key}, run ${i} of ${runs}`);
          const r = s === "start"
            ? await scenarioStart(java, out)
            : s === "restart"
            ? await scenarioRestart(java, out)
            : await scenarioFailover(java, out, kind!);
          console.log(JSON.stringify(r, null, 2));
          results[key].push(r);
          save();
        }
      }
    }
  } finally {
    await stopAll();
  }
  process.exit(0);
} else {
  console.error(USAGE);
  process.exit(2);
}
