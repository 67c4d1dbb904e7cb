// Many mesh members in one process, for bench/fleet_bench.ts: `-Dfleet.members=M` platforms,
// each a full member (its own connector, lease and routing table) named `<fleet.name>-<i>`,
// joining at once. Prints, with the time in ms:
//   JOINED <ms>            every member of this process has joined
//   COMPLETE <ms>          every member's table holds `-Dfleet.total` - 1 peers (once)
//   LEFT <origin> <ms>     a member heard that a peer left (each member, each peer)
//   GOTB <id>              a member got the broadcast <id>
//   LOAD <ok> <failed> <p50 ms> <p99 ms> <replaced> <statuses>   after a load phase
// SIGUSR2 starts a load phase: for -Dfleet.load.ms (20,000), -Dfleet.load.rate requests a second
// (50) from random members of this process to random others (`fleet.echo.<name>`, each
// member's own route; not to one draining), with a 10-s timeout; from the second phase on, with
// -Dfleet.churn.every.ms, one member is replaced (stopped gracefully, a new one started) that
// often meanwhile. SIGHUP: the first
// member broadcasts to `fleet.bcast`. Stops every member gracefully on SIGTERM.
import process from "node:process";
import { configure, getConsoleSink } from "@logtape/logtape";
import { Platform, PostOffice, setupLogging } from "../mod.ts";
import { connectToCloud } from "../connector/mod.ts";
import type { KafkaConnector } from "../connector/mod.ts";

const flag = (name: string) =>
  process.argv.find((a) => a.startsWith(`-D${name}=`))?.slice(name.length + 3);
const count = Number(flag("fleet.members") ?? 1);
const total = Number(flag("fleet.total") ?? count);
const name = flag("fleet.name") ?? "fleet";
const loadMs = Number(flag("fleet.load.ms") ?? 20_000);
const loadRate = Number(flag("fleet.load.rate") ?? 50);
const churnEvery = Number(flag("fleet.churn.every.ms") ?? 0);
const args = process.argv.slice(2).filter((a) => !a.startsWith("-Dfleet."));
await setupLogging(flag("log.level") ?? "warning");
if (process.env.FLEET_DEBUG && (flag("log.level") ?? "warning") === "warning") {
  // Warnings, and each join's line that says where its time went.
  await configure({
    reset: true,
    sinks: { console: getConsoleSink() },
    filters: {
      joins: (r) => r.level !== "info" || String(r.rawMessage).startsWith("Joined:"),
    },
    loggers: [
      { category: ["minimesh"], sinks: ["console"], filters: ["joins"], lowestLevel: "info" },
      { category: ["logtape", "meta"], sinks: ["console"], lowestLevel: "warning" },
    ],
  });
}
if (process.env.FLEET_DEBUG) {
  // The longest this process's event loop stood still in each 10 s.
  let worst = 0, last = performance.now();
  setInterval(() => {
    const now = performance.now();
    worst = Math.max(worst, now - last - 100);
    last = now;
  }, 100);
  setInterval(() => {
    console.error(`${name}: event loop held up to ${Math.round(worst)} ms`);
    worst = 0;
  }, 10_000);
}

interface Member {
  platform: Platform;
  connector: KafkaConnector;
  po: PostOffice;
  stopping?: boolean;
}

let made = 0;
function member(): Member {
  const platform = new Platform({
    dir: "/nonexistent",
    env: {},
    args: [`-Dapplication.name=${name}-${made++}`, ...args],
  });
  // Its own route, so that a request to it crosses the mesh (a member calling a route it
  // serves itself would stay local).
  platform.register(`fleet.echo.${platform.name}`, (_h, body) => body);
  platform.register("fleet.bcast", (_h, body) => void console.log(`GOTB ${body}`));
  const connector = connectToCloud(platform)!;
  (async () => {
    for await (const e of connector.lifeCycle()) {
      if (e.type === "leave") console.log(`LEFT ${e.origin} ${Date.now()}`);
    }
  })();
  return { platform, connector, po: new PostOffice({}, platform) };
}

