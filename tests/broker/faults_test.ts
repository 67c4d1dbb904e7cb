// The delivery suite: what arrives, counted, while real processes and a real broker fail. Monitors
// and receivers are processes (`presence/main.ts`, `tests/fixtures/mesh_app.ts`, which prints
// `TALLY <n>` for every event it handles, so that even a receiver killed with -9 is counted); the
// sender is a mesh member in this process. Runs a broker of its own (port 19197), which the last
// case re-formats. The figures go to docs/reliability.md.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import process from "node:process";
import { AssignerProtocol, Kafka, logLevel } from "kafkajs";
import type { Admin } from "kafkajs";
import { PostOffice } from "../../mod.ts";
import type { Platform } from "../../mod.ts";
import type { KafkaConnector } from "../../connector/mod.ts";
import { devBroker, killKafka, startKafka, stopKafka } from "../../scripts/kafka_dev.ts";
import { eventually, meshMember, startMonitor, topicsFor } from "../_presence.ts";
import { ABOVE_THE_CLIENT, CLIENT } from "../_kafka.ts";
import type { MonitorProcess } from "../_presence.ts";
import { spawnDeno, stopAll } from "../_processes.ts";
import type { DenoProcess } from "../_processes.ts";
import { freePort, sleep } from "../_helpers.ts";
import { healAll, netFaultsUnavailable, silence } from "../_netfault.ts";

const b = devBroker(undefined, 19_197);
/** How long the long outage keeps the broker away: over the monitors' 15 s silence window. */
const OUTAGE_MS = 20_000;
const processes: DenoProcess[] = [];
const members: KafkaConnector[] = [];

before(async () => {
  await startKafka(b);
});

after(async () => {
  healAll();
  await stopMembers();
  try {
    await stopAll(processes);
  } finally {
    await stopKafka(b);
  }
});

// Bounded: a member that cannot stop must not hold the suite.
async function stopMembers(): Promise<void> {
  await Promise.all(
    members.splice(0).map((c) => Promise.race([c.stop().catch(() => {}), sleep(15_000)])),
  );
}

/** One mesh of its own on the shared broker: its topics, monitors, receivers and a sender. */
class Mesh {
  readonly topics = topicsFor("faults");
  readonly ports: number[];
  readonly monitors: (MonitorProcess | undefined)[] = [];
  readonly receivers: DenoProcess[] = [];
  sender!: { platform: Platform; connector: KafkaConnector; po: PostOffice };

  constructor(ports: number[]) {
    this.ports = ports;
  }

  static async create(monitors: number): Promise<Mesh> {
    const mesh = new Mesh(await Promise.all(Array.from({ length: monitors }, freePort)));
    for (let i = 0; i < monitors; i++) await mesh.startMonitor(i);
    return mesh;
  }

  get args(): string[] {
    const urls = this.ports.map((p) => `ws://127.0.0.1:${p}/ws/presence`).join(",");
    return [
      ...this.topics.args,
      `-Dpresence.url=${urls}`,
      `-Dbootstrap.servers=${b.brokers}`,
      "-Dcloud.connector=kafka",
    ];
  }

  async startMonitor(i: number): Promise<MonitorProcess> {
    const m = await startMonitor([
      ...this.topics.args,
      `-Dbootstrap.servers=${b.brokers}`,
      `-Dserver.port=${this.ports[i]}`,
      "-Dlog.level=info",
    ]);
    processes.push(m);
    this.monitors[i] = m;
    return m;
  }

  async startReceiver(name: string): Promise<DenoProcess> {
    const p = spawnDeno("tests/fixtures/mesh_app.ts", [`-Dapplication.name=${name}`, ...this.args]);
    processes.push(p);
    await p.waitFor(/^JOINED /, 60_000);
    this.receivers.push(p);
    return p;
  }

  async startSender(): Promise<void> {
    const { platform, connector } = await meshMember("sender", this.args);
    members.push(connector);
    this.sender = { platform, connector, po: new PostOffice({}, platform) };
  }

