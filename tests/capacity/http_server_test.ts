// The HTTP server against strangers who hold connections and send odd methods (docs/security.md,
// "Connections"): real sockets on loopback, attackers on addresses of their own (127.0.0.2 and
// up: every 127/8 address is this machine), genuine clients on 127.0.0.1.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import net from "node:net";
import https from "node:https";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import fc from "fast-check";
import { startHttp } from "../../actuator/mod.ts";
import { EventEnvelope } from "../../mod.ts";
import { serverLimits } from "../../runtime/server.ts";
import type { RunningServer } from "../../runtime/server.ts";
import { captureLogs, sleep, testPlatform } from "../_helpers.ts";
import { spawnDeno } from "../_processes.ts";
import { holdIdle } from "../fixtures/hold_idle.ts";
import { makeTestCertificates } from "../../scripts/kafka_dev.ts";

/**
 * {@link holdIdle} from a process of its own (tests/fixtures/hold_idle.ts), with a CPU of its own:
 * it reconnects as fast as a real attacker does, which one sharing the server's event loop cannot.
 * `stop` ends it and resolves with how many connections it opened.
 */
async function holdIdleElsewhere(
  port: number,
  addresses: number,
  perAddress: number,
  caFile?: string,
): Promise<{ stop: () => Promise<number> }> {
  const args = [String(port), String(addresses), String(perAddress)];
  const attacker = spawnDeno("tests/fixtures/hold_idle.ts", caFile ? [...args, caFile] : args);
  await attacker.waitFor(/HOLDING/);
  return {
    async stop() {
      await attacker.stop();
      return Number(/OPENED (\d+)/.exec(attacker.logs.join("\n"))?.[1] ?? 0);
    },
  };
}

/**
 * A raw HTTP/1.1 connection from 127.0.0.1: `get` sends a request and resolves with the status
 * line ("" when the server closed the connection instead).
 */
function rawClient(port: number) {
  const s = net.connect(port, "127.0.0.1");
  s.on("error", () => {});
  let waiting: ((line: string) => void) | undefined;
  let buffered = "";
  s.on("data", (d) => {
    buffered += d.toString("latin1");
    const end = buffered.indexOf("\r\n\r\n");
    const length = Number(/content-length: (\d+)/i.exec(buffered)?.[1] ?? 0);
    if (end >= 0 && buffered.length >= end + 4 + length) {
      const line = buffered.slice(0, buffered.indexOf("\r\n"));
      buffered = "";
      waiting?.(line);
    }
  });
  const closed = new Promise<void>((r) => s.on("close", () => (waiting?.(""), r())));
  return {
    closed,
    get(): Promise<string> {
      return new Promise((resolve) => {
        if (s.destroyed) return resolve("");
        waiting = resolve;
        s.write("GET /livenessprobe HTTP/1.1\r\nhost: x\r\n\r\n");
      });
    },
    destroy: () => s.destroy(),
  };
}

/** `n` sequential genuine requests; how many were answered 200 within `timeoutMs` each. */
async function genuine(url: string, n: number, timeoutMs = 5000): Promise<number> {
  let ok = 0;
  for (let i = 0; i < n; i++) {
    try {
      const res = await fetch(url, { signal: AbortSignal.timeout(timeoutMs) });
      await res.body?.cancel();
      if (res.status === 200) ok++;
    } catch { /* counted as not served */ }
  }
  return ok;
}

