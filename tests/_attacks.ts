// Hostile clients shared by the hostile tests and the memory benchmark.
import net from "node:net";
import { EventEnvelope } from "../mod.ts";
import { eventRecord, splitVirtualTopic } from "../internal.ts";
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

/**
 * Writes the first block (of 100) of `sets` large events that never complete, each `bytes`
 * long, onto the partition leased as `topic` to `origin`, ten records a produce request.
 */
export async function sendFirstBlocks(
  topic: string,
  origin: string,
  sets: number,
  bytes: number,
): Promise<void> {
  const link = testKafka("blocks");
  const [physical, partition] = splitVirtualTopic(topic);
  const body = new Uint8Array(bytes);
  const first = (i: number) =>
    eventRecord(
      physical,
      partition,
      origin,
      new EventEnvelope({ headers: { _id_: `set-${i}`, _blk_: "1", _max_: "100" }, body }),
    );
  try {
    for (let i = 0; i < sets; i += 10) {
      await link.send(Array.from({ length: Math.min(10, sets - i) }, (_, j) => first(i + j)));
    }
  } finally {
    await link.close();
  }
}
