// The mesh on a secured Kafka, configured as Java Mercury users do it: a SASL_SSL broker of
// its own (TLS with a CA made for the test, SCRAM users), a monitor and an application that know
// Kafka only from a kafka.properties file, and this test process as a third member that finds
// kafka.properties and presence.properties beside its configuration.
import process from "node:process";
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Platform, PostOffice } from "../../mod.ts";
import { connectToCloud } from "../../connector/mod.ts";
import type { KafkaConnector } from "../../connector/mod.ts";
import { clientProperties, devBroker, startKafka, stopKafka } from "../../scripts/kafka_dev.ts";
import { eventually, meshArgs, startMonitor, topicsFor } from "../_presence.ts";
import type { MonitorProcess } from "../_presence.ts";
import { spawnDeno, stopAll } from "../_processes.ts";
import type { DenoProcess } from "../_processes.ts";

const cluster = devBroker(undefined, 19_320, { security: "sasl_ssl" });
const dir = mkdtempSync(join(tmpdir(), "minimesh-sasl-"));
const kafkaFile = join(dir, "kafka.properties");
let monitor: MonitorProcess;
let app: DenoProcess;
let tester: Platform;
let connector: KafkaConnector;
const processes: DenoProcess[] = [];
const t = topicsFor("sasl");

before(async () => {
  await startKafka(cluster);
  // A failed start must not leave the cluster and the processes running (after() may not run).
  try {
    writeFileSync(kafkaFile, clientProperties(cluster));
    const kafka = [`-Dcloud.client.properties=file:${kafkaFile}`];
    monitor = await startMonitor(t.args, kafka);
    processes.push(monitor);
    app = spawnDeno("tests/fixtures/mesh_app.ts", [
      "-Dapplication.name=sasl-app",
      ...meshArgs(monitor.port, t.args, kafka),
    ]);
    processes.push(app);
    await app.waitFor(/^JOINED /, 60_000);
    // This process: kafka.properties and presence.properties beside its configuration, as the
    // Java original's defaults have them; no Kafka or presence flag at all.
    writeFileSync(
      join(dir, "presence.properties"),
      `url=ws://127.0.0.1:${monitor.port}/ws/presence\n`,
    );
    tester = new Platform({
      dir,
      env: { KAFKA_CLIENT: process.env.KAFKA_CLIENT },
      args: ["-Dapplication.name=sasl-tester", "-Dcloud.connector=kafka", ...t.args],
    });
    tester.register("demo.bcast", () => void testerBroadcasts++);
    tester.register("tester.hello", (_h, body) => `hello ${body}`);
    connector = connectToCloud(tester)!;
    await connector.joined;
    await eventually(() => connector.reaches("demo.echo"), 10_000, "the app's routes");
  } catch (e) {
    await stopAll(processes);
    await stopKafka(cluster);
    throw e;
  }
});

let testerBroadcasts = 0;

// A kafka.properties file like the good one, with alice's password wrong.
function wrongPasswordFile(name: string): string {
  const path = join(dir, name);
  writeFileSync(path, clientProperties(cluster, "alice", "not-the-password"));
  return path;
}

after(async () => {
  await connector?.stop();
  await stopAll(processes);
  await stopKafka(cluster);
  rmSync(dir, { recursive: true, force: true });
});

