/**
 * The Deno adapter of {@link ServeFunction}: `Deno.serve` and `Deno.upgradeWebSocket`. The only
 * file of the library that touches `Deno.*`.
 *
 * @module
 */
import type { PresenceSocket, RunningServer, ServeOptions, WebSocketFactory } from "./socket.ts";

/** The WebSocket client of this runtime: Deno's own. */
export const WebSocketClient: WebSocketFactory = globalThis.WebSocket;

/** Serves HTTP and websockets with Deno's built-in server. */
export function serve(options: ServeOptions): Promise<RunningServer> {
  const { handlers } = options;
  return new Promise((resolve, reject) => {
    let server: Deno.HttpServer;
    try {
      server = Deno.serve({
        port: options.port,
        hostname: options.hostname ?? "0.0.0.0",
        onListen: ({ port }) => resolve({ port, close: () => server.shutdown() }),
        onError: (e) => new Response(`Internal error: ${(e as Error).message}`, { status: 500 }),
      }, (request) => {
        const path = new URL(request.url).pathname;
        if (!path.startsWith(options.wsPrefix)) return options.fetch(request);
        if (request.headers.get("upgrade")?.toLowerCase() !== "websocket") {
          return new Response("Expected a websocket upgrade", { status: 400 });
        }
        const { socket, response } = Deno.upgradeWebSocket(request);
        socket.binaryType = "arraybuffer";
        const ps: PresenceSocket = {
          send(data) {
            if (socket.readyState === WebSocket.OPEN) socket.send(data);
          },
          close(code, reason) {
            if (socket.readyState <= WebSocket.OPEN) socket.close(code, reason);
          },
        };
        socket.onopen = () => handlers.open(ps, path);
        socket.onmessage = (m) =>
          handlers.message(ps, typeof m.data === "string" ? m.data : new Uint8Array(m.data));
        socket.onclose = (c) => handlers.close(ps, c.code, c.reason);
        socket.onerror = () => {}; // a close event follows
        return response;
      });
    } catch (e) {
      reject(e);
    }
  });
}
