// The mesh across hosts, under faults of the network (issue 35): a bed of network namespaces
// (tests/_bed.ts) holds a 3-broker KRaft cluster (replication 3, min ISR 2, acks=all), two
// monitors, two workers and a caller, each on a host of its own. Under a steady load of requests
// and events (tests/fixtures/bed_app.ts), one fault at a time: a host cut off, a broker host
// lost, a monitor host lost, a minority partition, a one-way partition, a slow and lossy link, a
// flapping link. The histories of every process are checked (tests/_history.ts): nothing
// acknowledged lost, nothing executed or handled twice, no reply to a wrong caller, no lease
// held twice, no request executed twice unless it was retried (the caller asks for retries), no
// failed request unless Kafka took no write on its way within its timeout, or opened it too late
// for a round trip (a probe writes to the apps' partitions from outside the mesh,
// tests/_write_probe.ts), and every routing table whole within 10 s of the heal. The table it
// prints is docs/scale.md's.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import process from "node:process";
import { devBroker, startKafka, stopKafka } from "../../scripts/kafka_dev.ts";
import { Bed, bedUnavailable } from "../_bed.ts";
import type { BedHost } from "../_bed.ts";
import { check } from "../_history.ts";
import type { Report } from "../_history.ts";
import { topicsFor } from "../_presence.ts";
import { spawnDeno, stopAll } from "../_processes.ts";
import type { DenoProcess } from "../_processes.ts";
import { sleep } from "../_helpers.ts";
import { WriteProbe } from "../_write_probe.ts";
import { PlatformaticLink } from "../../kafka/platformatic/link.ts";

const skip = bedUnavailable();
const MONITOR_PORT = 8080;
/** The caller's request timeout: the library's default, and the monitors' hung timeout. */
const REQUEST_TIMEOUT_MS = 10_000;
/**
 * What a request needs after its way through Kafka opens again: a request and its reply are two
 * writes, one after the other, behind what the stall held back (after the bed's 10-s stalls the
 * requests sent during them were answered 45-340 ms, p50, after Kafka took writes again).
 */
const RESUME_MS = 1000;
const topics = topicsFor("hosts");
let bed: Bed;
let cluster: ReturnType<typeof devBroker>;
let probeLink: PlatformaticLink | undefined;
let probe: WriteProbe | undefined;
const processes = new Map<string, DenoProcess>();
/**
 * Per fault: what was sent from the end of the previous window to when the mesh was calm again
 * after its heal (`window`; see fault()), and what it cost.
 */
const rows: {
  fault: string;
  /** When the fault began. */
  from: number;
  window: [number, number];
  report: Report;
  healedAt: number;
  healedAfterMs: number;
  tableAfterMs: number;
  /** From the heal to the start of the calm stretch that ends the window; -1: none came. */
  calmAfterMs: number;
}[] = [];

function hosts(...names: string[]): BedHost[] {
  return names.map((n) => bed.host(n));
}

function common(): string[] {
  const monitors = hosts("m1", "m2").map((m) => `ws://${m.addr}:${MONITOR_PORT}/ws/presence`);
  return [
    ...topics.args,
    `-Dbootstrap.servers=${cluster.brokers}`,
    "-Dkafka.replication.factor=3",
    "-Dacks=all",
    `-Dpresence.url=${monitors.join(",")}`,
    "-Dlog.level=info",
  ];
}

async function startMonitor(name: string): Promise<void> {
  const h = bed.host(name);
  const p = spawnDeno("presence/main.ts", [
    ...common(),
    `-Dserver.host=${h.addr}`,
    `-Dserver.port=${MONITOR_PORT}`,
  ], { netns: h.netns, name });
  processes.set(name, p);
  await p.waitFor(/Presence monitor \w+ ready/, 90_000);
}