describe("the mesh over SASL_SSL (a broker of its own, SCRAM and TLS)", () => {
  it("joins with the Java original's kafka.properties and says so, secrets left out", async () => {
    await app.waitFor(/Kafka: 127\.0\.0\.1:19320, SASL_SSL, SCRAM-SHA-512 as alice, own CA/);
    await monitor.waitFor(/Kafka: .*SASL_SSL/);
    await monitor.waitFor(/replication factor 1 \(kafka.replication.factor=3, 1 broker\(s\)\)/);
    for (const line of [...app.logs, ...monitor.logs]) {
      assert.doesNotMatch(line, /alice-secret/, "a password in the log");
    }
  });

  it("serves requests both ways and a broadcast reaches every member once", async () => {
    const po = new PostOffice({}, tester);
    const echo = await po.request({ to: "demo.echo", body: "over TLS" }, { timeout: 10_000 });
    assert.equal(echo.body, "over TLS");
    // The app learns this member's routes from its join, which may still be on its way.
    let back: unknown;
    await eventually(
      async () => {
        back = (await po.request(
          { to: "demo.call", headers: { target: "tester.hello" }, body: "app" },
          { timeout: 10_000 },
        )).body;
        return back === "hello app";
      },
      10_000,
      `the app calling this member (last answer: ${back})`,
    );
    const before = Number((await po.request({ to: "demo.count" }, { timeout: 10_000 })).body);
    await po.broadcast({ to: "demo.bcast" });
    await eventually(
      async () => {
        const n = Number((await po.request({ to: "demo.count" }, { timeout: 10_000 })).body);
        return n === before + 1 && testerBroadcasts === 1;
      },
      10_000,
      "the broadcast at both members",
    );
  });

  it("a wrong password: a clear error, /health DOWN, no crash, retries backing off", async () => {
    const wrong = wrongPasswordFile("wrong.properties");
    const bad = spawnDeno("tests/fixtures/mesh_app.ts", [
      "-Dapplication.name=wrong-password",
      "-Dserver.port=0",
      "-Dmandatory.health.dependencies=cloud.connector.health",
      ...meshArgs(monitor.port, t.args, [`-Dcloud.client.properties=file:${wrong}`]),
    ]);
    processes.push(bad);
    const port = Number(/^HTTP (\d+)/.exec(await bad.waitFor(/^HTTP \d+/))![1]);
    const started = Date.now();
    const first = await bad.waitFor(/Kafka refused the credentials of alice/, 30_000);
    assert.match(first, /sasl\.jaas\.config/);
    // The library's own tries go at once for refused credentials (6.5 s of back-off before).
    assert.ok(Date.now() - started < 4000, `the reason after ${Date.now() - started} ms`);
    const t0 = Date.now();
    const res = await fetch(`http://127.0.0.1:${port}/health`);
    const health = await res.json();
    assert.equal(res.status, 400); // the Java original's answer for DOWN
    assert.equal(health.status, "DOWN");
    assert.match(JSON.stringify(health), /Kafka refused this instance's credentials/);
    assert.doesNotMatch(JSON.stringify(health), /not-the-password/);
    // Back-off: 1, 2, 4 s ... between attempts; a storm would log hundreds in these 8 s.
    await new Promise((r) => setTimeout(r, 8000));
    const attempts = bad.logs.filter((l) => /Kafka refused the credentials/.test(l)).length;
    assert.ok(attempts >= 2 && attempts <= 5, `${attempts} attempts in ${Date.now() - t0} ms`);
    assert.ok(bad.proc.exitCode === null, "the application is still running");
    for (const line of bad.logs) assert.doesNotMatch(line, /not-the-password/);
    // Never blamed on the network: Kafka answered, and said no.
    for (const line of bad.logs) assert.doesNotMatch(line, /Kafka is unreachable/);
    // It took no lease: the monitor knows only the two genuine members.
    const info = await monitor.get("/info");
    assert.doesNotMatch(JSON.stringify(info.body), /wrong-password/);
    await bad.stop();
  });

  it("a monitor with a wrong password exits at start, saying why", async () => {
    const wrong = wrongPasswordFile("wrong-monitor.properties");
    const bad = spawnDeno("presence/main.ts", [
      "-Dserver.port=0",
      "-Dserver.host=127.0.0.1",
      `-Dcloud.client.properties=file:${wrong}`,
      ...t.args,
    ]);
    processes.push(bad);
    const spawned = Date.now();
    const line = await bad.waitFor(/cannot start/, 30_000);
    // 2.1 s here, Deno's start included (5 s before the library's tries went at once).
    assert.ok(Date.now() - spawned < 5000, `said why ${Date.now() - spawned} ms after its spawn`);
    assert.match(line, /Kafka refused the credentials of alice \(SCRAM-SHA-512\)/);
    const said = Date.now();
    await bad.exited;
    assert.equal(bad.proc.exitCode, 1);
    assert.ok(Date.now() - said < 1500, `exited ${Date.now() - said} ms after saying why`);
    for (const l of bad.logs) assert.doesNotMatch(l, /not-the-password/);
  });
});
