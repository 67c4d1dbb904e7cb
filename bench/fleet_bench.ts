/**
 * A fleet of mesh members (issue 35): for each size N, N full members (each its own connector,
 * lease and routing table) in P processes (`bench/_fleet_members.ts`) join at once. Measured: join
 * convergence (from the spawn, and from the last member's join, until every member's table holds
 * the N - 1 others), each idle member's CPU and memory (from /proc, over 10 s, 20 s after
 * convergence), the monitors' and the brokers'; then requests between random members for 20 s,
 * steady and with churn (5 % of the members replaced a minute, each drained, then a new one
 * joining), a broadcast (every member must get it once), and leave propagation (one process
 * stopped with SIGTERM: from the signal until each other member hears each of its members leave).
 *
 * `deno run -A bench/fleet_bench.ts [sizes, default 10,100,300] [processes, default 4]` with a
 * broker on KAFKA_BROKERS (default 127.0.0.1:9092) and one monitor, all on this host; with
 * `--bed`, on the multi-host test bed (tests/_bed.ts, root): a 3-broker KRaft cluster on three
 * hosts (replication 3, min ISR 2, acks=all), two monitors on two more, each member process on a
 * host of its own. Over 288 members the monitors are given `max.virtual.topics=320` (ten topics of
 * 32 partitions); a process's members come from one address, so the monitors' limits per address
 * are lifted, and the monitors make the topics the fleet will lease at their start
 * (`presence.topics.ahead`, as docs/scale.md advises for a fleet; `FLEET_TOPICS_AHEAD=0` leaves
 * them to be made in the storm, one ahead of the leases). `FLEET_HUNG=<s>` sets the monitors'
 * `presence.hung.timeout` (10 s by default): a process of 75 members stands still for seconds in
 * a storm, and the monitors close sessions whose pongs come late (docs/scale.md).
 *
 * @module
 */
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import process from "node:process";
import { BROKERS, topicsFor } from "../tests/_presence.ts";
import { spawnDeno } from "../tests/_processes.ts";
import type { DenoProcess } from "../tests/_processes.ts";
import { Bed } from "../tests/_bed.ts";
import { cpuMs } from "./_cpu.ts";
import { devBroker, runningPids, startKafka, stopKafka } from "../scripts/kafka_dev.ts";

// Under FLEET_DEBUG the monitors also report their event loop's holds and slowest console write.
const MONITOR_MAIN = process.env.FLEET_DEBUG ? "bench/_traced_monitor.ts" : "presence/main.ts";
const positional = process.argv.slice(2).filter((a) => !a.startsWith("--"));
const SIZES = (positional[0] ?? "10,100,300").split(",").map(Number);
const PROCESSES = Number(positional[1] ?? 4);
const ON_BED = process.argv.includes("--bed");
const MONITOR_PORT = 8080;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function rssMb(pid: number): number {
  const kb = /VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, "utf8"))?.[1];
  return Number(kb ?? 0) / 1024;
}

function quantile(xs: number[], q: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(q * s.length))] ?? NaN;
}

async function until(what: string, ok: () => boolean, ms: number): Promise<void> {
  const end = Date.now() + ms;
  while (!ok()) {
    if (Date.now() > end) throw new Error(`timed out (${ms} ms) waiting for ${what}`);
    await sleep(100);
  }
}

const at = (m: DenoProcess, word: string) =>
  Number(m.logs.find((l) => l.startsWith(`${word} `))?.split(" ")[1]);

/** Where the fleet runs: the brokers, the monitors, and a place for each member process. */
interface Place {
  brokers: string;
  kafkaArgs: string[];
  /** Member process p's network namespace (undefined: this host). */
  netns(p: number): string | undefined;
  startMonitors(args: string[]): Promise<{ procs: DenoProcess[]; urls: string[] }>;
  brokerPids(): number[];
  close(): Promise<void>;
}

