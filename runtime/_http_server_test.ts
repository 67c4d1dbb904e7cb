import { describe, it } from "node:test";
import assert from "node:assert/strict";
import WebSocket from "ws";
import { serve } from "./_http_server.ts";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

// A websocket client of `port` counting the pings it gets; it answers none (autoPong off), so
// only its own frames can show the server it is there.
async function client(port: number) {
  const ws = new WebSocket(`ws://127.0.0.1:${port}/ws/x`, { autoPong: false });
  let pings = 0;
  ws.on("ping", () => pings++);
  await new Promise((r, j) => (ws.once("open", r), ws.once("error", j)));
  const closed = new Promise<void>((r) => ws.once("close", () => r()));
  return { ws, pings: () => pings, closed };
}

describe("the runtime's server: websocket pings", () => {
  it("pings only sockets that sent nothing since its last look, and drops those that stay silent", async () => {
    const server = await serve({
      port: 0,
      hostname: "127.0.0.1",
      wsPrefix: "/ws/",
      pingTimeoutMs: 1000, // a look every 200 ms; silent for 400 ms: pinged; 600 ms: dropped
      handlers: { open() {}, message() {}, close() {} },
      fetch: () => new Response("no"),
    });
    try {
      const silent = await client(server.port);
      const talker = await client(server.port);
      const talking = setInterval(() => talker.ws.send("here"), 50);
      await sleep(250);
      assert.equal(silent.pings(), 0, "not before it was silent for two fifths of the timeout");
      await sleep(400);
      assert.ok(silent.pings() >= 1, `the silent socket was pinged (${silent.pings()})`);
      await silent.closed; // it answers no pings
      await sleep(600);
      clearInterval(talking);
      assert.equal(talker.pings(), 0, "a socket that sends shows it is there: no ping");
      assert.equal(talker.ws.readyState, WebSocket.OPEN, "and it stays");
      talker.ws.close();
      await talker.closed;
    } finally {
      await server.close();
    }
  });
});
