/**
 * A fleet of mesh members (issue 35): for each size N, N full members (each its own connector,
 * lease and routing table) in P processes (`bench/_fleet_members.ts`) join one monitor at once.
 * Measured: join convergence (from the spawn, and from the last member's join, until every
 * member's table holds the N - 1 others), each idle member's CPU and memory (from /proc, over
 * 10 s, 5 s after convergence), the monitor's and the dev broker's, and leave propagation (one process stopped with
 * SIGTERM: from the signal until each other member hears each of its members leave).
 *
 * `deno run -A bench/fleet_bench.ts [sizes, default 10,100,300] [processes, default 4]` with a
 * broker on KAFKA_BROKERS (default 127.0.0.1:9092). Over 288 members the monitor is given
 * `max.virtual.topics=320` (ten topics of 32 partitions); all come from one address, so the
 * monitor's limit of leases per address is lifted.
 *
 * @module
 */
import { spawn } from "node:child_process";
import type { ChildProcess } from "node:child_process";
import { readFileSync } from "node:fs";
import process from "node:process";
import { BROKERS, meshArgs, startMonitor, topicsFor } from "../tests/_presence.ts";
import { cpuMs } from "./_cpu.ts";
import { devBroker, runningPid } from "../scripts/kafka_dev.ts";

/** The dev broker's pid when it runs here (its CPU is reported too), else undefined. */
const BROKER = runningPid(devBroker());

const SIZES = (process.argv[2] ?? "10,100,300").split(",").map(Number);
const PROCESSES = Number(process.argv[3] ?? 4);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function rssMb(pid: number): number {
  const kb = /VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, "utf8"))?.[1];
  return Number(kb ?? 0) / 1024;
}

function quantile(xs: number[], q: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(q * s.length))] ?? NaN;
}

interface Member {
  proc: ChildProcess;
  lines: string[];
}

function spawnMembers(args: string[], name: string, count: number, total: number): Member {
  const proc = spawn(process.execPath, [
    "run",
    "-A",
    "bench/_fleet_members.ts",
    `-Dfleet.members=${count}`,
    `-Dfleet.total=${total}`,
    `-Dfleet.name=${name}`,
    "-Dlog.level=warning",
    ...args,
  ], { stdio: ["ignore", "pipe", "inherit"] });
  const lines: string[] = [];
  let partial = "";
  proc.stdout!.on("data", (d: Uint8Array) => {
    const parts = (partial + new TextDecoder().decode(d)).split("\n");
    partial = parts.pop()!;
    lines.push(...parts);
  });
  return { proc, lines };
}

async function until(what: string, ok: () => boolean, ms: number): Promise<void> {
  const end = Date.now() + ms;
  while (!ok()) {
    if (Date.now() > end) throw new Error(`timed out (${ms} ms) waiting for ${what}`);
    await sleep(100);
  }
}

const at = (m: Member, word: string) =>
  Number(m.lines.find((l) => l.startsWith(`${word} `))?.split(" ")[1]);

console.log(
  "| members | processes | converged from spawn (s) | from the last join (s) | idle CPU per member (ms/s) | memory per member (MB) | monitor CPU (ms/s) | broker CPU (ms/s) | leave p50 / p99 / max (ms) |",
);
console.log("| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |");
for (const n of SIZES) {
  const t = topicsFor("fleet");
  const kafka = [`-Dbootstrap.servers=${BROKERS}`];
  const virtual = n > 288 ? ["-Dmax.virtual.topics=320"] : [];
  // Every member comes from 127.0.0.1: the limits per address (18 leases, 220 connections)
  // are lifted.
  const monitor = await startMonitor(
    [
      ...t.args,
      ...virtual,
      "-Dpresence.max.connections.per.address=1000",
      "-Dserver.max.connections.per.address=2000",
    ],
    kafka,
  );
  const args = [...meshArgs(monitor.port, t.args, kafka), ...virtual];
  const procs = Math.min(PROCESSES, n);
  const members: Member[] = [];
  try {
    const t0 = Date.now();
    for (let p = 0; p < procs; p++) {
      const count = Math.floor(n / procs) + (p < n % procs ? 1 : 0);
      members.push(spawnMembers(args, `fleet${p}`, count, n));
    }
    await until("convergence", () => members.every((m) => at(m, "COMPLETE") > 0), 180_000)
      .catch((e) => {
        console.error(monitor.logs.filter((l) => !/ \[INF\] /.test(l)).slice(-30).join("\n"));
        throw e;
      });
    const lastJoin = Math.max(...members.map((m) => at(m, "JOINED")));
    const complete = Math.max(...members.map((m) => at(m, "COMPLETE")));
    await sleep(5000);
    const pids = members.map((m) => m.proc.pid!);
    const c0 = pids.map(cpuMs), m0 = cpuMs(monitor.proc.pid!);
    const b0 = BROKER ? cpuMs(BROKER) : NaN;
    await sleep(10_000);
    const cpu = pids.reduce((s, pid, i) => s + cpuMs(pid) - c0[i], 0) / 10 / n;
    const monitorCpu = (cpuMs(monitor.proc.pid!) - m0) / 10;
    const brokerCpu = BROKER ? (cpuMs(BROKER) - b0) / 10 : NaN;
    const memory = pids.reduce((s, pid) => s + rssMb(pid), 0) / n;
    // Leave propagation: the first process stops; every other member hears each of its members.
    const [gone, ...rest] = members;
    const goneCount = Math.floor(n / procs) + (0 < n % procs ? 1 : 0);
    const heard = () => rest.flatMap((m) => m.lines.filter((l) => l.startsWith("LEFT ")));
    const stopAt = Date.now();
    gone.proc.kill("SIGTERM");
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
        brokerCpu.toFixed(0)
      } | ${leave} |`,
    );
  } finally {
    for (const m of members) m.proc.kill("SIGKILL");
    await monitor.stop();
  }
}
process.exit(0);
