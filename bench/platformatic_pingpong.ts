/**
 * The floor a mesh request could reach on `@platformatic/kafka` (issue 18): a bare ping-pong
 * between two processes over the same broker, no envelopes, routing or inboxes: the driver writes
 * a record to `<t>.req`, the peer echoes it to `<t>.rep`, both coalescing what they send in one
 * turn of the event loop into one produce request (acks=1, as the connector). Same counts as
 * `mesh_bench.ts`, whose baseline is the same ping-pong over kafkajs (`KafkaLink`).
 *
 * `deno run -A bench/platformatic_pingpong.ts [sequential] [concurrent] [--shaped]` (defaults 1500
 * and 36000) with a broker on KAFKA_BROKERS (default 127.0.0.1:9092). With `--shaped` the records
 * have the mesh's shape (a 32-hex key, the `_event_` and `_rx_` headers, a 170-byte value)
 * instead of a short key and a one-byte value: what the record shape alone costs.
 *
 * @module
 */
import { Buffer } from "node:buffer";
import { spawn } from "node:child_process";
import process from "node:process";
import { fileURLToPath } from "node:url";
import { Admin, Consumer, MessagesStreamModes, Producer } from "@platformatic/kafka";

const BROKERS = (process.env.KAFKA_BROKERS ?? "127.0.0.1:9092").split(",");
const IN_FLIGHT = 64;

// Sends what one turn of the event loop produced as one produce request.
function coalescing(producer: Producer<Buffer, Buffer, Buffer, Buffer>, topic: string) {
  let batch: { key: Buffer; value: Buffer; headers?: Map<Buffer, Buffer> }[] = [];
  return (key: Buffer, value: Buffer, headers?: Map<Buffer, Buffer>) => {
    batch.push({ key, value, headers });
    if (batch.length > 1) return;
    queueMicrotask(() => {
      const messages = batch.map((m) => ({ ...m, topic, partition: 0 }));
      batch = [];
      producer.send({ messages, acks: 1 }).catch((e) => console.error(`send: ${e.message}`));
    });
  };
}

// A group of its own: the one consumer is given the topic's one partition. No commits (the
// library's default commits after every fetched batch, on both sides: a broker request per
// batch that the mesh does not make either, so the floor would be lower than it is).
function consumer() {
  return new Consumer({
    groupId: `pingpong-${crypto.randomUUID()}`,
    clientId: "pingpong",
    bootstrapBrokers: BROKERS,
    maxWaitTime: 100,
    autocommit: false,
  });
}

async function peer(t: string): Promise<void> {
  const producer = new Producer({ clientId: "pingpong-peer", bootstrapBrokers: BROKERS });
  const send = coalescing(producer, `${t}.rep`);
  const c = consumer();
  const stream = await c.consume({ topics: [`${t}.req`], mode: MessagesStreamModes.LATEST });
  stream.on("data", (m) => send(m.key, m.value, m.headers));
  console.log("PEER READY");
  process.on("SIGTERM", () => {
    Promise.allSettled([stream.close(), c.close(), producer.close()]).finally(() =>
      process.exit(0)
    );
  });
}

function pct(xs: number[], q: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(q * s.length))];
}

/** The driver's side of the ping-pong: `one()` is one round trip through the peer process. */
export interface PingPong {
  /** Sends one record and resolves when its echo is back. */
  one(): Promise<void>;
  /** Stops the peer and deletes the topics. */
  close(): Promise<void>;
  /** The peer process. */
  readonly peerPid: number;
}

/**
 * Creates the topics, starts the peer process and warms the path up. `shaped`: records shaped as
 * the mesh's (see the module's documentation).
 */
