// Issue 15's acceptance: with credentials configured and TLS everywhere, the three attacks that
// issue reported (the hijack of an app's origin through another monitor, the partition flood,
// the impostor) all fail while genuine applications join and serve, requests counted.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { PostOffice } from "../../mod.ts";
import type { Platform } from "../../mod.ts";
import type { KafkaConnector } from "../../connector/mod.ts";
import { credentialProtocols, NOT_OWNER, UNAUTHORIZED } from "../../protocol/credentials.ts";
import { makeTestCertificates } from "../../scripts/kafka_dev.ts";
import type { TestCertificates } from "../../scripts/kafka_dev.ts";
import {
  BROKERS,
  connect,
  eventually,
  httpsGet,
  meshMember,
  startMonitor,
  topicsFor,
} from "../_presence.ts";
import type { Client, MonitorProcess } from "../_presence.ts";
import { spawnDeno, stopAll } from "../_processes.ts";
import { parsePrometheus, valueOf } from "../_prometheus.ts";
import { prometheusText } from "../../internal.ts";
import type { DenoProcess } from "../_processes.ts";

const GENUINE = "genuine-apps-token";
const LEAKED = "other-team-token"; // a second team's token, in the attacker's hands
const PER_TOKEN = 24;
const PER_ADDRESS = 16;
const dir = mkdtempSync(join(tmpdir(), "minimesh-security-"));
const t = topicsFor("secure");
const processes: DenoProcess[] = [];
let certs: TestCertificates;
let ca: string;
let m1: MonitorProcess, m2: MonitorProcess;
let member: { connector: KafkaConnector; platform: Platform };

interface Connection {
  origin: string;
  monitor: string;
  topic: string | null;
  name: string;
  version: string;
}

async function connections(m: MonitorProcess): Promise<Connection[]> {
  const info = JSON.parse((await httpsGet(`https://127.0.0.1:${m.port}/info`, ca)).body);
  return info.more.connections;
}

// What a genuine member of the secured mesh is given: both monitors over wss, the CA, its token.
const genuineArgs = () => [
  ...t.args,
  `-Dpresence.url=wss://127.0.0.1:${m1.port}/ws/presence,wss://127.0.0.1:${m2.port}/ws/presence`,
  `-Dpresence.tls.ca=${certs.caPem}`,
  `-Dmesh.tokens=${GENUINE}`,
  `-Dbootstrap.servers=${BROKERS}`,
  "-Dcloud.connector=kafka",
];

function genuineApp(name: string): DenoProcess {
  const app = spawnDeno("tests/fixtures/mesh_app.ts", [
    `-Dapplication.name=${name}`,
    ...genuineArgs(),
  ]);
  processes.push(app);
  return app;
}

before(async () => {
  certs = makeTestCertificates(dir);
  ca = readFileSync(certs.caPem, "utf8");
  const args = [
    ...t.args,
    `-Dserver.tls.cert=${certs.certPem}`,
    `-Dserver.tls.key=${certs.keyPem}`,
    `-Dmesh.tokens=${GENUINE},${LEAKED}`,
    `-Dpresence.max.connections.per.token=${PER_TOKEN}`,
    `-Dpresence.max.connections.per.address=${PER_ADDRESS}`,
  ];
  m1 = await startMonitor(args);
  m2 = await startMonitor(args);
  processes.push(m1, m2);
});

after(async () => {
  await member?.connector.stop();
  await stopAll(processes);
  rmSync(dir, { recursive: true, force: true });
});