async function startApp(name: string, role: "worker" | "caller"): Promise<void> {
  const h = bed.host(name);
  const p = spawnDeno("tests/fixtures/bed_app.ts", [
    ...common(),
    "-Dcloud.connector=kafka",
    `-Dapplication.name=${name}`,
    `-Dbed.role=${role}`,
    // A silent host is dropped within presence.hung.timeout (10 s), with a fifth to spare:
    // requests of that timeout waiting on it are retried on the other worker in time.
    "-Dbed.retry=true",
    `-Dbed.timeout.ms=${REQUEST_TIMEOUT_MS}`,
  ], { netns: h.netns, name });
  processes.set(name, p);
  await p.waitFor(/ JOINED /, 90_000);
}

const APPS = ["w1", "w2", "c1"];

function histories() {
  return [...processes].map(([name, p]) => ({ name, lines: p.logs }));
}

/** The origins of the workers (from their JOINED lines). */
function workerOrigins(): string {
  return ["w1", "w2"].map((w) =>
    / JOINED (\w+)/.exec(processes.get(w)!.logs.find((l) => / JOINED /.test(l))!)![1]
  ).sort().join(",");
}

/** The last TABLE line of `app` at or before `at`. */
function tableAt(app: string, at: number): string | undefined {
  let last: string | undefined;
  for (const l of processes.get(app)!.logs) {
    const m = /^(\d{13}) TABLE ?(.*)$/.exec(l);
    if (m && Number(m[1]) <= at) last = m[2];
  }
  return last;
}

/** The virtual topic `app` held at `at` (from its JOINED and TOPIC lines). */
function leaseAt(app: string, at: number): string | undefined {
  let lease: string | undefined;
  for (const l of processes.get(app)!.logs) {
    const m = /^(\d{13}) (?:JOINED \w+|TOPIC) ?(\S*)$/.exec(l);
    if (m && Number(m[1]) <= at) lease = m[2] || undefined;
  }
  return lease;
}

/** The virtual topics the apps held at `at`. */
function leasesAt(at: number): Set<string> {
  return new Set(APPS.flatMap((a) => leaseAt(a, at) ?? []));
}

/**
 * When Kafka took a write again (probe) after `at` on a request's way (the first of the workers'
 * partitions) and on its reply's (the caller's partition).
 */
function waysOpened(at: number): { request: number; reply: number } {
  const opened = (p: string | undefined) => p === undefined ? Infinity : probe!.openedAt(p, at);
  return {
    request: Math.min(...["w1", "w2"].map((w) => opened(leaseAt(w, at)))),
    reply: opened(leaseAt("c1", at)),
  };
}

/**
 * Why a request sent at `at` may fail although the mesh did all it could, as measured by the
 * probe: Kafka took no write within its timeout on the caller's partition (the reply's way) or
 * on every worker's (the request's way); or the two ways were not both open RESUME_MS before
 * its timeout (a reply goes out once the request is in, and only once its own way is open too).
 * Undefined: a way was there.
 */
function kafkaBlocked(at: number): string | undefined {
  const to = at + REQUEST_TIMEOUT_MS;
  const caller = leaseAt("c1", at);
  if (caller !== undefined && probe!.blocked(caller, at, to)) return "caller's partition";
  const workers = ["w1", "w2"].map((w) => leaseAt(w, at));
  if (workers.every((p) => p !== undefined && probe!.blocked(p, at, to))) {
    return "every worker's partition";
  }
  const { request, reply } = waysOpened(at);
  if (Math.max(request, reply) + RESUME_MS > to) return "way open too late for a round trip";
  return undefined;
}

/** Where and when (ms after `at`) request `id` ran, as "w1 +4200, w2 +4900 retry". */
function executions(id: string, at: number): string {
  return ["w1", "w2"].flatMap((w) =>
    processes.get(w)!.logs.flatMap((l) => {
      const m = /^(\d{13}) EXEC (\S+) \S+( retry)?/.exec(l);
      return m && m[2] === id ? [`${w} +${Number(m[1]) - at}${m[3] ?? ""}`] : [];
    })
  ).join(", ");
}

