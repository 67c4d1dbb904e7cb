/**
 * The Deno adapter of {@link ServeFunction}. Deno serves through the same `node:http` + `ws`
 * server as Node: `Deno.serve` offers no header timeout, connection limit or websocket frame
 * limit, which a server facing the network needs (docs/security.md). The WebSocket client is
 * Deno's own.
 *
 * @module
 */
import type { ServeFunction, WebSocketFactory } from "./server.ts";

/** The WebSocket client of this runtime: Deno's own. */
export const WebSocketClient: WebSocketFactory = globalThis.WebSocket;

/**
 * Serves HTTP and websockets, within the limits of {@link ServeOptions.limits}. The server
 * module (and with it `node:http` and `ws`) loads on first use: a mesh member that only needs
 * the WebSocket client never loads it.
 */
export const serve: ServeFunction = async (options) =>
  (await import("./_http_server.ts")).serve(options);
