// Hostile clients shared by the hostile tests and the memory benchmark.
import net from "node:net";
import { EventEnvelope } from "../mod.ts";
import { eventRecord, splitVirtualTopic, toBlocks } from "../internal.ts";
import { testKafka } from "./_kafka.ts";

/**
 * POSTs a chunked body of up to `maxBytes` to `/api/event` on a raw socket, as fast as the
 * server reads it, and stops at the first answer. Resolves with the HTTP status (0 when the
 * connection ended without one) and how many body bytes were sent before it.
 */
export function chunkedPost(
  port: number,
  maxBytes = 100 * 1024 * 1024,
): Promise<{ status: number; sent: number }> {
  return new Promise((resolve) => {
    let sent = 0, answer = "";
    const s = net.connect(port, "127.0.0.1");
    const done = () => {
      s.destroy();
      resolve({ status: Number(/^HTTP\/1\.1 (\d+)/.exec(answer)?.[1] ?? 0), sent });
    };
    s.on("data", (d) => {
      answer += d.toString();
      if (answer.includes("\r\n\r\n")) done();
    });
    // A write error (the server closed while we were sending) is followed by "close", after
    // any answer that arrived has been read.
    s.on("error", () => {});
    s.on("close", done);
    s.on("connect", () => {
      s.write(
        "POST /api/event HTTP/1.1\r\nHost: x\r\ncontent-type: application/octet-stream\r\n" +
          "transfer-encoding: chunked\r\n\r\n",
      );
      const chunk = new Uint8Array(64 * 1024);
      const pump = () => {
        while (sent < maxBytes && !s.destroyed && answer === "") {
          sent += chunk.length;
          s.write(`${chunk.length.toString(16)}\r\n`);
          s.write(chunk);
          if (!s.write("\r\n")) return void s.once("drain", pump);
        }
        if (!s.destroyed && answer === "") s.end("0\r\n\r\n");
      };
      pump();
    });
  });
}

/** Writes `events` onto the partition leased as `topic` to `origin`, ten records a request. */
async function sendInTens(topic: string, origin: string, events: EventEnvelope[]): Promise<void> {
  const link = testKafka("attacker");
  const [physical, partition] = splitVirtualTopic(topic);
  try {
    for (let i = 0; i < events.length; i += 10) {
      await link.send(
        events.slice(i, i + 10).map((e) => eventRecord(physical, partition, origin, e)),
      );
    }
  } finally {
    await link.close();
  }
}

/**
 * Writes the first block (of 100) of `sets` large events that never complete, each `bytes`
 * long, onto the partition leased as `topic` to `origin`.
 */
export function sendFirstBlocks(
  topic: string,
  origin: string,
  sets: number,
  bytes: number,
): Promise<void> {
  const body = new Uint8Array(bytes);
  return sendInTens(
    topic,
    origin,
    Array.from(
      { length: sets },
      (_, i) =>
        new EventEnvelope({ headers: { _id_: `set-${i}`, _blk_: "1", _max_: "100" }, body }),
    ),
  );
}

// MsgPack by hand: the bombs are far past what any encoder would write for us.
function str(s: string): number[] {
  return [0xa0 | s.length, ...[...s].map((c) => c.charCodeAt(0))];
}
function u32(n: number): number[] {
  return [n >>> 24, (n >>> 16) & 0xff, (n >>> 8) & 0xff, n & 0xff];
}

/**
 * An envelope (STANDARD keys) for `to` whose `field` is the value that `fill` writes into the
 * rest of `size` bytes; `fill(bytes, from)` returns where it stopped.
 */
function bomb(
  size: number,
  field: "body" | "headers",
  fill: (bytes: Uint8Array, from: number) => number,
): Uint8Array {
  const bytes = new Uint8Array(size);
  const head = [0x82, ...str("to"), ...str("demo.echo"), ...str(field)];
  bytes.set(head);
  return bytes.subarray(0, fill(bytes, head.length));
}

/**
 * Decode bombs of about `size` bytes (16 MiB less a little by default), by shape: values that
 * cost far more decoded than encoded, nesting, and maps too wide to build quickly. Each is a
 * well-formed envelope for `demo.echo`.
 */
export function decodeBombs(size = 16 * 1024 * 1024 - 4096): { name: string; bytes: Uint8Array }[] {
  const list = (element: number[]) => (b: Uint8Array, at: number) => {
    const n = Math.floor((b.length - at - 5) / element.length);
    b.set([0xdd, ...u32(n)], at);
    at += 5;
    for (let i = 0; i < n; i++, at += element.length) b.set(element, at);
    return at;
  };
  const wideMap = (value: number[]) => (b: Uint8Array, at: number) => {
    // Keys k0000000 (9 bytes with their header), each with `value`.
    const n = Math.floor((b.length - at - 5) / (9 + value.length));
    b.set([0xdf, ...u32(n)], at);
    at += 5;
    for (let i = 0; i < n; i++) {
      b.set(str(`k${String(i).padStart(7, "0")}`), at);
      b.set(value, at + 9);
      at += 9 + value.length;
    }
    return at;
  };
  return [
    { name: "a list of empty maps", bytes: bomb(size, "body", list([0x80])) },
    { name: "a list of empty lists", bytes: bomb(size, "body", list([0x90])) },
    { name: "a list of short strings", bytes: bomb(size, "body", list(str("ab"))) },
    {
      name: "lists nested 16 M deep",
      bytes: bomb(size, "body", (b, at) => {
        b.fill(0x91, at, b.length - 1);
        b[b.length - 1] = 0xc0;
        return b.length;
      }),
    },
    { name: "a map of 1 M keys", bytes: bomb(size, "body", wideMap([0x00])) },
    { name: "1.5 M header keys", bytes: bomb(size, "headers", wideMap(str(""))) },
  ];
}

/**
 * Writes `bytes` as one complete block set (the mesh's large-event form) onto the partition
 * leased as `topic` to `origin`.
 */
export function sendBlockSet(topic: string, origin: string, bytes: Uint8Array): Promise<void> {
  return sendInTens(topic, origin, toBlocks(`bomb-${Date.now()}`, bytes));
}