/** When every app's table shows both workers again (ms since `from`), or -1 within `ms`. */
async function tablesWhole(from: number, ms: number): Promise<number> {
  const want = workerOrigins();
  for (const end = Date.now() + ms; Date.now() < end; await sleep(250)) {
    if (APPS.every((a) => tableAt(a, Date.now()) === want)) {
      // The first moment from which each app's table stayed whole.
      const since = APPS.map((a) => {
        let t = from;
        for (const l of processes.get(a)!.logs) {
          const m = /^(\d{13}) TABLE ?(.*)$/.exec(l);
          if (m && Number(m[1]) > from && m[2] === want) t = Number(m[1]);
          else if (m && Number(m[1]) > from) t = Infinity;
        }
        return t === Infinity ? Date.now() : t;
      });
      return Math.max(...since) - from;
    }
  }
  return -1;
}

/**
 * How long the mesh must have been calm before a fault starts, and before a fault's window ends
 * after its heal: every probe write of that stretch (but its last second) acknowledged within a
 * second, and every request the caller sent in it answered within a second.
 */
const CALM_MS = 3000;
/** A mesh not calm this long after a heal fails the suite (and the next fault does not start). */
const CALM_WITHIN_MS = 60_000;

/** Whether the CALM_MS before `now` were calm (see CALM_MS). */
function calmBefore(now: number): boolean {
  const [from, to] = [now - CALM_MS, now - 1000];
  for (const vt of leasesAt(now)) {
    if (!probe!.prompt(vt, from, to)) return false;
  }
  const okAt = new Map<string, number>();
  let answered = 0;
  const logs = processes.get("c1")!.logs;
  // Newest first (a request's OK comes before its REQ), back to the stretch's start.
  for (let i = logs.length - 1; i >= 0; i--) {
    const m = /^(\d{13}) (REQ|OK) (\S+)/.exec(logs[i]);
    if (m === null) continue;
    const at = Number(m[1]);
    if (at < from) break;
    if (m[2] === "OK") okAt.set(m[3], at);
    else if (at <= to) {
      const ok = okAt.get(m[3]);
      if (ok === undefined || ok - at > 1000) return false;
      answered++;
    }
  }
  return answered > 0;
}

/**
 * Waits until the mesh was calm for CALM_MS, all of it after `since`; when it became so, or -1
 * after CALM_WITHIN_MS.
 */
async function calm(since = Date.now()): Promise<number> {
  await sleep(since + CALM_MS - Date.now());
  for (const end = Date.now() + CALM_WITHIN_MS; Date.now() < end; await sleep(250)) {
    if (calmBefore(Date.now())) return Date.now();
  }
  return -1;
}

/**
 * Applies a fault for `holdMs`, heals it, waits for the mesh to settle; records its window: from
 * the end of the previous fault's (the first: from its fault) to when the mesh is calm again
 * after the heal, so that every request sent from the first fault on is in one window. (A
 * cluster that took no writes for 12 s after a minority partition healed once failed requests
 * of the next fault's first second: the next fault starts only once the mesh is calm.)
 */
async function fault(
  name: string,
  apply: () => (() => void) | Promise<() => void>,
  holdMs = 15_000,
): Promise<void> {
  // HOSTS_FAULTS=<words>: only the faults whose names contain one of them (to study one).
  const only = process.env.HOSTS_FAULTS?.split(",");
  if (only && !only.some((w) => name.includes(w))) return;
  assert.ok((await calm()) >= 0, `the mesh calm within ${CALM_WITHIN_MS / 1000} s before ${name}`);
  const from = Date.now();
  const heal = await apply();
  await sleep(holdMs);
  heal();
  const healedAt = Date.now();
  const tableAfterMs = await tablesWhole(healedAt, 30_000);
  const calmAt = await calm(healedAt);
  const window: [number, number] = [
    rows.at(-1)?.window[1] ?? from,
    calmAt < 0 ? Date.now() : calmAt,
  ];
  await sleep(REQUEST_TIMEOUT_MS); // requests sent up to the window's end end
  const report = check(histories(), ...window);
  const healedAfterMs = report.servedFrom === undefined ? -1 : report.servedFrom - healedAt;
  const calmAfterMs = calmAt < 0 ? -1 : calmAt - CALM_MS - healedAt;
  rows.push({
    fault: name,
    from,
    window,
    report,
    healedAt,
    healedAfterMs,
    tableAfterMs,
    calmAfterMs,
  });
  console.log(
    `${name}: ${
      JSON.stringify(
        { from, healedAt, ...report, healedAfterMs, tableAfterMs, calmAfterMs },
        (k, v) =>
          Array.isArray(v) && k !== ""
            ? (v.length > 5 ? [...v.slice(0, 5), `+${v.length - 5}`] : v)
            : v,
      )
    }`,
  );
}