export async function platformaticPingPong(shaped = false): Promise<PingPong> {
  const t = `pp${crypto.randomUUID().slice(0, 8)}`;
  const admin = new Admin({ clientId: "pingpong-admin", bootstrapBrokers: BROKERS });
  await admin.createTopics({ topics: [`${t}.req`, `${t}.rep`], partitions: 1, replicas: 1 });
  await admin.close();
  const child = spawn(
    process.execPath,
    ["run", "-A", fileURLToPath(import.meta.url), "--peer", t],
    {
      stdio: ["ignore", "pipe", "inherit"],
    },
  );
  await new Promise<void>((resolve, reject) => {
    child.stdout!.on("data", (d: Uint8Array) => {
      if (new TextDecoder().decode(d).includes("PEER READY")) resolve();
    });
    child.on("exit", (code) => reject(new Error(`peer exited ${code}`)));
  });
  const producer = new Producer({ clientId: "pingpong-driver", bootstrapBrokers: BROKERS });
  const send = coalescing(producer, `${t}.req`);
  const c = consumer();
  const stream = await c.consume({ topics: [`${t}.rep`], mode: MessagesStreamModes.LATEST });
  const waiting = new Map<string, () => void>();
  stream.on("data", (m) => {
    const key = m.key.toString();
    waiting.get(key)?.();
    waiting.delete(key);
  });
  const value = Buffer.alloc(shaped ? 170 : 1, "x");
  // As the mesh's: `_event_` and the recipient's origin in `_rx_`, the same for every record.
  const headers = shaped
    ? new Map([
      [Buffer.from("_event_"), Buffer.from("1")],
      [Buffer.from("_rx_"), Buffer.from("20261128" + "0123456789abcdef".repeat(2))],
    ])
    : undefined;
  let n = 0;
  const one = () => {
    const key = shaped ? String(++n).padStart(32, "0") : String(++n);
    const back = new Promise<void>((r) => waiting.set(key, r));
    send(Buffer.from(key), value, headers);
    return back;
  };
  // The consumers have just joined their groups: wait until a round trip comes back.
  for (let i = 0; i < 200; i++) await one();
  return {
    one,
    peerPid: child.pid!,
    close: async () => {
      child.kill("SIGTERM");
      await Promise.allSettled([stream.close(), c.close(), producer.close()]);
      const cleanup = new Admin({ clientId: "pingpong-admin", bootstrapBrokers: BROKERS });
      await cleanup.deleteTopics({ topics: [`${t}.req`, `${t}.rep`] }).catch(() => {});
      await cleanup.close();
    },
  };
}

async function driver(seq: number, conc: number, shaped: boolean): Promise<void> {
  const pp = await platformaticPingPong(shaped);
  const lat: number[] = [];
  for (let i = 0; i < seq; i++) {
    const t0 = performance.now();
    await pp.one();
    lat.push(performance.now() - t0);
  }
  const t0 = performance.now();
  await Promise.all(Array.from({ length: IN_FLIGHT }, async () => {
    for (let i = 0; i < conc / IN_FLIGHT; i++) await pp.one();
  }));
  const rate = conc / ((performance.now() - t0) / 1000);
  console.log(
    `@platformatic/kafka ping-pong under Deno ${process.versions.deno}, broker ${BROKERS}` +
      (shaped ? ", records shaped as the mesh's\n" : "\n"),
  );
  console.log("| measure | value |");
  console.log("| --- | ---: |");
  console.log(`| p50 latency, 1 in flight (ms) | ${pct(lat, 0.5).toFixed(2)} |`);
  console.log(`| p99 latency, 1 in flight (ms) | ${pct(lat, 0.99).toFixed(2)} |`);
  console.log(`| throughput, ${IN_FLIGHT} in flight (/s) | ${Math.round(rate)} |`);
  await pp.close();
  process.exit(0);
}

const args = process.argv.slice(2);
if (args[0] === "--peer") await peer(args[1]);
else if (import.meta.main) {
  const counts = args.filter((a) => /^\d+$/.test(a)).map(Number);
  await driver(counts[0] ?? 1500, counts[1] ?? 36_000, args.includes("--shaped"));
}