  /** Two receivers and the sender, once the sender reaches both. */
  async twoReceiversAndSender(): Promise<DenoProcess[]> {
    const receivers = [
      await this.startReceiver("receiver-1"),
      await this.startReceiver("receiver-2"),
    ];
    await this.startSender();
    await eventually(() => this.reaching(2), 10_000, "both receivers in the sender's table");
    return receivers;
  }

  /** Resolves once a request of the sender's is served again (event -1, outside the counts). */
  servedAgain(withinMs: number): Promise<void> {
    return eventually(
      async () =>
        (await this.sender.po.request({ to: "demo.tally", body: -1 }, { timeout: 1000 }).then(
          (r) => r.status,
          () => 0,
        )) === 200,
      withinMs,
      "served again",
    );
  }

  /** Whether the sender has `n` instances of `demo.tally` in its table. */
  reaching(n: number): boolean {
    return this.sender.connector.table.origins("demo.tally").length === n;
  }

  /** Event number → how many times the receivers handled it. */
  tallies(): Map<number, number> {
    const counts = new Map<number, number>();
    for (const r of this.receivers) {
      for (const line of r.logs) {
        const m = /^TALLY (\d+)$/.exec(line);
        if (m) counts.set(Number(m[1]), (counts.get(Number(m[1])) ?? 0) + 1);
      }
    }
    return counts;
  }
}

interface Outcome {
  n: number;
  /** 200, or the error status (503 refused or peer gone, 408 timed out). */
  status: number;
  /** When it was sent and when it ended, in ms since the stream began. */
  sentAt: number;
  endedAt: number;
}

/**
 * Numbered events to `demo.tally`, one every `everyMs`, each a request (`rpc`) or a send whose
 * promise resolves when Kafka has acknowledged it; never waits for one before the next.
 */
function stream(po: PostOffice, mode: "rpc" | "send", everyMs = 5) {
  const outcomes: Outcome[] = [];
  const t0 = performance.now();
  let n = 0;
  let running = true;
  let paused = false;
  const allEnded = (what: string) => eventually(() => outcomes.length === n, 10_000, what);
  const loop = (async () => {
    while (running) {
      if (paused) {
        await sleep(everyMs);
        continue;
      }
      const k = ++n;
      const sentAt = performance.now() - t0;
      const done = mode === "rpc"
        ? po.request({ to: "demo.tally", body: k }, { timeout: 3000 }).then((r) => r.status)
        : po.send({ to: "demo.tally", body: k }).then(() => 200);
      done.catch((e: { status?: number }) => e.status ?? 500).then((status) =>
        outcomes.push({ n: k, status, sentAt, endedAt: performance.now() - t0 })
      );
      await sleep(everyMs);
    }
  })();
  return {
    outcomes,
    now: () => performance.now() - t0,
    /** Sends no more, and resolves once every request sent has its outcome. */
    async pause(): Promise<void> {
      paused = true;
      await allEnded("every outcome before the pause");
    },
    resume(): void {
      paused = false;
    },
    async stop(): Promise<Outcome[]> {
      running = false;
      await loop;
      await allEnded("every outcome");
      return outcomes.sort((x, y) => x.n - y.n);
    },
  };
}

/** What a stream's outcomes and the receivers' tallies add up to. */
function count(outcomes: Outcome[], tallies: Map<number, number>) {
  const ok = outcomes.filter((o) => o.status === 200);
  const failed = outcomes.filter((o) => o.status !== 200);
  const byStatus: Record<number, number> = {};
  for (const o of failed) byStatus[o.status] = (byStatus[o.status] ?? 0) + 1;
  const lost = ok.filter((o) => !tallies.has(o.n)).map((o) => o.n);
  const duplicated = [...tallies].filter(([, c]) => c > 1).map(([n]) => n);
  const summary = `sent ${outcomes.length}, acknowledged ${ok.length}, failed ${failed.length} ` +
    `${JSON.stringify(byStatus)}, received ${tallies.size}, lost ${lost.length}, ` +
    `duplicated ${duplicated.length}`;
  return { ok, failed, byStatus, lost, duplicated, summary };
}