describe("a secured mesh under attack (TLS, mesh.tokens, owned identities, quotas)", () => {
  it("refuses the hijack, the flood and the impostor while genuine apps join and serve", async () => {
    // A genuine app serving demo.echo, reached through the first monitor only.
    const echo = genuineApp("echo-app");
    await echo.waitFor(/^JOINED /, 30_000);
    const [victim] = (await connections(m1)).filter((c) => c.name === "echo-app");
    assert.ok(victim?.topic, "the genuine app holds a lease");
    member = await meshMember("caller", genuineArgs());
    const po = new PostOffice({}, member.platform);
    await eventually(
      () =>
        po.request({ to: "demo.echo", body: "x" }, { timeout: 2000 })
          .then((r) => !r.isError, () => false),
      30_000,
      "demo.echo through the mesh",
    );

    // Requests all along the attacks, one at a time, counted.
    let ok = 0, failed = 0, attacking = true;
    const failures: string[] = [];
    const load = (async () => {
      for (let i = 0; attacking && i < 100_000; i++) {
        const reply = await po.request({ to: "demo.echo", body: i }, { timeout: 5000 })
          .catch((e) => ({ isError: true, error: (e as Error).message, body: undefined }));
        if (!reply.isError && reply.body === i) {
          ok++;
        } else {
          failed++;
          failures.push(String(reply.error));
        }
        await new Promise((r) => setTimeout(r, 10));
      }
    })();
    const wss = (options: Parameters<typeof connect>[1]) =>
      connect(m2.port, { ca, name: "echo-app", version: "6.6.6", ...options });

    // 1. The impostor: any name and version, without a token or with a guessed one.
    const impostors = Array.from(
      { length: 20 },
      (_, i) => wss({ protocols: i % 2 ? credentialProtocols("guessed") : undefined }),
    );
    for (const c of impostors) assert.equal((await c.closed).code, UNAUTHORIZED);

    // 2. The hijack, 14 times, by a holder of a valid token without the app's secret.
    for (let i = 0; i < 14; i++) {
      const thief = wss({
        origin: victim.origin,
        protocols: credentialProtocols(LEAKED),
        identity: i % 2 ? "guessed-secret" : undefined,
      });
      assert.equal((await thief.closed).code, NOT_OWNER);
    }

    // 3. The flood: 320 websockets with a valid info and token, from 40 addresses.
    const flood: Client[] = [];
    for (let a = 0; a < 40; a++) {
      for (let k = 0; k < 8; k++) {
        flood.push(wss({ protocols: credentialProtocols(LEAKED), localAddress: `127.0.1.${a}` }));
      }
    }
    const outcomes = await Promise.all(
      flood.map((c) => c.ready.then(() => "lease", () => c.closed.then((x) => x.code))),
    );
    const leases = outcomes.filter((o) => o === "lease").length;
    assert.equal(leases, PER_TOKEN, `leases taken by the flood: ${leases}`);
    assert.equal(outcomes.filter((o) => o === 1013).length, 320 - PER_TOKEN);

    // Meanwhile a genuine app joins through the flooded monitor and serves.
    const late = genuineApp("late-app");
    await late.waitFor(/^JOINED /, 30_000);
    await eventually(
      () =>
        po.request({ to: "late-app.whoami" }, { timeout: 2000 })
          .then((r) => !r.isError, () => false),
      30_000,
      "late-app serving through the mesh",
    );
    for (const c of flood) await c.close();

    attacking = false;
    await load;
    console.log(`SECURE MESH: ${ok} requests served, ${failed} failed during the attacks`);
    assert.equal(failed, 0, failures.slice(0, 5).join("; "));
    assert.ok(ok >= 50, `only ${ok} requests served`);
    // The victim kept its session and lease; nobody else appears under its name.
    const after = await connections(m2);
    const now = after.find((c) => c.origin === victim.origin)!;
    assert.equal(now.monitor, victim.monitor);
    assert.equal(now.topic, victim.topic);
    assert.equal(after.filter((c) => c.name === "echo-app").length, 1);
    // The refusals, and the caller's traffic, as /metrics shows them (the monitor's through
    // HTTPS, the caller's from its platform), read by the Prometheus parser.
    const monitorMetrics = parsePrometheus(
      (await httpsGet(`https://127.0.0.1:${m2.port}/metrics`, ca)).body,
    );
    const refused = (code: number) =>
      valueOf(monitorMetrics, "minimesh_monitor_refused_total", { code: String(code) }) ?? 0;
    assert.ok(refused(UNAUTHORIZED) >= 20, `4401: ${refused(UNAUTHORIZED)}`);
    assert.ok(refused(NOT_OWNER) >= 14, `4403: ${refused(NOT_OWNER)}`);
    assert.ok(refused(1013) >= 320 - PER_TOKEN, `1013: ${refused(1013)}`);
    const mine = parsePrometheus(prometheusText(member.platform.metrics()));
    const out = valueOf(mine, "minimesh_mesh_records_total", { direction: "out" }) ?? 0;
    assert.ok(out >= ok, `records out ${out} for ${ok} requests`);
    assert.equal(valueOf(mine, "minimesh_mesh_lease"), 1);
    assert.ok((valueOf(mine, "minimesh_mesh_peers") ?? 0) >= 2);
    assert.equal(valueOf(mine, "minimesh_kafka_up"), 1);
    // Its own partition (the replies came there), and the group's once a fetch answered.
    const lag = mine.find((f) => f.name === "minimesh_mesh_consumer_lag_records")!;
    assert.ok(lag.metrics.length >= 1, JSON.stringify(lag.metrics));
    assert.ok(lag.metrics.every((m) => Number(m.value) >= 0 && Number(m.value) < 1000));
    await eventually(
      async () => !(await connections(m1)).some((c) => c.version === "6.6.6"),
      10_000,
      "the flood's sessions gone",
    );
  });
});
