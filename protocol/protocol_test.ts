// The presence and registry messages as both ends build and read them.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import { EventEnvelope } from "../bus/envelope.ts";
import {
  APP_MESSAGE,
  appMessage,
  isTextKeepAlive,
  peerList,
  peerMessage,
  readyMessage,
  readyOf,
} from "./presence.ts";
import { isRegistry, leaveMessage, REGISTRY, registryMessage } from "./registry.ts";

// Through bytes, as the websocket and Kafka carry them.
const wire = (e: EventEnvelope) => EventEnvelope.fromBytes(e.toBytes());

describe("the presence messages", () => {
  it("a peer query and its answer carry their origins through the wire", () => {
    const origin = fc.stringMatching(/^[0-9a-f]{8,20}$/);
    fc.assert(fc.property(fc.array(origin, { maxLength: 20 }), fc.nat(), (origins, n) => {
      const asked = wire(peerMessage(String(n), { origins }));
      assert.equal(asked.to, APP_MESSAGE.PEER_QUERY);
      assert.deepEqual(peerList(asked, "origins"), origins);
      const answer = wire(peerMessage(String(n), { connected: origins.slice(1) }));
      assert.equal(answer.headers.id, String(n));
      assert.deepEqual(peerList(answer, "connected"), origins.slice(1));
    }));
  });

  it("ready hands over its topic and the peers to expect; nothing else does", () => {
    assert.deepEqual(readyOf(wire(readyMessage("multiplex.0001-007", "1.0"))), {
      topic: "multiplex.0001-007",
    });
    assert.deepEqual(readyOf(wire(readyMessage("multiplex.0001-007", "1.0", 3))), {
      topic: "multiplex.0001-007",
      peers: 3,
    });
    assert.deepEqual(
      readyOf(new EventEnvelope({ to: "ready", headers: { topic: "t", peers: "x" } })),
      { topic: "t" },
    );
    assert.equal(readyOf(new EventEnvelope({ to: "ready" })), undefined);
    assert.equal(readyOf(wire(appMessage(APP_MESSAGE.INFO, { topic: "x" }))), undefined);
  });

  it("a text frame is a keep-alive only as the Java clients' JSON", () => {
    assert.equal(isTextKeepAlive('{"type":"keep-alive"}'), true);
    for (const text of ["keep-alive", "{}", "null", '{"type":"info"}', "[", '"keep-alive"']) {
      assert.equal(isTextKeepAlive(text), false, text);
    }
  });
});

describe("the registry messages", () => {
  it("go to the group's registry route with their type", () => {
    const e = wire(registryMessage(3, "add", { origin: "abc", route: "x.y" }, { "x.y": "APP" }));
    assert.equal(e.to, `${REGISTRY}@monitor-3`);
    assert.deepEqual(e.headers, { type: "add", origin: "abc", route: "x.y" });
    assert.deepEqual(e.body, { "x.y": "APP" });
    assert.equal(isRegistry(e), true);
    assert.deepEqual(wire(leaveMessage(1, "abc")).headers, { type: "leave", origin: "abc" });
  });

  it("are told apart from routes that only start alike", () => {
    assert.equal(isRegistry(new EventEnvelope({ to: REGISTRY })), true);
    assert.equal(isRegistry(new EventEnvelope({ to: `${REGISTRY}.other@monitor-1` })), false);
    assert.equal(isRegistry(new EventEnvelope({ to: "hello.world" })), false);
  });
});