/** The first success after `from` (ms in the stream) that every later request shares. */
function servedAgainAt(outcomes: Outcome[], from: number): number {
  const after = outcomes.filter((o) => o.sentAt >= from);
  let i = after.length;
  while (i > 0 && after[i - 1].status === 200) i--;
  assert.ok(i < after.length, "some requests succeeded at the end");
  return after[i].sentAt;
}

/**
 * `<client id> <topic>/<partition>` → members of consumer groups that read it now, for the
 * groups of the given Kafka client ids (each partition consumer has a group of its own, named
 * after its client).
 */
function consumersPerPartition(clientIds: string[]): Promise<Map<string, number>> {
  return withAdmin(async (admin) => {
    const ids = (await admin.listGroups()).groups.map((g) => g.groupId)
      .filter((id) => clientIds.some((c) => id.startsWith(`${c}.`)));
    const counts = new Map<string, number>();
    for (const g of (await admin.describeGroups(ids)).groups) {
      if (g.state !== "Stable") continue;
      const client = g.groupId.slice(0, g.groupId.indexOf("."));
      for (const m of g.members) {
        const a = AssignerProtocol.MemberAssignment.decode(m.memberAssignment);
        for (const [topic, partitions] of Object.entries(a?.assignment ?? {})) {
          for (const p of partitions) {
            const key = `${client} ${topic}/${p}`;
            counts.set(key, (counts.get(key) ?? 0) + 1);
          }
        }
      }
    }
    return counts;
  });
}

/** Runs `f` with a Kafka admin client of the suite's broker. */
async function withAdmin<T>(f: (admin: Admin) => Promise<T>): Promise<T> {
  const kafka = new Kafka({ brokers: [b.brokers], clientId: "faults", logLevel: logLevel.NOTHING });
  const admin = kafka.admin();
  await admin.connect();
  try {
    return await f(admin);
  } finally {
    await admin.disconnect();
  }
}

// The Kafka client id of a mesh_app process (see KafkaConnector): `app-` and part of its origin.
function clientIdOf(p: DenoProcess): string {
  const origin = /^JOINED (\w+)/.exec(p.logs.find((l) => l.startsWith("JOINED "))!)![1];
  return `app-${origin.slice(8, 16)}`;
}

