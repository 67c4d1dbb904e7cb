/**
 * The CPU cost of minimesh's own part of a mesh request, with Kafka replaced by an in-process
 * stub: the caller's path (PostOffice, inbox, envelope encode, record, reply decode) and the
 * responder's (decode, worker, reply, encode, record), next to the envelope codec alone
 * (one encode and one decode) as the baseline of the same run.
 *
 * `deno run -A bench/mesh_path_bench.ts`
 *
 * @module
 */
import { Decoder, Encoder } from "@msgpack/msgpack";
import { EventEnvelope, Platform, PostOffice } from "../mod.ts";
import { eventRecord } from "../internal.ts";
import { stubMesh } from "../tests/_helpers.ts";

const PEER = "2026112600734eb5fd4542fab5c43db0f9825037";
const N = 64_000;

async function best(run: () => Promise<number>): Promise<number> {
  let b = Infinity;
  for (let i = 0; i < 5; i++) b = Math.min(b, await run());
  return b;
}

// Baseline: the codec alone.
const sample = new EventEnvelope({
  to: "demo.echo",
  from: "x.y",
  replyTo: `temporary.inbox@${PEER}`,
  correlationId: "12345",
  tags: { rpc: "10000" },
  body: "ping",
});
const codec = await best(() => {
  const t0 = performance.now();
  for (let i = 0; i < N; i++) EventEnvelope.fromBytes(sample.toBytes());
  return Promise.resolve((performance.now() - t0) * 1000 / N);
});
// For comparison: the same through a plain map and the library's generic codec (the path
// toBytes/fromBytes took before they wrote and read the fields directly).
const encoder = new Encoder({ useBigInt64: true, ignoreUndefined: true });
const decoder = new Decoder({ useBigInt64: true });
const mapCodec = await best(() => {
  const t0 = performance.now();
  for (let i = 0; i < N; i++) {
    EventEnvelope.fromMap(
      decoder.decode(encoder.encode(sample.toMap())) as Record<string, unknown>,
    );
  }
  return Promise.resolve((performance.now() - t0) * 1000 / N);
});

// The caller: 64 in flight; the stub answers each request with a decoded reply.
const caller = new Platform({ dir: "/nonexistent", env: {}, args: [] });
const replyBytes = new EventEnvelope({
  to: caller.inboxAddress,
  from: "demo.echo",
  tags: { rpc: "10000" },
  body: "ping",
  execTime: 0.1,
}).toBytes();
caller.attachMesh(stubMesh((e) => {
  eventRecord("t.multiplex.0001", 3, PEER, e);
  const cid = e.correlationId;
  queueMicrotask(() => {
    const r = EventEnvelope.fromBytes(replyBytes);
    r.correlationId = cid;
    caller.deliverLocal(r);
  });
}));
const po = new PostOffice({}, caller);
const callerPath = await best(async () => {
  const t0 = performance.now();
  await Promise.all(Array.from({ length: 64 }, async () => {
    for (let i = 0; i < N / 64; i++) await po.request({ to: "demo.echo", body: "ping" }, 10_000);
  }));
  return (performance.now() - t0) * 1000 / N;
});

// The responder: decode each request, run the function, encode and "send" the reply.
const responder = new Platform({ dir: "/nonexistent", env: {}, args: [] });
responder.register("demo.echo", (_h, b) => b, 10);
let replies = 0;
let allSent = () => {};
responder.attachMesh(stubMesh((e) => {
  eventRecord("t.multiplex.0001", 3, PEER, e);
  if (++replies === N) allSent();
}));
const requestBytes = sample.toBytes();
const responderPath = await best(async () => {
  replies = 0;
  const sent = new Promise<void>((r) => (allSent = r));
  const t0 = performance.now();
  for (let i = 0; i < N; i += 64) {
    for (let j = 0; j < 64; j++) responder.deliverLocal(EventEnvelope.fromBytes(requestBytes));
    for (let k = 0; k < 3; k++) await null; // let the workers run, as between Kafka batches
  }
  await sent;
  return (performance.now() - t0) * 1000 / N;
});

console.log(`${N.toLocaleString("en-US")} requests, best of 5\n`);
console.log("| path | µs per request | / codec alone |");
console.log("| --- | ---: | ---: |");
console.log(`| envelope encode + decode (baseline) | ${codec.toFixed(2)} | 1.0 |`);
console.log(
  `| the same through a map and the library's codec | ${mapCodec.toFixed(2)} | ${
    (mapCodec / codec).toFixed(1)
  } |`,
);
console.log(`| caller path | ${callerPath.toFixed(2)} | ${(callerPath / codec).toFixed(1)} |`);
console.log(
  `| responder path | ${responderPath.toFixed(2)} | ${(responderPath / codec).toFixed(1)} |`,
);
