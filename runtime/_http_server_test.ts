import { describe, it, mock } from "node:test";
import assert from "node:assert/strict";
import WebSocket from "ws";
import { serve } from "./_http_server.ts";

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

/** Resolves once `done()` holds, in real time (Date may be fake); fails after 5 s. */
async function until(done: () => boolean, what: string): Promise<void> {
  const end = performance.now() + 5000;
  while (!done()) {
    if (performance.now() > end) throw new Error(`no ${what} within 5 s`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

describe("the runtime's server: websocket pings", () => {
  it("pings only sockets that sent nothing since its last look, and drops those that stay silent", async () => {
    // The server's looks run on fake time (its interval and Date.now()), so that a loaded
    // machine's late timers cannot make a talking socket look silent; the sockets are real.
    mock.timers.enable({ apis: ["setInterval", "Date"], now: Date.now() });
    let heard = 0;
    const server = await serve({
      port: 0,
      hostname: "127.0.0.1",
      wsPrefix: "/ws/",
      pingTimeoutMs: 1000, // a look every 200 ms; silent for 400 ms: pinged; over 600 ms: dropped
      handlers: { open() {}, message: () => void heard++, close() {} },
      fetch: () => new Response("no"),
    });
    try {
      const silent = await client(server.port);
      const talker = await client(server.port);
      // Time passes 50 ms at a time; the talker sends a frame each time, heard before it passes.
      const pass = async (ms: number) => {
        for (let t = 0; t < ms; t += 50) {
          const before = heard;
          talker.ws.send("here");
          await until(() => heard > before, "frame heard");
          mock.timers.tick(50);
        }
      };
      await pass(350); // looks at 200 ms: silent for less than two fifths of the timeout
      assert.equal(silent.pings(), 0, "not before it was silent for two fifths of the timeout");
      await pass(100); // the look at 400 ms pings it
      await until(() => silent.pings() >= 1, "ping of the silent socket");
      await pass(400); // the look at 800 ms finds it silent past three fifths: dropped
      await until(() => silent.ws.readyState === WebSocket.CLOSED, "drop of the silent socket");
      await silent.closed;
      assert.equal(talker.pings(), 0, "a socket that sends shows it is there: no ping");
      assert.equal(talker.ws.readyState, WebSocket.OPEN, "and it stays");
      talker.ws.close();
      await talker.closed;
    } finally {
      mock.timers.reset();
      await server.close();
    }
  });
});