describe("the delivery suite (real processes, a broker of its own)", () => {
  it("across a broker kill -9 and restart: every acknowledged event once", async () => {
    const mesh = await Mesh.create(1);
    await mesh.startReceiver("receiver");
    await mesh.startSender();
    await eventually(() => mesh.reaching(1), 10_000, "the receiver in the sender's table");
    const s = stream(mesh.sender.po, "send");
    await sleep(1500);
    const killedAt = s.now();
    await killKafka(b);
    await sleep(2000);
    await startKafka(b, { keepData: true });
    const restartedAt = s.now();
    await sleep(8000);
    const outcomes = await s.stop();
    const acked = outcomes.filter((o) => o.status === 200);
    await eventually(() => acked.every((o) => mesh.tallies().has(o.n)), 30_000, "arrivals")
      .catch(() => {});
    const c = count(outcomes, mesh.tallies());
    const back = Math.round(servedAgainAt(outcomes, restartedAt) - restartedAt);
    console.log(
      `broker kill -9 and restart: ${c.summary}; acknowledged again ${back} ms after the restart`,
    );
    assert.ok(acked.some((o) => o.sentAt > restartedAt), c.summary);
    assert.ok(c.failed.every((o) => o.status === 503), c.summary);
    // What was in flight when the broker died may fail too, but nothing sent well before.
    assert.ok(c.failed.every((o) => o.sentAt >= killedAt - 500), "failures only once it is down");
    assert.deepEqual(c.lost, [], c.summary);
    assert.deepEqual(c.duplicated, [], c.summary);
  });

  it("SIGTERM while Kafka is dead: the application stops within drain.grace.period", {
    skip: ABOVE_THE_CLIENT,
  }, async () => {
    const mesh = await Mesh.create(1);
    // lambda-example stops as the examples do: platform.stop(), drain first (it announces the
    // drain on Kafka, which is not there), with a 4 s grace here.
    const app = spawnDeno("examples/lambda_example/main.ts", [
      ...mesh.args,
      "-Dserver.port=0",
      "-Ddrain.grace.period=4",
    ]);
    processes.push(app);
    await app.waitFor(/partition \d+ ready/, 60_000);
    await killKafka(b);
    try {
      await sleep(500);
      const t0 = Date.now();
      app.proc.kill("SIGTERM");
      const exited = await Promise.race([app.exited.then(() => true), sleep(30_000)]);
      const took = Date.now() - t0;
      console.log(`SIGTERM with Kafka dead: stopped after ${took} ms (grace 4 s)`);
      assert.equal(exited, true, "it exited");
      // (Deno reports a child that handled SIGTERM and exited as ended by the signal.)
      assert.ok(took <= 5500, `stopped after ${took} ms`);
      assert.ok(app.logs.some((l) => /Stopping: draining/.test(l)), "a graceful stop");
    } finally {
      await startKafka(b, { keepData: true });
    }
  });

  it("across a receiver's kill -9: each request answered or failed at once, none twice", {
    skip: ABOVE_THE_CLIENT,
  }, async () => {
    const mesh = await Mesh.create(1);
    const [doomed] = await mesh.twoReceiversAndSender();
    const s = stream(mesh.sender.po, "rpc");
    await sleep(1500);
    doomed.proc.kill("SIGKILL");
    const killedAt = s.now();
    await eventually(() => mesh.reaching(1), 10_000, "the leave");
    const leftAfter = Math.round(s.now() - killedAt);
    await sleep(2000);
    const outcomes = await s.stop();
    const c = count(outcomes, mesh.tallies());
    const slowest = Math.round(Math.max(0, ...c.failed.map((o) => o.endedAt - o.sentAt)));
    console.log(
      `receiver kill -9: ${c.summary}; the sender heard of the leave ${leftAfter} ms after the ` +
        `kill; slowest failure ${slowest} ms`,
    );
    assert.deepEqual(c.lost, [], c.summary);
    assert.deepEqual(c.duplicated, [], c.summary);
    assert.equal(c.byStatus[408] ?? 0, 0, `no request waits for its timeout: ${c.summary}`);
    // Every failure is the kill's: it ended after the kill (in flight then, or sent after it).
    // A bound on when it was sent was too tight: inside the whole suite one request sent 100+ ms
    // before the kill was still waiting on the doomed receiver when it died.
    assert.ok(c.failed.every((o) => o.endedAt >= killedAt), c.summary);
    // Once the sender knows, everything goes to the survivor.
    assert.ok(
      outcomes.filter((o) => o.sentAt > killedAt + leftAfter + 100).every((o) => o.status === 200),
    );
  });

  it("across monitor flaps during joins: one consumer per partition (Kafka's admin API)", async () => {
    const mesh = await Mesh.create(2);
    const receivers = [
      await mesh.startReceiver("receiver-1"),
      await mesh.startReceiver("receiver-2"),
    ];
    await mesh.startSender();
    await eventually(() => mesh.reaching(2), 10_000, "both receivers in the sender's table");
    const s = stream(mesh.sender.po, "rpc", 10);
    // Both monitors die 0.65 s apart: the applications move to the second while it dies.
    for (let round = 0; round < 2; round++) {
      mesh.monitors[0]!.proc.kill("SIGKILL");
      await sleep(650);
      mesh.monitors[1]!.proc.kill("SIGKILL");
      await sleep(300);
      await Promise.all([mesh.startMonitor(0), mesh.startMonitor(1)]);
      await sleep(round === 0 ? 1500 : 0);
    }
    const flappedAt = s.now();
    await eventually(
      () =>
        receivers.every((r) =>
          r.logs.filter((l) => /partition \d+ ready|Reconnected with the same lease/.test(l))
            .length >= 2
        ),
      30_000,
      "the receivers joined again",
    );
    await eventually(() => mesh.reaching(2), 30_000, "both receivers in the sender's table again");
    await sleep(2000);
    const outcomes = await s.stop();
    const c = count(outcomes, mesh.tallies());
    // Consumers that were stopped have left their groups; the count is of those reading now.
    // Only kafkajs readers are group members: a platformatic reader fetches by itself, unseen by
    // the admin API, and a second reader of a partition would show as duplicates below.
    let consumers = new Map<string, number>();
    if (CLIENT === "kafkajs") {
      await eventually(
        async () => {
          consumers = await consumersPerPartition(receivers.map(clientIdOf));
          // Each receiver reads its own partition and its group's partition.
          return consumers.size === 4 && [...consumers.values()].every((n) => n === 1);
        },
        20_000,
        "four partitions read",
      ).catch(() => {});
    }
    const back = Math.round(servedAgainAt(outcomes, 0));
    console.log(
      `monitor flaps: ${c.summary}; consumers per partition ${JSON.stringify([...consumers])}; ` +
        `requests served throughout from ${back} ms (flaps ended at ${Math.round(flappedAt)} ms)`,
    );
    if (CLIENT === "kafkajs") {
      assert.equal(consumers.size, 4, JSON.stringify([...consumers]));
      for (const [tp, n] of consumers) assert.equal(n, 1, `${tp} has ${n} consumers`);
    }
    assert.deepEqual(c.lost, [], c.summary);
    assert.deepEqual(c.duplicated, [], c.summary);
  });

  it("across a 20 s broker outage: no application closed, no monitor expired", async () => {
    // Longer than the monitors' silence window (15 s): each hears the other only through
    // service.monitor, and without Kafka a monitor must not take its own deafness for a death.
    const mesh = await Mesh.create(2);
    const receivers = await mesh.twoReceiversAndSender();
    const s = stream(mesh.sender.po, "rpc");
    await sleep(1500);
    const killedAt = s.now();
    await killKafka(b);
    // The monitors' dashboards say so (issue 33: they said "live" and all was well).
    const kafkaShown = async (up: boolean) => {
      const state = await mesh.monitors[0]!.get("/dashboard/state");
      return (state.body as { health: { kafka: { up: boolean } } }).health.kafka.up === up;
    };
    await eventually(() => kafkaShown(false), 5000, "the dashboard showing Kafka down");
    const shownDown = Math.round(s.now() - killedAt);
    await sleep(Math.max(0, OUTAGE_MS - (s.now() - killedAt)));
    await startKafka(b, { keepData: true });
    const restartedAt = s.now();
    await mesh.servedAgain(30_000);
    await eventually(() => kafkaShown(true), 10_000, "the dashboard showing Kafka back");
    console.log(`the dashboard showed Kafka down ${shownDown} ms after the kill -9`);
    await sleep(6000); // past another silence window: a late expiry would show now
    const outcomes = await s.stop();
    const c = count(outcomes, mesh.tallies());
    const back = Math.round(servedAgainAt(outcomes, restartedAt) - restartedAt);
    const closed = [...receivers, ...mesh.monitors.map((m) => m!)].flatMap((p) =>
      p.logs.filter((l) => /Lease lost|expired|\(1013\b|released by|leave/i.test(l))
    );
    console.log(
      `broker away ${Math.round(restartedAt - killedAt)} ms: ${c.summary}; served throughout ` +
        `from ${back} ms after the restart; ${closed.length} close/expiry lines`,
    );
    assert.deepEqual(closed, [], "no application closed, no monitor expired, no leave");
    assert.ok(mesh.reaching(2), "both receivers still in the sender's table");
    assert.ok(c.failed.every((o) => o.endedAt >= killedAt - 100), c.summary);
    assert.ok(c.failed.every((o) => o.sentAt <= restartedAt + back + 100), c.summary);
    assert.deepEqual(c.lost, [], c.summary);
    assert.deepEqual(c.duplicated, [], c.summary);
  });

  it(
    "a silent broker (its packets dropped for 20 s): 503 at once, served again soon after",
    { skip: netFaultsUnavailable() },
    async () => {
      const mesh = await Mesh.create(1);
      const receiver = await mesh.startReceiver("receiver");
      await mesh.startSender();
      await eventually(() => mesh.reaching(1), 10_000, "the receiver in the sender's table");
      const s = stream(mesh.sender.po, "rpc");
      await sleep(1500);
      const silentAt = s.now();
      const heal = silence(b.port);
      try {
        await sleep(OUTAGE_MS);
      } finally {
        heal();
      }
      const healedAt = s.now();
      await mesh.servedAgain(30_000);
      await sleep(3000);
      const outcomes = await s.stop();
      const c = count(outcomes, mesh.tallies());
      const refused = outcomes.find((o) => o.sentAt >= silentAt && o.status === 503);
      const failFast = Math.round((refused?.endedAt ?? Infinity) - silentAt);
      const back = Math.round(servedAgainAt(outcomes, healedAt) - healedAt);
      const timedOut = c.failed.filter((o) => o.status === 408);
      const closed = [receiver, mesh.monitors[0]!].flatMap((p) =>
        p.logs.filter((l) => /Lease lost|expired|\(1013\b|released by/i.test(l))
      );
      console.log(
        `silent broker ${Math.round(healedAt - silentAt)} ms: ${c.summary}; the first 503 ` +
          `${failFast} ms into the silence; served throughout from ${back} ms after it ended; ` +
          `${timedOut.length} timed out (sent ${
            timedOut.map((o) => Math.round(o.sentAt - silentAt))
              .join(", ")
          } ms into it)`,
      );
      assert.ok(failFast <= 1500, `the first 503 ${failFast} ms into the silence`);
      if (CLIENT === "kafkajs") {
        // Its connections stay stuck until TCP resends or its request timeout (15 s) ends them
        // (docs/reliability.md): served again later, and requests time out meanwhile.
        assert.ok(back <= 20_000, `served again ${back} ms after the silence`);
      } else {
        assert.ok(back <= 3000, `served again ${back} ms after the silence`);
        // Only what was on its way when the broker fell silent waits for its timeout.
        assert.ok(timedOut.every((o) => o.sentAt <= silentAt + 1500), c.summary);
      }
      assert.ok(c.failed.every((o) => o.sentAt <= healedAt + back + 100), c.summary);
      assert.deepEqual(closed, [], "no application closed, no monitor expired");
      assert.deepEqual(c.lost, [], c.summary);
      assert.deepEqual(c.duplicated, [], c.summary);
    },
  );

  it(
    "a quiet member (no record for 10 s) notices a silent broker by its poll's own timeout, and its return",
    {
      skip: netFaultsUnavailable() ||
        (CLIENT === "kafkajs" && "a quiet member's 10-s polls are the default client's"),
    },
    async () => {
      const mesh = await Mesh.create(1);
      const receiver = await mesh.startReceiver("receiver");
      // Quiet after 10 s without a record in or out; its polls then wait 10 s at the broker,
      // and are judged by their own request timeout (15 s), not by a timer of the silence.
      await sleep(14_000);
      const silentAt = Date.now();
      const heal = silence(b.port);
      let noticedMs = Infinity, said = "";
      try {
        said = await receiver.waitFor(/Kafka is unreachable/, OUTAGE_MS);
        noticedMs = Date.now() - silentAt;
      } finally {
        heal();
      }
      const healedAt = Date.now();
      const seen = receiver.logs.length;
      await eventually(
        () => receiver.logs.slice(seen).some((l) => /Kafka answers again/.test(l)),
        30_000,
        "Kafka answers again",
      );
      console.log(
        `quiet member: the silence noticed after ${noticedMs} ms (${
          said.replace(/^.*Kafka/, "Kafka")
        }), its end after ${Date.now() - healedAt} ms`,
      );
      // A poll sent just before the silence times out 15 s after it left.
      assert.ok(noticedMs <= 16_500, `noticed ${noticedMs} ms into the silence`);
    },
  );

  it("a frozen receiver (SIGSTOP 20 s, then SIGCONT) runs no request its caller gave up", {
    skip: ABOVE_THE_CLIENT,
  }, async () => {
    const mesh = await Mesh.create(1);
    const [frozen] = await mesh.twoReceiversAndSender();
    const s = stream(mesh.sender.po, "rpc");
    await sleep(1500);
    // Frozen with nothing in progress: a request it had read before the freeze would run after
    // it, which is not what this case is about (read late, a request must not run).
    await s.pause();
    // process.kill: a child's own kill() does not send SIGCONT under Deno.
    process.kill(frozen.proc.pid!, "SIGSTOP");
    s.resume();
    try {
      await sleep(20_000);
    } finally {
      process.kill(frozen.proc.pid!, "SIGCONT");
    }
    const before = frozen.logs.length;
    await sleep(4000);
    const outcomes = await s.stop();
    const c = count(outcomes, mesh.tallies());
    const status = new Map(outcomes.map((o) => [o.n, o.status]));
    const late = frozen.logs.slice(before).map((l) => /^TALLY (\d+)$/.exec(l)?.[1])
      .filter((n) => n !== undefined && status.get(Number(n)) !== 200);
    const dropped = frozen.logs.filter((l) => /after its caller's timeout/.test(l)).length;
    console.log(
      `frozen receiver: ${c.summary}; after SIGCONT it ran ${late.length} requests whose ` +
        `callers had given up; it logged ${dropped} drop line(s)`,
    );
    assert.deepEqual(late, [], "no abandoned request runs after SIGCONT");
    assert.deepEqual(c.duplicated, [], c.summary);
    assert.deepEqual(c.lost, [], c.summary);
  });

  // Last: it re-formats the broker under the other cases' topics. What it measures is one
  // mesh's recovery: the earlier cases' meshes (28 processes on two cores) recovering beside it
  // made it 13-30 s, the machine's time rather than the mesh's.
  it("across a re-formatted broker: served again within 30 s, no process restarted", async () => {
    await stopMembers();
    await stopAll(processes.splice(0));
    const mesh = await Mesh.create(1);
    const receiver = await mesh.startReceiver("receiver");
    await mesh.startSender();
    await eventually(() => mesh.reaching(1), 10_000, "the receiver in the sender's table");
    const monitor = mesh.monitors[0]!;
    const health = async () => (await monitor.get("/health")).status;
    assert.equal(await health(), 200);
    const s = stream(mesh.sender.po, "rpc", 10);
    await sleep(1000);
    await killKafka(b);
    await sleep(1000);
    await startKafka(b); // wiped and formatted: no topics, no offsets, a new cluster id
    const restartedAt = s.now();
    // The monitor says DOWN until its topics are back.
    let sawMissing = false;
    const watching = (async () => {
      while (s.now() - restartedAt < 10_000 && !sawMissing) {
        const { status, body } = await monitor.get("/health").catch(() => ({
          status: 0,
          body: "",
        }));
        sawMissing = status !== 200 && /missing|unreachable/.test(JSON.stringify(body));
        await sleep(100);
      }
    })();
    await mesh.servedAgain(60_000);
    const back = Math.round(s.now() - restartedAt);
    await watching;
    await eventually(async () => (await health()) === 200, 10_000, "the monitor UP again");
    await sleep(1000);
    const outcomes = await s.stop();
    const c = count(outcomes, mesh.tallies());
    const topics = await withAdmin(async (admin) =>
      new Map((await admin.fetchTopicMetadata()).topics.map((t) => [t.name, t.partitions.length]))
    );
    console.log(
      `re-formatted broker: ${c.summary}; served again ${back} ms after the restart; ` +
        `monitor DOWN meanwhile: ${sawMissing}; topics ${JSON.stringify([...topics])}`,
    );
    assert.ok(back < 30_000, `served again after ${back} ms`);
    assert.ok(sawMissing, "the monitor's /health was DOWN while the topics were missing");
    assert.equal(topics.get(mesh.topics.monitorTopic), 11);
    assert.equal(topics.get(`${mesh.topics.prefix}.0001`), 32);
    for (const p of [receiver, monitor]) {
      assert.equal(p.proc.exitCode, null, "no process restarted");
    }
    assert.deepEqual(c.duplicated, [], c.summary);
    assert.deepEqual(c.lost, [], c.summary);
  });
});