describe("HTTP server: connections cost a stranger its own quota", () => {
  let server: RunningServer;
  let base: string;
  before(async () => {
    const p = testPlatform({
      args: ["-Dserver.max.connections=200", "-Dserver.header.timeout=5"],
    });
    server = await startHttp(p, { port: 0, hostname: "127.0.0.1" });
    base = `http://127.0.0.1:${server.port}`;
  });
  after(() => server.close());

  it("one address holds at most server.max.connections.per.address (a tenth) connections", async () => {
    const logs = await captureLogs();
    const attack = holdIdle(server.port, 1, 600);
    try {
      await sleep(1000);
      assert.equal(await genuine(`${base}/livenessprobe`, 50), 50);
      assert.ok(attack.opened() > 600, "the attacker kept reconnecting");
    } finally {
      attack.stop();
      await logs.stop();
    }
    assert.ok(
      logs.lines.some((l) => /over server\.max\.connections\.per\.address \(20\)/.test(l)),
      logs.lines.join("\n"),
    );
  });

  it("at the limit, a new connection replaces an idle one: >= 99 % served within 2 s while 30 addresses in another process hold 3,000", async () => {
    const attack = await holdIdleElsewhere(server.port, 30, 100);
    let opened = 0;
    try {
      await sleep(1000);
      const served = await genuine(`${base}/livenessprobe`, 200, 2000);
      assert.ok(served >= 198, `${served} of 200 served`);
    } finally {
      opened = await attack.stop();
    }
    assert.ok(opened > 3000, `the strangers kept reconnecting (${opened} opened)`);
  });

  it("a genuine client's connection outlives strangers' churn at the limit (slow to send, as a slow TLS handshake is)", async () => {
    // Generated attacks: how many addresses, and how many connections each tries to hold; every
    // one more than the server holds (200, at most 20 an address), so that strangers churn.
    const attacks = fc.sample(
      fc.record({
        addresses: fc.integer({ min: 11, max: 40 }),
        each: fc.integer({ min: 20, max: 100 }),
      }),
      { numRuns: 4, seed: Date.now() },
    );
    for (const { addresses, each } of attacks) {
      const attack = holdIdle(server.port, addresses, each);
      try {
        await sleep(500);
        // Opened while the server is full, then silent for a while before its request: the
        // oldest connection without a request by then, but its address holds only this one.
        const slow = rawClient(server.port);
        await sleep(1500);
        const opened = attack.opened();
        assert.match(await slow.get(), /^HTTP\/1\.1 200/, `${addresses} x ${each}`);
        slow.destroy();
        assert.ok(opened > addresses * each, "the strangers kept reconnecting");
      } finally {
        attack.stop();
      }
      await sleep(200);
    }
  });

  it("answers 405 to any method a handler does not take, without an error in the log", async () => {
    const logs = await captureLogs();
    // Generated methods: the ones fetch forbids, and any token HTTP allows.
    const method = fc.oneof(
      fc.constantFrom("TRACE", "TRACK", "CONNECT", "PROPFIND", "BREW", "get"),
      fc.stringMatching(/^[A-Z][A-Z-]{0,11}$/),
    ).filter((m) => !["GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"].includes(m));
    try {
      for (const m of fc.sample(method, 100)) {
        const status = await rawStatus(server.port, `${m} / HTTP/1.1\r\nHost: x\r\n\r\n`);
        assert.ok(status === 405 || status === 400, `${m}: ${status}`);
      }
    } finally {
      await logs.stop();
    }
    assert.deepEqual(logs.lines.filter((l) => l.startsWith("error")), []);
    assert.equal(await genuine(`${base}/livenessprobe`, 1), 1);
  });
});

describe("HTTP server: request bodies held at once", () => {
  it("beyond server.max.body.bytes.total a body is dropped and gets 503; room comes back when they end", async () => {
    const p = testPlatform({
      args: ["-Devent.api.max.bytes=1000000", "-Dserver.max.body.bytes.total=2000000"],
    });
    p.register("demo.sink", () => "ok");
    await using server = await startHttp(p, { port: 0, hostname: "127.0.0.1" });
    // Two slow senders hold 1.8 MB between them: declared, barely started.
    const slow = Array.from({ length: 2 }, () => {
      const s = net.connect(server.port, "127.0.0.1");
      s.on("error", () => {});
      s.write(
        "POST /api/event HTTP/1.1\r\nHost: x\r\ncontent-length: 900000\r\n\r\n" + "x".repeat(100),
      );
      return s;
    });
    await sleep(300);
    // A third is read and dropped, and answered 503 (with its answer readable: the body was
    // read to the end, so the connection is not closed under a client still sending).
    const third = await fetch(`http://127.0.0.1:${server.port}/api/event`, {
      method: "POST",
      body: new Uint8Array(900_000) as BodyInit,
    });
    assert.equal(third.status, 503);
    assert.equal(third.headers.get("retry-after"), "1");
    assert.match((await third.json()).message, /Too many large request bodies/);
    for (const s of slow) s.destroy();
    await sleep(300);
    const body = new EventEnvelope({ to: "demo.sink", body: new Uint8Array(800_000) }).toBytes();
    const res = await fetch(`http://127.0.0.1:${server.port}/api/event`, {
      method: "POST",
      body: body as BodyInit,
    });
    await res.body?.cancel();
    assert.equal(res.status, 200, "room again once the slow bodies ended");
  });
});