describe("the mesh across hosts, under faults of the network", { skip }, () => {
  before(async () => {
    bed = Bed.create(["k1", "k2", "k3", "m1", "m2", "w1", "w2", "c1"]);
    try {
      cluster = devBroker(undefined, 19_440, {
        hosts: hosts("k1", "k2", "k3").map((h) => ({ addr: h.addr, netns: h.netns })),
        minIsr: 2,
      });
      await startKafka(cluster);
      await Promise.all([startMonitor("m1"), startMonitor("m2")]);
      await startApp("w1", "worker");
      await startApp("w2", "worker");
      await startApp("c1", "caller");
      assert.ok((await tablesWhole(Date.now(), 30_000)) >= 0, "every table whole at the start");
      probeLink = new PlatformaticLink({
        brokers: cluster.brokers.split(","),
        clientId: "write-probe",
        acks: -1,
        silenceMs: 1000, // as the apps' (kafka.silence.ms): what waits on a dead connection is renewed
      });
      probe = new WriteProbe(probeLink);
      probe.start(() => leasesAt(Date.now()));
    } catch (e) {
      await stopAll([...processes.values()]).catch(() => {});
      if (cluster) await stopKafka(cluster);
      bed.destroy();
      throw e;
    }
  });

  after(async () => {
    probe?.stop();
    await probeLink?.close().catch(() => {});
    bed?.healAll();
    await stopAll([...processes.values()]).catch(() => {});
    // HOSTS_LOGS=<dir>: every process's log, to read after a run.
    const dir = process.env.HOSTS_LOGS;
    if (dir) {
      mkdirSync(dir, { recursive: true });
      for (const [name, p] of processes) writeFileSync(join(dir, `${name}.log`), p.logs.join("\n"));
      if (probe) writeFileSync(join(dir, "probe.json"), JSON.stringify(probe.history()));
    }
    if (cluster) await stopKafka(cluster);
    bed?.destroy();
  });

  it("a worker's host cut off", () => fault("worker host cut off", () => bed.cut(bed.host("w1"))));

  it("a broker's host cut off", () => fault("broker host cut off", () => bed.cut(bed.host("k1"))));

  it("a monitor's host cut off", () =>
    fault("monitor host cut off", () => bed.cut(bed.host("m1"))));

  it("a minority partition: a broker and a monitor cut from the rest", () =>
    fault(
      "minority partition (k3, m2)",
      () => bed.partition(hosts("k3", "m2"), hosts("k1", "k2", "m1", "w1", "w2", "c1")),
    ));

  it("a one-way partition: a worker's packets to the brokers dropped", () =>
    fault(
      "one-way partition (w2 to brokers)",
      () => bed.partition(hosts("w2"), hosts("k1", "k2", "k3"), { oneWay: true }),
    ));

  it("a slow, lossy link between the apps and the brokers (200 ms, 5 % loss)", () =>
    fault("slow link (200 ms, 5 % loss)", async () => {
      const brokers = cluster.nodes.map((n) => ({ addr: n.host, port: n.port }));
      const heals = await Promise.all(hosts(...APPS).map((h) => bed.slow(h, brokers, 200, 5)));
      return () => heals.forEach((heal) => heal());
    }, 20_000));

  it("a flapping link: a worker's host down 2 s, up 3 s, four times", () =>
    fault("flapping link (w1)", async () => {
      await bed.flap(bed.host("w1"), 2000, 3000, 4);
      return () => {};
    }, 0));

  it("adds up: nothing lost, nothing twice, no wrong reply, no lease held twice, no failure Kafka does not explain, tables whole within 10 s", async () => {
    await sleep(10_000); // late arrivals
    const problems: string[] = [];
    for (const r of rows) {
      const again = check(histories(), ...r.window);
      for (
        const [what, list] of Object.entries({
          lost: again.lost,
          "executed twice (no retry)": again.executedTwice,
          "handled twice": again.handledTwice,
          "wrong replies": again.wrong,
          "leases held twice": again.leasesHeldTwice,
        })
      ) if (list.length) problems.push(`${r.fault}: ${list.length} ${what} (${list.slice(0, 3)})`);
      // A request may fail only while Kafka could take no write on its way (the caller's
      // partition, or every worker's) within its timeout: then no provider was reachable.
      const explained = new Map<string, number>();
      const unexplained: string[] = [];
      for (const f of again.failures) {
        const why = kafkaBlocked(f.at);
        if (why === undefined) {
          // When each way opened again after it (to study the case from CI's log).
          const { request, reply } = waysOpened(f.at);
          unexplained.push(
            `${f.id} ${f.status} at ${f.at - r.from} ms (request's way open +${request - f.at} ` +
              `ms, reply's +${reply - f.at} ms; ${executions(f.id, f.at) || "not run"})`,
          );
        } else explained.set(why, (explained.get(why) ?? 0) + 1);
      }
      if (unexplained.length) {
        problems.push(
          `${r.fault}: ${unexplained.length} failed requests while Kafka took writes on their way ` +
            `(${unexplained.slice(0, 3)})`,
        );
      }
      // Whole within 10 s of the heal, or of the end of Kafka's own stall after it: the tables
      // are exchanged through Kafka (after a minority partition the cluster took writes slowly
      // for 11 s, and the tables were once whole 12.3 s after the heal).
      const wholeAt = r.healedAt + r.tableAfterMs;
      const kafkaBack = Math.max(
        ...[...leasesAt(r.healedAt)]
          .map((vt) => probe!.slowUntil(vt, r.healedAt, wholeAt)),
        r.healedAt,
      );
      if (r.tableAfterMs < 0 || wholeAt - kafkaBack > 10_000) {
        // What each app's table said after the heal, to tell which peer was missing and when.
        const healedAt = r.healedAt;
        for (const a of APPS) {
          const lines = processes.get(a)!.logs.filter((l) =>
            / TABLE /.test(l) && Number(l.slice(0, 13)) > healedAt
          );
          console.log(`${r.fault}: ${a} after the heal: ${lines.join(" | ") || "no change"}`);
        }
        problems.push(
          `${r.fault}: routing tables whole only after ${r.tableAfterMs} ms (Kafka prompt again ` +
            `${kafkaBack - r.healedAt} ms after the heal)`,
        );
      }
      if (r.calmAfterMs < 0) {
        problems.push(
          `${r.fault}: the mesh not calm within ${CALM_WITHIN_MS / 1000} s of the heal`,
        );
      }
      const outage = Math.max(
        ...[...leasesAt(r.window[0])]
          .map((vt) => probe!.longestOutage(vt, r.window[0], r.window[1])),
      );
      console.log(
        `| ${r.fault} | ${again.requests} | ${again.ok} | ${JSON.stringify(again.failed)} | ` +
          `${JSON.stringify(Object.fromEntries(explained))} | ${unexplained.length} | ` +
          `${again.acked}/${again.events} | ${again.lost.length} | ` +
          `${again.executedTwice.length} | ${again.retriedTwice.length} | ` +
          `${again.handledTwice.length} | ${again.wrong.length} | ` +
          `${again.leasesHeldTwice.length} | ${(outage / 1000).toFixed(1)} s | ` +
          `${(r.tableAfterMs / 1000).toFixed(1)} s | ${(r.calmAfterMs / 1000).toFixed(1)} s |`,
      );
    }
    assert.deepEqual(problems, []);
  });
});
