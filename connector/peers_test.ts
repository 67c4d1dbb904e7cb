// The route exchange of the group's registry (peers.ts), fed record by record: what this
// instance writes to the group in answer to joins and exchanges.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { Platform } from "../bus/platform.ts";
import { EventEnvelope } from "../bus/envelope.ts";
import type { InRecord, KafkaClient, OutRecord } from "../kafka/client.ts";
import { registryMessage } from "../protocol/registry.ts";
import { LifeCycle } from "./life_cycle.ts";
import { Peers } from "./peers.ts";
import { RoutingTable } from "./routing_table.ts";

const GROUP = 1;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function peersOf(platform: Platform) {
  const written: Record<string, string>[] = [];
  const refuse = { nextAdd: false };
  const kafka = {
    send(records: OutRecord[]) {
      const headers = records.map((r) => EventEnvelope.fromBytes(r.value as Uint8Array).headers);
      // The next route message is refused (as with Kafka away).
      if (refuse.nextAdd && headers.some((h) => h.type === "add")) {
        refuse.nextAdd = false;
        return Promise.reject(new Error("Kafka away"));
      }
      written.push(...headers);
      return Promise.resolve();
    },
  } as unknown as KafkaClient;
  const peers = new Peers({
    platform,
    kafka,
    table: new RoutingTable(),
    lifeCycle: new LifeCycle(),
    monitorTopic: "service.monitor",
    group: GROUP,
    personality: "me, APP",
    topic: () => "service.multiplex.0001-000",
    peerState: () => Promise.resolve("connected"),
  });
  let offset = 0;
  const read = (
    type: string,
    origin: string,
    headers: Record<string, string> = {},
    body?: unknown,
  ) =>
    peers.onRecord(
      {
        topic: "service.monitor",
        partition: GROUP,
        offset: String(offset++),
        key: undefined,
        headers: { _event_: "1" },
        value: registryMessage(GROUP, type as "add", {
          origin,
          topic: `service.multiplex.0001-0${offset}`,
          ...headers,
        }, body).toBytes(),
      } satisfies InRecord,
    );
  const adds = () => written.filter((h) => h.type === "add");
  return { peers, adds, read, refuse };
}

describe("the route exchange", () => {
  it("answers an exchange only where the peer may lack this instance's routes", async () => {
    const platform = new Platform({ dir: "/nonexistent", env: {}, args: [] });
    const me = platform.origin;
    const p = "20261205aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
    const q = "20261205bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";
    const { peers, adds, read } = peersOf(platform);
    try {
      // p joins: answered with my routes and an exchange.
      read("join", p);
      await sleep(150);
      assert.deepEqual(adds().map((h) => h.exchange), ["true"]);
      // p's answer to a third peer's join asks for an exchange: p read mine after meeting me.
      read("add", p, { exchange: "true" }, { "p.route": "p, APP" });
      await sleep(150);
      assert.equal(adds().length, 1, "no answer to a peer that has my routes");
      // q, never met, asks: it may lack them.
      read("add", q, { exchange: "true" }, { "q.route": "q, APP" });
      await sleep(150);
      assert.equal(adds().length, 2);
      assert.equal(adds()[1].exchange, undefined);
      // My keep-alive came back: a peer that dropped me meets me again by it and asks.
      read("keep-alive", me);
      read("add", p, { exchange: "true" }, { "p.route": "p, APP" });
      await sleep(150);
      assert.equal(adds().length, 3, "the exchange my keep-alive may have caused is answered");
      read("add", q, { exchange: "true" }, { "q.route": "q, APP" });
      await sleep(150);
      assert.equal(adds().length, 3);
      // The same after my own join.
      read("join", me);
      read("add", q, { exchange: "true" }, { "q.route": "q, APP" });
      await sleep(150);
      assert.equal(adds().length, 4);
    } finally {
      peers.stop();
    }
  });

  it("answers the next exchange when its routes could not be written", async () => {
    const platform = new Platform({ dir: "/nonexistent", env: {}, args: [] });
    const p = "20261205dddddddddddddddddddddddddddddddd";
    const { peers, adds, read, refuse } = peersOf(platform);
    try {
      refuse.nextAdd = true;
      read("join", p); // answered, but the answer is refused
      await sleep(150);
      assert.equal(adds().length, 0);
      read("add", p, { exchange: "true" }, { "p.route": "p, APP" });
      await sleep(150);
      assert.equal(adds().length, 1, "p never got my routes: its exchange is answered");
    } finally {
      peers.stop();
    }
  });

  it("answers many joins with one message", async () => {
    const platform = new Platform({ dir: "/nonexistent", env: {}, args: [] });
    const { peers, adds, read } = peersOf(platform);
    try {
      for (let i = 0; i < 20; i++) read("join", `20261205${String(i).padStart(32, "c")}`);
      await sleep(250);
      assert.equal(adds().length, 1);
    } finally {
      peers.stop();
    }
  });
});
