// Mesh credentials (mesh.tokens): a monitor with tokens closes every websocket that does not
// offer one of them in its handshake, before a session or a lease exists; applications with a
// token join as before; without tokens the mesh stays open (and the monitor says so).
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { credentialProtocols, UNAUTHORIZED } from "../../connector/credentials.ts";
import { connect, meshArgs, startMonitor, topicsFor } from "../_presence.ts";
import type { MonitorProcess } from "../_presence.ts";
import { spawnDeno, stopAll } from "../_processes.ts";
import type { DenoProcess } from "../_processes.ts";

const TOKENS = ["first-s3cret-token", "next-s3cret-token"];
const t = topicsFor("tokens");
let monitor: MonitorProcess;
const processes: DenoProcess[] = [];

before(async () => {
  monitor = await startMonitor([...t.args, `-Dmesh.tokens=${TOKENS.join(",")}`]);
  processes.push(monitor);
});

after(async () => {
  await stopAll(processes);
});

describe("mesh credentials (mesh.tokens)", () => {
  it("closes a websocket without a token, or with a wrong one, before it leases anything", async () => {
    const none = connect(monitor.port);
    const wrong = connect(monitor.port, { protocols: credentialProtocols("guessed-token") });
    for (const c of [none, wrong]) {
      const closed = await c.closed;
      assert.equal(closed.code, UNAUTHORIZED);
      assert.match(closed.reason, /valid mesh token/);
      await assert.rejects(c.ready);
    }
    const info = await monitor.get("/info");
    assert.doesNotMatch(JSON.stringify(info.body), new RegExp(`${none.origin}|${wrong.origin}`));
  });

  it("accepts either configured token (rotation), and a genuine app joins and serves", async () => {
    const c = connect(monitor.port, { protocols: credentialProtocols(TOKENS[0]) });
    assert.match(await c.ready, /multiplex/);
    await c.close();
    const app = spawnDeno("tests/fixtures/mesh_app.ts", [
      "-Dapplication.name=token-app",
      `-Dmesh.tokens=${TOKENS[1]}`,
      ...meshArgs(monitor.port, t.args),
    ]);
    processes.push(app);
    await app.waitFor(/^JOINED /, 30_000);
    const info = JSON.stringify((await monitor.get("/info")).body);
    assert.match(info, /token-app/);
  });

  it("an app without the token says why and stays out; no token is ever logged", async () => {
    const lost = spawnDeno("tests/fixtures/mesh_app.ts", [
      "-Dapplication.name=no-token",
      ...meshArgs(monitor.port, t.args),
    ]);
    processes.push(lost);
    await lost.waitFor(/refused this instance's mesh credential \(none given\)/, 30_000);
    assert.equal(lost.proc.exitCode, null, "still running");
    await monitor.waitFor(/Refused \d+ websocket\(s\) without a valid mesh token/);
    for (const line of [...monitor.logs, ...lost.logs]) assert.doesNotMatch(line, /s3cret/);
    await lost.stop();
  });

  it("quota: one address holds at most presence.max.connections.per.address leases", async () => {
    const m = await startMonitor([
      ...topicsFor("quota").args,
      "-Dpresence.max.connections.per.address=3",
    ]);
    processes.push(m);
    const held = Array.from({ length: 3 }, () => connect(m.port));
    for (const c of held) assert.match(await c.ready, /multiplex/);
    const fourth = connect(m.port);
    const closed = await fourth.closed;
    assert.equal(closed.code, 1013);
    assert.match(closed.reason, /Too many connections from one address \(3\)/);
    await held[0].close();
    // Its count goes down with the close: the next one gets its lease.
    let next = connect(m.port);
    for (let i = 0; i < 20 && !(await next.ready.then(() => true, () => false)); i++) {
      await new Promise((r) => setTimeout(r, 100));
      next = connect(m.port);
    }
    assert.match(await next.ready, /multiplex/);
    for (const c of [...held.slice(1), next]) await c.close();
  });

  it("without tokens the mesh is open, as in the Java original, and the monitor says so", async () => {
    const open = await startMonitor(topicsFor("open").args);
    processes.push(open);
    await open.waitFor(/The mesh is open/);
    const c = connect(open.port);
    assert.match(await c.ready, /multiplex/);
    await c.close();
  });
});
