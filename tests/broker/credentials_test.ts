// Mesh credentials (mesh.tokens): a monitor with tokens closes every websocket that does not
// offer one of them in its handshake, before a session or a lease exists; applications with a
// token join as before; without tokens the mesh stays open (and the monitor says so).
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { sleep } from "../_helpers.ts";
import { credentialProtocols, NOT_OWNER, UNAUTHORIZED } from "../../protocol/credentials.ts";
import { connect, eventually, meshArgs, startMonitor, topicsFor } from "../_presence.ts";
import type { MonitorProcess } from "../_presence.ts";
import { spawnDeno, stopAll } from "../_processes.ts";
import type { DenoProcess } from "../_processes.ts";

interface ConnectionView {
  origin: string;
  monitor: string;
  topic: string | null;
}

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

  it("quota: one token holds at most presence.max.connections.per.token leases", async () => {
    const m = await startMonitor([
      ...topicsFor("token-quota").args,
      `-Dmesh.tokens=${TOKENS.join(",")}`,
      "-Dpresence.max.connections.per.token=2",
    ]);
    processes.push(m);
    // Each from its own address: only the token's quota counts.
    const team = (token: string, i: number) =>
      connect(m.port, { protocols: credentialProtocols(token), localAddress: `127.0.0.${10 + i}` });
    const held = [team(TOKENS[0], 0), team(TOKENS[0], 1)];
    for (const c of held) assert.match(await c.ready, /multiplex/);
    const third = await team(TOKENS[0], 2).closed;
    assert.equal(third.code, 1013);
    assert.match(third.reason, /Too many connections with token 1 \(2\)/);
    // The other team's token has its own quota.
    const other = team(TOKENS[1], 3);
    assert.match(await other.ready, /multiplex/);
    for (const c of [...held, other]) await c.close();
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

describe("owned identities", () => {
  it("only the instance that first claimed an origin may claim it again, through any monitor", async () => {
    const ot = topicsFor("owned");
    const [m1, m2] = [await startMonitor(ot.args), await startMonitor(ot.args)];
    processes.push(m1, m2);
    const owner = connect(m1.port, { protocols: credentialProtocols(undefined), identity: "mine" });
    await owner.ready;
    // The hijack of issue 15: the origin (every /info shows it) through the other monitor,
    // with no secret or a wrong one, again and again.
    for (const identity of [undefined, "guess", undefined, "guess"]) {
      const thief = connect(m2.port, { origin: owner.origin, identity });
      const closed = await thief.closed;
      assert.equal(closed.code, NOT_OWNER);
      assert.match(closed.reason, /belongs to another instance/);
    }
    assert.equal(owner.ws.readyState, WebSocket.OPEN, "the owner's session stays");
    await m2.waitFor(/Refused websocket|belongs to another instance/);
    // After the owner dropped its socket (its lease released), the origin stays reserved for
    // it, through either monitor.
    await owner.close();
    const thief = connect(m1.port, { origin: owner.origin, identity: "guess" });
    assert.equal((await thief.closed).code, NOT_OWNER);
    const back = connect(m2.port, { origin: owner.origin, identity: "mine" });
    assert.match(await back.ready, /multiplex/);
    await back.close();
  });

  it("an application keeps its origin and lease when it moves; a client without a secret stays open", async () => {
    const ot = topicsFor("owned-app");
    const [m1, m2] = [await startMonitor(ot.args), await startMonitor(ot.args)];
    processes.push(m1, m2);
    const app = spawnDeno("tests/fixtures/mesh_app.ts", [
      "-Dapplication.name=owned-app",
      ...meshArgs(m1.port, ot.args),
      `-Dpresence.url=ws://127.0.0.1:${m1.port}/ws/presence,ws://127.0.0.1:${m2.port}/ws/presence`,
    ]);
    processes.push(app);
    const [, origin, topic] = /^JOINED (\w+) (\S+)/.exec(await app.waitFor(/^JOINED /, 30_000))!;
    const thief = connect(m2.port, { origin, protocols: credentialProtocols(undefined) });
    assert.equal((await thief.closed).code, NOT_OWNER);
    const body = JSON.stringify((await m2.get("/info")).body);
    assert.match(body, new RegExp(origin));
    assert.doesNotMatch(body, /verifier|identity/, "/info shows no secret and no digest");
    // Its monitor stops: the app reconnects through the other with its secret, same lease.
    await m1.stop();
    await eventually(
      async () => {
        const info = (await m2.get("/info")).body as { more: { connections: ConnectionView[] } };
        const c = info.more.connections.find((c) => c.origin === origin);
        return c?.monitor === m2.origin && c.topic === topic;
      },
      30_000,
      "the app on the second monitor with its lease",
    );
    // An instance without a secret (as a Java one) can be taken over, as before.
    const java = connect(m2.port);
    await java.ready;
    const m3 = await startMonitor(ot.args);
    processes.push(m3);
    const other = connect(m3.port, { origin: java.origin });
    await other.ready;
    assert.equal((await java.closed).code, 1013, "superseded");
    await other.close();
    await app.stop();
  });

  it("a crashed instance with a fixed appId rejoins at once; a second one at the same time does not", async () => {
    const ot = topicsFor("owned-restart");
    const m = await startMonitor(ot.args);
    processes.push(m);
    const dir = mkdtempSync(join(tmpdir(), "minimesh-identity-"));
    const start = () => {
      const p = spawnDeno("tests/fixtures/mesh_app.ts", [
        "-Dapplication.name=fixed-app",
        `-Dtest.app.id=fixed-${m.port}`,
        `-Dmesh.identity.dir=${dir}`,
        ...meshArgs(m.port, ot.args),
      ]);
      processes.push(p);
      return p;
    };
    try {
      const first = start();
      const origin = /^JOINED (\w+)/.exec(await first.waitFor(/^JOINED /, 30_000))![1];
      // A second process with the same appId while the first runs: refused (through the same
      // monitor as already connected), never joined, no error storm.
      const twin = start();
      await twin.waitFor(/already connected|for another instance/, 30_000);
      await sleep(2500);
      assert.ok(!twin.logs.some((l) => l.startsWith("JOINED ")), "the twin stays out");
      assert.ok(!twin.logs.some((l) => /\[ERR\]/.test(l)), twin.logs.join("\n"));
      await twin.stop();
      // kill -9, then at once the same appId again: the kept secret proves it is the same.
      first.proc.kill("SIGKILL");
      await first.exited;
      const t0 = performance.now();
      const again = start();
      const line = await again.waitFor(/^JOINED /, 30_000);
      const took = Math.round(performance.now() - t0);
      console.log(`a crashed instance with a fixed appId joined again ${took} ms after its start`);
      assert.equal(/^JOINED (\w+)/.exec(line)![1], origin);
      assert.ok(took < 5000, `joined again after ${took} ms`);
      assert.ok(!again.logs.some((l) => /\[ERR\]|another instance/.test(l)), again.logs.join("\n"));
      await again.stop();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