const members: Member[] = Array.from({ length: count }, member);
let joined = 0;
for (const m of members) m.connector.joined.then(() => joined++);
if (process.env.FLEET_DEBUG) {
  // When each member's partitions were read (its topic set) and when it joined (its peers'
  // routes heard), from this process's start: where a join storm's time goes.
  const start = Date.now();
  const stages = members.map(() => ({ read: 0, joined: 0 }));
  members.forEach((m, i) => m.connector.joined.then(() => stages[i].joined = Date.now() - start));
  const poll = setInterval(() => {
    members.forEach((m, i) => {
      if (!stages[i].read && m.connector.topic !== undefined) stages[i].read = Date.now() - start;
    });
  }, 100);
  Promise.all(members.map((m) => m.connector.joined)).then(() => {
    clearInterval(poll);
    const q = (xs: number[], f: number) =>
      xs.sort((a, b) => a - b)[Math.floor(f * (xs.length - 1))];
    const read = stages.map((s) => s.read), join = stages.map((s) => s.joined - s.read);
    console.error(
      `${name}: partitions read at p10/p50/p90/max ${
        [0.1, 0.5, 0.9, 1].map((f) => q(read, f))
      } ms; ` +
        `then joined after ${[0.1, 0.5, 0.9, 1].map((f) => q(join, f))} ms`,
    );
  });
}
const joining = setInterval(() => console.error(`${name}: ${joined} of ${count} joined`), 10_000);
await Promise.all(members.map((m) => m.connector.joined));
clearInterval(joining);
console.log(`JOINED ${Date.now()}`);
let ticks = 0;
const watch = setInterval(() => {
  const fewest = Math.min(...members.map((m) => m.connector.table.peers().length));
  if (fewest >= total - 1) {
    console.log(`COMPLETE ${Date.now()}`);
    clearInterval(watch);
  } else if (++ticks % 50 === 0) {
    console.error(`${name}: the fewest peers a member knows: ${fewest}`);
  }
}, 100);

const pick = () => {
  const ready = members.filter((m) => !m.stopping);
  return ready[Math.floor(Math.random() * ready.length)];
};

// One member out (drained, then gone), a new one in.
async function replace(): Promise<void> {
  const old = pick();
  old.stopping = true;
  const fresh = member();
  await Promise.all([old.platform.stop({ gracePeriod: 5000 }), fresh.connector.joined]);
  members.splice(members.indexOf(old), 1, fresh);
}

let phases = 0;
async function load(): Promise<void> {
  const churnNow = ++phases > 1 && churnEvery > 0;
  const latencies: number[] = [];
  const statuses: Record<string, number> = {};
  let failed = 0, replaced = 0;
  const requests: Promise<void>[] = [];
  const churns: Promise<void>[] = [];
  // A churn phase lasts a minute at least, so that its rate (a share a minute) applies.
  const end = Date.now() + (churnNow ? Math.max(loadMs, 60_000) : loadMs);
  const churn = churnNow
    ? setInterval(() => churns.push(replace().then(() => void replaced++)), churnEvery)
    : undefined;
  while (Date.now() < end) {
    const from = pick();
    const table = from.connector.table;
    const peers = table.peers().filter((p) => p.name && !table.isDraining(p.origin));
    const to = peers[Math.floor(Math.random() * peers.length)];
    // (None when every peer is draining, or taken for stalled, just now: this tick asks nobody.)
    if (to !== undefined) {
      const t = performance.now();
      requests.push(
        from.po.request({ to: `fleet.echo.${to.name}`, body: "x" }, 10_000).then(
          () => void latencies.push(performance.now() - t),
          (e: { status?: number }) => {
            failed++;
            statuses[e.status ?? 0] = (statuses[e.status ?? 0] ?? 0) + 1;
          },
        ),
      );
    }
    await new Promise((r) => setTimeout(r, 1000 / loadRate));
  }
  clearInterval(churn);
  await Promise.all([...requests, ...churns]);
  latencies.sort((a, b) => a - b);
  const q = (p: number) => Math.round(latencies[Math.floor(p * (latencies.length - 1))] ?? NaN);
  console.log(
    `LOAD ${latencies.length} ${failed} ${q(0.5)} ${q(0.99)} ${replaced} ${
      JSON.stringify(statuses)
    }`,
  );
}

// (Not SIGUSR1: it starts the inspector.)
process.on("SIGUSR2", () => {
  load().catch((e) => console.error(`load: ${(e as Error).stack}`));
});
process.on("SIGHUP", () => {
  members[0].po.broadcast({ to: "fleet.bcast", body: String(Date.now()) })
    .catch((e) => console.error(`broadcast: ${(e as Error).message}`));
});
process.on("SIGTERM", () => {
  clearInterval(watch);
  Promise.all(members.map((m) => m.connector.stop())).finally(() => process.exit(0));
});
