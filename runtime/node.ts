/**
 * The Node adapter of {@link ServeFunction}: the shared `node:http` + `ws` server, and the `ws`
 * package's WebSocket client, so that a Node process runs one websocket implementation on both
 * ends (Node's global one is undici's, another). It is what `#runtime` means in the npm package.
 *
 * @module
 */
import { WebSocket } from "ws";
import type { ServeFunction, WebSocketFactory } from "./server.ts";
import { serve as serveHttp } from "./_http_server.ts";

/** The WebSocket client of this runtime: the `ws` package's. */
export const WebSocketClient: WebSocketFactory = WebSocket as unknown as WebSocketFactory;

/**
 * Serves HTTP and websockets with `node:http` and `ws`, within the limits of
 * {@link ServeOptions.limits}.
 */
export const serve: ServeFunction = serveHttp;