describe("HTTP server with TLS: handshakes count as connections", () => {
  let server: RunningServer;
  let dir: string;
  let ca: string;
  let caFile: string;
  before(async () => {
    dir = mkdtempSync(join(tmpdir(), "minimesh-http-tls-"));
    const certs = makeTestCertificates(dir);
    caFile = certs.caPem;
    ca = readFileSync(certs.caPem, "utf8");
    const p = testPlatform({
      args: [
        "-Dserver.max.connections=200",
        "-Dserver.header.timeout=5",
        `-Dserver.tls.cert=${certs.certPem}`,
        `-Dserver.tls.key=${certs.keyPem}`,
      ],
    });
    server = await startHttp(p, { port: 0, hostname: "127.0.0.1" });
  });
  after(async () => {
    await server.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it(">= 99 % served within 2 s while strangers in another process reconnect at once (a refused connection costs no handshake)", async () => {
    // The strangers run in a process of their own, as real ones do: in the server's process,
    // their own TLS client work (about 0.5 ms a reconnect) was charged to the server's event
    // loop, and under a busy CI machine a genuine handshake waited seconds for it.
    // Refused before anything of TLS is set up for it; set up first, each cost the server about
    // 0.5 ms of CPU under Deno, and this flood kept genuine handshakes waiting for seconds.
    // Strangers who complete their handshakes, and strangers who never start one (held until
    // the header timeout, or closed to make room).
    for (const strangers of ["handshaking", "silent"]) {
      const attack = await holdIdleElsewhere(
        server.port,
        30,
        100,
        strangers === "handshaking" ? caFile : undefined,
      );
      let opened = 0;
      try {
        await sleep(1500);
        let served = 0;
        for (let i = 0; i < 100; i++) {
          served += await httpsStatus(server.port, ca, 2000) === 200 ? 1 : 0;
        }
        assert.ok(served >= 99, `${strangers} strangers: ${served} of 100 served`);
      } finally {
        opened = await attack.stop();
      }
      assert.ok(opened > 3000, `${strangers} strangers kept reconnecting (${opened} opened)`);
    }
  });
});

/** Sends `request` on a raw socket; the status of the answer (0 when there is none). */
function rawStatus(port: number, request: string): Promise<number> {
  return new Promise((resolve) => {
    let answer = "";
    const s = net.connect(port, "127.0.0.1", () => s.write(request));
    s.on("data", (d) => {
      answer += d.toString();
      if (answer.includes("\r\n")) s.destroy();
    });
    s.on("error", () => {});
    s.on("close", () => resolve(Number(/^HTTP\/1\.1 (\d+)/.exec(answer)?.[1] ?? 0)));
  });
}

/**
 * One GET /livenessprobe over TLS on a new connection: its status (0 when it failed or took
 * longer than `timeoutMs`).
 */
function httpsStatus(port: number, ca: string, timeoutMs = 5000): Promise<number> {
  return new Promise((resolve) => {
    const req = https.get({
      host: "127.0.0.1",
      servername: "localhost",
      port,
      path: "/livenessprobe",
      ca,
      agent: false,
    }, (res) => {
      clearTimeout(deadline);
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    const deadline = setTimeout(() => req.destroy(), timeoutMs);
    req.on("error", () => (clearTimeout(deadline), resolve(0)));
  });
}

describe("HTTP server: kept-alive connections", () => {
  it("waits for the next request longer than for headers, then closes the idle connection", async () => {
    const p = testPlatform({
      args: ["-Dserver.header.timeout=1", "-Dserver.keep.alive.timeout=3"],
    });
    const server = await startHttp(p, { port: 0, hostname: "127.0.0.1" });
    const c = rawClient(server.port);
    try {
      assert.match(await c.get(), /^HTTP\/1.1 200/);
      await sleep(1600); // idle past the header timeout: still open
      assert.match(await c.get(), /^HTTP\/1.1 200/, "reused after 1.6 s idle");
      const t0 = performance.now();
      await c.closed;
      const idle = performance.now() - t0;
      assert.ok(idle > 2500 && idle < 4500, `closed after ${Math.round(idle)} ms idle`);
    } finally {
      c.destroy();
      await server.close();
    }
  });

  it("keeps idle connections 120 s by default, longer than common clients keep theirs", () => {
    assert.equal(serverLimits(testPlatform().config, {}).keepAliveMs, 120_000);
  });
});
