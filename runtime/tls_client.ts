/**
 * A WebSocket client that trusts a given CA, for `wss://` monitors whose certificate a private CA
 * signed (`presence.tls.ca`): the web-standard WebSocket takes no CA, so this is the `ws`
 * package's client (the one Node uses anyway) with the CA added.
 *
 * @module
 */
import { WebSocket as WsClient } from "ws";
import type { WebSocketFactory } from "./server.ts";

/** A {@link WebSocketFactory} whose `wss://` connections trust `ca` (PEM) besides nothing else. */
export function webSocketTrusting(ca: string): WebSocketFactory {
  class Trusting extends WsClient {
    constructor(url: string, protocols?: string | string[]) {
      super(url, protocols, { ca });
    }
  }
  return Trusting as unknown as WebSocketFactory;
}
