// TLS for the presence monitor and the applications' HTTP servers: certificates made for the
// test (a CA and a server certificate), a monitor serving WSS and HTTPS with mesh.tokens, an
// application that reaches it through wss:// trusting the CA, and serves HTTPS itself.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { readFileSync, rmSync } from "node:fs";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { makeTestCertificates } from "../../scripts/kafka_dev.ts";
import type { TestCertificates } from "../../scripts/kafka_dev.ts";
import { BROKERS, connect, httpsGet, startMonitor, topicsFor } from "../_presence.ts";
import type { MonitorProcess } from "../_presence.ts";
import { spawnDeno, stopAll } from "../_processes.ts";
import type { DenoProcess } from "../_processes.ts";

const dir = mkdtempSync(join(tmpdir(), "minimesh-tls-"));
let certs: TestCertificates;
let monitor: MonitorProcess;
const processes: DenoProcess[] = [];
const t = topicsFor("tls");
const TOKEN = "tls-test-token";

before(async () => {
  certs = makeTestCertificates(dir);
  monitor = await startMonitor([
    ...t.args,
    `-Dserver.tls.cert=${certs.certPem}`,
    `-Dserver.tls.key=${certs.keyPem}`,
    `-Dmesh.tokens=${TOKEN}`,
  ]);
  processes.push(monitor);
});

after(async () => {
  await stopAll(processes);
  rmSync(dir, { recursive: true, force: true });
});

describe("TLS (server.tls.cert / server.tls.key, presence.tls.ca)", () => {
  it("the monitor serves HTTPS only: trusted with the CA, refused without it", async () => {
    const ca = readFileSync(certs.caPem, "utf8");
    const ok = await httpsGet(`https://127.0.0.1:${monitor.port}/livenessprobe`, ca);
    assert.equal(ok.status, 200);
    await assert.rejects(httpsGet(`https://127.0.0.1:${monitor.port}/livenessprobe`));
    // Plain HTTP and plain ws:// get nothing from it.
    await assert.rejects(fetch(`http://127.0.0.1:${monitor.port}/livenessprobe`));
    const plain = connect(monitor.port);
    await assert.rejects(plain.ready);
  });

  it("an app joins through wss:// with the CA and its token, and serves HTTPS", async () => {
    const app = spawnDeno("tests/fixtures/mesh_app.ts", [
      "-Dapplication.name=tls-app",
      ...t.args,
      `-Dpresence.url=wss://127.0.0.1:${monitor.port}/ws/presence`,
      `-Dpresence.tls.ca=${certs.caPem}`,
      `-Dmesh.tokens=${TOKEN}`,
      `-Dbootstrap.servers=${BROKERS}`,
      "-Dcloud.connector=kafka",
      "-Dserver.port=0",
      `-Dserver.tls.cert=${certs.certPem}`,
      `-Dserver.tls.key=${certs.keyPem}`,
    ]);
    processes.push(app);
    const port = Number(/^HTTP (\d+)/.exec(await app.waitFor(/^HTTP \d+/))![1]);
    await app.waitFor(/^JOINED /, 30_000);
    const ca = readFileSync(certs.caPem, "utf8");
    const info = await httpsGet(`https://127.0.0.1:${monitor.port}/info`, ca);
    assert.match(info.body, /tls-app/);
    const health = await httpsGet(`https://127.0.0.1:${port}/livenessprobe`, ca);
    assert.equal(health.status, 200);
  });
});
