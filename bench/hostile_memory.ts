/**
 * Memory under attack: issue 10's rows 6-10 at their original scale, and issue 29's decode bombs,
 * against a real presence monitor and a real mesh application, each in its own process. For
 * every attack it prints the target's resident memory (VmRSS from /proc) before, its peak during
 * the attack (sampled every 20 ms), and 3 s after, what the attack achieved, and for the
 * application the longest its event loop was held (a 10 ms timer inside it, `demo.lag`). The
 * figures are in docs/security.md.
 *
 * `deno run -A bench/hostile_memory.ts` with a broker on KAFKA_BROKERS (default
 * 127.0.0.1:9092), e.g. after `deno task kafka start`.
 *
 * @module
 */
import { EventEnvelope } from "../mod.ts";
import { connect, meshArgs, startMonitor, topicsFor } from "../tests/_presence.ts";
import { spawnDeno } from "../tests/_processes.ts";
import { chunkedPost, decodeBombs, sendBlockSet, sendFirstBlocks } from "../tests/_attacks.ts";
import { postEvent, rssMb } from "../tests/_apps.ts";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function measure(
  name: string,
  pid: number,
  attack: () => Promise<string>,
): Promise<void> {
  await sleep(500);
  const before = rssMb(pid);
  let peak = before;
  const sampler = setInterval(() => (peak = Math.max(peak, rssMb(pid))), 20);
  const t0 = performance.now();
  let outcome: string;
  try {
    outcome = await attack();
  } finally {
    clearInterval(sampler);
  }
  const took = Math.round(performance.now() - t0);
  const lag = pid === app.proc.pid ? `${await appLag()}` : "";
  await sleep(3000);
  const after = rssMb(pid);
  console.log(
    `| ${name} | ${before.toFixed(0)} | ${peak.toFixed(0)} | ${
      after.toFixed(0)
    } | ${took} | ${lag} | ${outcome} |`,
  );
}

// The longest the application's event loop was held since the last call (ms).
async function appLag(): Promise<number> {
  const { reply } = await postEvent(appPort, new EventEnvelope({ to: "demo.lag" }));
  return (reply as EventEnvelope).body as number;
}

const t = topicsFor("memory");
const monitor = await startMonitor(t.args);
const app = spawnDeno("tests/fixtures/mesh_app.ts", [
  "-Dapplication.name=target",
  "-Dserver.port=0",
  ...meshArgs(monitor.port, t.args),
]);
const appPort = Number(/^HTTP (\d+)/.exec(await app.waitFor(/^HTTP \d+/))![1]);
const [, appOrigin, appTopic] = /^JOINED (\w+) (\S+)/.exec(await app.waitFor(/^JOINED /))!;

console.log(
  "| row | RSS before (MB) | peak (MB) | 3 s after (MB) | attack took (ms) | loop held (ms) | outcome |",
);
console.log("| --- | ---: | ---: | ---: | ---: | ---: | --- |");

try {
  await appLag(); // from here on
  for (const bomb of decodeBombs()) {
    await measure(`29/3: six 16 MiB bodies at once, ${bomb.name}`, app.proc.pid!, async () => {
      const answers = await Promise.all(
        Array.from({ length: 6 }, () => postEvent(appPort, bomb.bytes)),
      );
      return `answers ${[...new Set(answers.map((a) => a.status))].join(", ")}`;
    });
  }
  await measure("29/3: six 16 MiB bodies of plain bytes at once", app.proc.pid!, async () => {
    const plain = new EventEnvelope({
      to: "demo.count",
      body: new Uint8Array(16 * 1024 * 1024 - 4096),
    }).toBytes();
    const answers = await Promise.all(
      Array.from({ length: 6 }, () => postEvent(appPort, plain, { "x-async": "true" })),
    );
    return `answers ${[...new Set(answers.map((a) => a.status))].join(", ")}`;
  });
  await measure("29/4: a 63 MB block set of empty maps", app.proc.pid!, async () => {
    const [bomb] = decodeBombs(63 * 1024 * 1024);
    await sendBlockSet(appTopic, appOrigin, bomb.bytes);
    await app.waitFor(/Skipping reassembled event: .*too costly/, 30_000);
    return "skipped: too costly to decode";
  });

  await measure("6: 20 websocket frames of 10 MB at once", monitor.proc.pid!, async () => {
    // From four addresses: one host holds at most 18 leases (issue 29).
    const clients = Array.from(
      { length: 20 },
      (_, i) => connect(monitor.port, { localAddress: `127.0.0.${2 + (i % 4)}` }),
    );
    await Promise.all(clients.map((c) => c.ready));
    for (const c of clients) c.ws.send(new Uint8Array(10_000_000));
    const codes = await Promise.all(clients.map((c) => c.closed.then((x) => x.code)));
    return `closed with ${[...new Set(codes)].join(", ")}`;
  });

  await measure("7: 8 chunked POSTs of 100 MB at once", app.proc.pid!, async () => {
    const answers = await Promise.all(Array.from({ length: 8 }, () => chunkedPost(appPort)));
    const sent = answers.map((a) => a.sent / 1024 / 1024);
    return `answers ${[...new Set(answers.map((a) => a.status))].join(", ")} after ` +
      `${Math.min(...sent).toFixed(0)}-${Math.max(...sent).toFixed(0)} MB sent`;
  });

  await measure("8: 500 first blocks of 900 KB", app.proc.pid!, async () => {
    await sendFirstBlocks(appTopic, appOrigin, 500, 900_000);
    await sleep(1000);
    // Counted in /metrics (the log lines are throttled: whoever writes chooses how many).
    const metrics = await (await fetch(`http://127.0.0.1:${appPort}/metrics`)).text();
    const dropped = /skipped_records_total\{reason="droppedBlockSets"\} (\d+)/.exec(metrics)?.[1];
    return `${dropped} oldest sets dropped (counted)`;
  });

  await measure("9: 50,000 keep-alives in one session", monitor.proc.pid!, async () => {
    const c = connect(monitor.port);
    await c.ready;
    const ka = new EventEnvelope({ to: "keep-alive", headers: { seq: "2" } }).toBytes();
    let sent = 0;
    for (; sent < 50_000 && c.ws.readyState === WebSocket.OPEN; sent++) c.ws.send(ka);
    const closed = await c.closed;
    const t0 = performance.now();
    await monitor.get("/info");
    return `closed ${closed.code} "${closed.reason}"; /info then took ` +
      `${Math.round(performance.now() - t0)} ms`;
  });

  await measure("10: 2,100 connections that never send info", monitor.proc.pid!, async () => {
    // From 21 addresses, 100 each (one address holds at most a tenth of the connections).
    const idle = Array.from(
      { length: 2100 },
      (_, i) => connect(monitor.port, { info: false, localAddress: `127.0.1.${1 + (i % 21)}` }),
    );
    await sleep(2000);
    const t0 = performance.now();
    const genuine = connect(monitor.port);
    await genuine.ready;
    const took = Math.round(performance.now() - t0);
    await genuine.close();
    await Promise.all(idle.map((c) => c.close()));
    return `a genuine app got its lease in ${took} ms`;
  });
} finally {
  await app.stop("SIGKILL");
  await monitor.stop("SIGKILL");
}