function onThisHost(): Place {
  const local = devBroker();
  return {
    brokers: BROKERS,
    kafkaArgs: [`-Dbootstrap.servers=${BROKERS}`],
    netns: () => undefined,
    async startMonitors(args) {
      const p = spawnDeno(MONITOR_MAIN, [
        "-Dserver.port=0",
        "-Dserver.host=127.0.0.1",
        `-Dbootstrap.servers=${BROKERS}`,
        ...args,
      ], { name: "monitor" });
      const port = /port (\d+)/.exec(await p.waitFor(/Websocket server running on port \d+/))![1];
      await p.waitFor(/Presence monitor \w+ ready/);
      return { procs: [p], urls: [`ws://127.0.0.1:${port}/ws/presence`] };
    },
    brokerPids: () => runningPids(local),
    close: () => Promise.resolve(),
  };
}

async function onTheBed(): Promise<Place> {
  const bed = Bed.create(["k1", "k2", "k3", "m1", "m2", "f0", "f1", "f2", "f3"]);
  const cluster = devBroker(undefined, 19_540, {
    hosts: ["k1", "k2", "k3"].map((n) => bed.host(n)).map((h) => ({
      addr: h.addr,
      netns: h.netns,
    })),
    minIsr: 2,
  });
  try {
    await startKafka(cluster);
  } catch (e) {
    bed.destroy();
    throw e;
  }
  const kafkaArgs = [
    `-Dbootstrap.servers=${cluster.brokers}`,
    "-Dkafka.replication.factor=3",
    "-Dacks=all",
  ];
  return {
    brokers: cluster.brokers,
    kafkaArgs,
    netns: (p) => bed.host(`f${p % 4}`).netns,
    async startMonitors(args) {
      const procs = await Promise.all(["m1", "m2"].map(async (name) => {
        const h = bed.host(name);
        const p = spawnDeno(MONITOR_MAIN, [
          ...kafkaArgs,
          `-Dserver.host=${h.addr}`,
          `-Dserver.port=${MONITOR_PORT}`,
          ...args,
        ], { netns: h.netns, name });
        await p.waitFor(/Presence monitor \w+ ready/, 90_000);
        return p;
      }));
      const urls = ["m1", "m2"].map((n) => `ws://${bed.host(n).addr}:${MONITOR_PORT}/ws/presence`);
      return { procs, urls };
    },
    brokerPids: () => runningPids(cluster),
    async close() {
      await stopKafka(cluster);
      bed.destroy();
    },
  };
}

// FLEET_DEBUG: each second, the CPU (ms) each monitor, broker and member process used in it.
function traceCpu(monitors: DenoProcess[], members: DenoProcess[]): () => void {
  const pids = () => [
    ...monitors.map((m) => m.proc.pid!),
    ...place.brokerPids(),
    ...members.map((m) => m.proc.pid!),
  ];
  // A process that exited (the leave at the end) reads as NaN.
  const read = (pid: number) => {
    try {
      return cpuMs(pid);
    } catch {
      return NaN;
    }
  };
  let last = new Map(pids().map((pid) => [pid, read(pid)]));
  const t0 = Date.now();
  const timer = setInterval(() => {
    const now = new Map(pids().map((pid) => [pid, read(pid)]));
    const used = [...now].map(([pid, ms]) => String(ms - (last.get(pid) ?? ms)).padStart(4));
    console.error(`cpu ${((Date.now() - t0) / 1000).toFixed(0).padStart(3)} s: ${used.join(" ")}`);
    last = now;
  }, 1000);
  return () => clearInterval(timer);
}

