import { describe, it } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import { Inbox } from "./_inbox.ts";
import type { MultiWaiter, SingleWaiter } from "./_inbox.ts";
import { EventEnvelope } from "./envelope.ts";

const PEERS = ["p0", "p1", "p2"];

// One request of a waiter: its correlation id without a token, and the one it was sent with.
interface Sent {
  w: SingleWaiter | MultiWaiter;
  id: string;
  cid?: string;
}

describe("Inbox.waiting", () => {
  it("counts, per peer, exactly the requests that wait on it, whatever happens to them (generated)", () => {
    const op = fc.oneof(
      fc.record({ kind: fc.constant("single" as const), peer: fc.nat(2) }),
      fc.record({
        kind: fc.constant("multi" as const),
        n: fc.integer({ min: 1, max: 4 }),
        peer: fc.nat(2),
      }),
      fc.record({
        kind: fc.constantFrom("reply", "again", "fail", "expire", "retry"),
        at: fc.nat(50),
      }),
    );
    fc.assert(fc.property(fc.array(op, { maxLength: 60 }), (ops) => {
      const inbox = new Inbox();
      const sent: Sent[] = [];
      const all: (SingleWaiter | MultiWaiter)[] = [];
      for (const o of ops) {
        if (o.kind === "single") {
          const w = inbox.single(60_000, true, undefined, false);
          w.promise.catch(() => {});
          w.retry = new EventEnvelope({ to: "a.b" });
          all.push(w);
          sent.push({ w, id: String(w.id), cid: inbox.sentTo(String(w.id), PEERS[o.peer]) });
        } else if (o.kind === "multi") {
          const w = inbox.multi(60_000, true, new Array(o.n).fill(undefined));
          w.promise.catch(() => {});
          all.push(w);
          for (let i = 1; i <= o.n; i++) {
            const id = `${w.id}-${i}`;
            sent.push({ w, id, cid: inbox.sentTo(id, PEERS[(o.peer + i) % 3]) });
          }
        } else if (sent.length > 0) {
          const s = sent[o.at % sent.length];
          if (o.kind === "reply" && s.cid !== undefined) {
            inbox.completeFromPeer(new EventEnvelope({ correlationId: s.cid }));
          } else if (o.kind === "again") {
            s.cid = inbox.sentTo(s.id, PEERS[o.at % 3]); // sent again, to another instance
          } else if (o.kind === "fail") inbox.fail(s.w, new Error("cannot send"));
          else if (o.kind === "expire" && inbox.deadlines.settle(s.w)) s.w.expire();
          else if (o.kind === "retry") inbox.retriesFor(PEERS[o.at % 3]);
        }
        for (const p of PEERS) {
          assert.equal(inbox.waiting(p), inbox.waitingOn(p).length, `${p} after ${o.kind}`);
        }
      }
      for (const w of all) if (inbox.deadlines.settle(w)) w.expire();
      for (const p of PEERS) assert.equal(inbox.waiting(p), 0);
    }));
  });
});