const place = ON_BED ? await onTheBed() : await onThisHost();
console.log(
  `${ON_BED ? "On the bed (3 brokers, 2 monitors, a host per member process)" : "On this host"}:`,
);
console.log(
  "| members | processes | converged from spawn (s) | from the last join (s) | idle CPU per member (ms/s) | memory per member (MB) | monitors CPU (ms/s) | monitors memory (MB) | brokers CPU (ms/s) | random pairs: ok / failed, p50 / p99 (ms) | with churn: ok / failed, replaced | broadcast: got / members | leave p50 / p99 / max (ms) |",
);
console.log(
  "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- | --- | --- | --- |",
);
try {
  for (const n of SIZES) {
    const t = topicsFor("fleet");
    const virtual = n > 288 ? ["-Dmax.virtual.topics=320"] : [];
    // A process's members come from one address: the limits per address (18 leases, 25 pending,
    // 220 connections) are lifted. So is the monitor's limit of 100 sessions without `info`: a
    // storm of 300 on two monitors went over it, and the oldest were closed to come back later.
    const monitors = await place.startMonitors([
      ...t.args,
      ...virtual,
      "-Dlog.level=info", // its "ready" line
      "-Dpresence.max.connections.per.address=1000",
      "-Dpresence.max.pending=1000",
      "-Dpresence.max.pending.per.address=1000",
      "-Dserver.max.connections.per.address=2000",
      ...(process.env.FLEET_HUNG ? [`-Dpresence.hung.timeout=${process.env.FLEET_HUNG}`] : []),
      `-Dpresence.topics.ahead=${process.env.FLEET_TOPICS_AHEAD ?? Math.ceil(n / 32)}`,
    ]);
    let ending = false;
    const ends: (() => void)[] = [];
    for (const m of monitors.procs) {
      m.exited.then(() => {
        if (!ending) console.error(`a monitor exited:\n${m.logs.slice(-30).join("\n")}`);
      });
    }
    const step = (what: string) => console.error(`${n} members: ${what}`);
    const procs = Math.min(PROCESSES, n);
    // 5 % of the members a minute, spread over the processes.
    const churnEvery = Math.round((60_000 * procs) / (0.05 * n));
    const members: DenoProcess[] = [];
    try {
      const t0 = Date.now();
      for (let p = 0; p < procs; p++) {
        const count = Math.floor(n / procs) + (p < n % procs ? 1 : 0);
        members.push(spawnDeno("bench/_fleet_members.ts", [
          `-Dfleet.members=${count}`,
          `-Dfleet.total=${n}`,
          `-Dfleet.name=fleet${p}`,
          `-Dfleet.churn.every.ms=${churnEvery}`,
          `-Dlog.level=${process.env.FLEET_MEMBER_LOG ?? "warning"}`,
          "-Dcloud.connector=kafka",
          `-Dpresence.url=${monitors.urls.join(",")}`,
          ...t.args,
          ...place.kafkaArgs,
          ...virtual,
        ], { netns: place.netns(p), name: `fleet${p}` }));
      }
      step("spawned");
      const tail = setInterval(() => {
        if (process.env.FLEET_DEBUG) {
          for (const m of members) console.error(`  ${m.logs.slice(-2).join(" / ").slice(0, 300)}`);
        }
      }, 10_000);
      ends.push(() => clearInterval(tail));
      if (process.env.FLEET_DEBUG) ends.push(traceCpu(monitors.procs, members));
      await until("convergence", () => members.every((m) => at(m, "COMPLETE") > 0), 300_000)
        .catch((e) => {
          for (const m of monitors.procs) console.error(m.logs.slice(-20).join("\n"));
          throw e;
        });
      const lastJoin = Math.max(...members.map((m) => at(m, "JOINED")));
      const complete = Math.max(...members.map((m) => at(m, "COMPLETE")));
      // The join storm's after-effects (leaves checked, routes exchanged again) settle first.
      await sleep(20_000);
      const pids = members.map((m) => m.proc.pid!);
      const monitorPids = monitors.procs.map((m) => m.proc.pid!);
      const brokerPids = place.brokerPids();
      const sum = (xs: number[], f: (pid: number) => number) =>
        xs.reduce((s, pid) => s + f(pid), 0);
      const c0 = sum(pids, cpuMs), m0 = sum(monitorPids, cpuMs), b0 = sum(brokerPids, cpuMs);
      await sleep(10_000);
      const cpu = (sum(pids, cpuMs) - c0) / 10 / n;
      const monitorCpu = (sum(monitorPids, cpuMs) - m0) / 10;
      const brokerCpu = brokerPids.length ? (sum(brokerPids, cpuMs) - b0) / 10 : NaN;
      const memory = sum(pids, rssMb) / n;
      const monitorMemory = sum(monitorPids, rssMb);
      // Requests between random members, steady, then with churn (the second signal to a
      // process churns: its flag says how often, but only the second phase waits for it).
      const loads = async (): Promise<string[]> => {
        const before = members.map((m) => m.logs.filter((l) => l.startsWith("LOAD ")).length);
        // process.kill: a ChildProcess sends a signal once only here (Deno's node:child_process).
        for (const m of members) process.kill(m.proc.pid!, "SIGUSR2");
        await until(
          "the load",
          () =>
            members.every((m, i) => m.logs.filter((l) => l.startsWith("LOAD ")).length > before[i]),
          120_000,
        );
        return members.map((m) => m.logs.filter((l) => l.startsWith("LOAD ")).at(-1)!);
      };
      const summary = (lines: string[]) => {
        const parts = lines.map((l) => l.split(" "));
        const ok = parts.reduce((s, p) => s + Number(p[1]), 0);
        const failed = parts.reduce((s, p) => s + Number(p[2]), 0);
        const p50 = Math.max(...parts.map((p) => Number(p[3])));
        const p99 = Math.max(...parts.map((p) => Number(p[4])));
        const replaced = parts.reduce((s, p) => s + Number(p[5]), 0);
        return { ok, failed, p50, p99, replaced, statuses: parts.map((p) => p[6]).join(" ") };
      };
      step("converged; measuring the idle fleet, then loads");
      const steady = summary(await loads());
      step("steady load done; with churn");
      const churned = summary(await loads());
      step("churn done; a broadcast, then a leave");
      // A broadcast from one member: every member of the mesh gets it once.
      process.kill(members[0].proc.pid!, "SIGHUP");
      await sleep(5000);
      const ids = members.flatMap((m) => m.logs.filter((l) => l.startsWith("GOTB ")));
      const got = new Map<string, number>();
      for (const l of ids) got.set(l, (got.get(l) ?? 0) + 1);
      const broadcast = [...got.values()].at(-1) ?? 0;
      // Leave propagation: the first process stops; every other member hears each of its members.
      const [gone, ...rest] = members;
      const goneCount = Math.floor(n / procs) + (0 < n % procs ? 1 : 0);
      const heardFrom = rest.map((m) => m.logs.length);
      const heard = () =>
        rest.flatMap((m, i) => m.logs.slice(heardFrom[i]).filter((l) => l.startsWith("LEFT ")));
      const stopAt = Date.now();
      process.kill(gone.proc.pid!, "SIGTERM");
      const expected = goneCount * (n - goneCount);
      await until("the leaves", () => heard().length >= expected, 60_000).catch(() => {});
      const latencies = heard().map((l) => Number(l.split(" ")[2]) - stopAt);
      const leave = latencies.length < expected
        ? `${latencies.length} of ${expected} heard in 60 s`
        : `${quantile(latencies, 0.5)} / ${quantile(latencies, 0.99)} / ${Math.max(...latencies)}`;
      console.log(
        `| ${n} | ${procs} | ${((complete - t0) / 1000).toFixed(1)} | ${
          ((complete - lastJoin) / 1000).toFixed(1)
        } | ${cpu.toFixed(2)} | ${memory.toFixed(1)} | ${monitorCpu.toFixed(1)} | ${
          monitorMemory.toFixed(0)
        } | ${
          brokerCpu.toFixed(0)
        } | ${steady.ok} / ${steady.failed}, ${steady.p50} / ${steady.p99} | ${churned.ok} / ${churned.failed}${
          churned.failed ? ` (${churned.statuses})` : ""
        }, ${churned.replaced} | ${broadcast} / ${n} | ${leave} |`,
      );
    } catch (e) {
      for (const m of members) console.error(`${m.logs.slice(-15).join("\n")}`);
      throw e;
    } finally {
      ending = true;
      for (const end of ends) end();
      for (const m of members) m.proc.kill("SIGKILL");
      for (const m of monitors.procs) m.proc.kill("SIGKILL");
      await Promise.all([...members, ...monitors.procs].map((m) => m.exited));
      const logs = process.env.FLEET_LOGS; // a folder: every process's log lines, for a look after
      if (logs) {
        mkdirSync(logs, { recursive: true });
        [...monitors.procs, ...members].forEach((m, i) =>
          writeFileSync(
            `${logs}/${n}-${i < monitors.procs.length ? "monitor" : "members"}-${i}.log`,
            m.logs.join("\n"),
          )
        );
      }
    }
  }
} finally {
  await place.close();
}
process.exit(0);
