/**
 * The Node adapter of {@link ServeFunction}: `node:http` for HTTP, bridged to web-standard
 * `Request`/`Response`, and `ws` (`noServer`) for websockets. The only file of the library that
 * touches `node:http` and `ws`; it is what `#serve` means in the npm package.
 *
 * @module
 */
import { createServer } from "node:http";
import type { IncomingMessage, ServerResponse } from "node:http";
import { Buffer } from "node:buffer";
import { WebSocket, WebSocketServer } from "ws";
import type { PresenceSocket, RunningServer, ServeOptions, WebSocketFactory } from "./socket.ts";

/** The WebSocket client of this runtime: the `ws` package's (Node 20 has no global one). */
export const WebSocketClient: WebSocketFactory = WebSocket as unknown as WebSocketFactory;

const MAX_BODY = 64 * 1024 * 1024;

async function toRequest(req: IncomingMessage, base: string): Promise<Request> {
  const headers = new Headers();
  for (const [k, v] of Object.entries(req.headers)) {
    if (v === undefined) continue;
    for (const one of Array.isArray(v) ? v : [v]) headers.append(k, one);
  }
  const method = req.method ?? "GET";
  let body: Uint8Array | undefined;
  if (method !== "GET" && method !== "HEAD") {
    const chunks: Buffer[] = [];
    let size = 0;
    for await (const chunk of req) {
      size += (chunk as Buffer).length;
      // Past the limit the body is cut short; the handler sees a length over its own limit.
      if (size <= MAX_BODY) chunks.push(chunk as Buffer);
    }
    body = Buffer.concat(chunks);
  }
  return new Request(new URL(req.url ?? "/", base), {
    method,
    headers,
    body: body as BodyInit | undefined,
  });
}

async function writeResponse(res: ServerResponse, response: Response): Promise<void> {
  const headers: Record<string, string> = {};
  response.headers.forEach((v, k) => (headers[k] = v));
  res.writeHead(response.status, headers);
  res.end(Buffer.from(await response.arrayBuffer()));
}

/** Serves HTTP and websockets with `node:http` and `ws`. */
export function serve(options: ServeOptions): Promise<RunningServer> {
  const { handlers } = options;
  const wss = new WebSocketServer({ noServer: true, maxPayload: 1024 * 1024 });
  const server = createServer((req, res) => {
    const base = `http://${req.headers.host ?? "localhost"}`;
    toRequest(req, base)
      .then((r) => options.fetch(r))
      .then((response) => writeResponse(res, response))
      .catch((e) => {
        if (!res.headersSent) res.writeHead(500, { "content-type": "text/plain" });
        res.end(`Internal error: ${(e as Error).message}`);
      });
  });
  server.on("upgrade", (req, socket, head) => {
    const path = new URL(req.url ?? "/", "http://localhost").pathname;
    if (!path.startsWith(options.wsPrefix)) {
      socket.write("HTTP/1.1 400 Bad Request\r\nconnection: close\r\n\r\n");
      socket.destroy();
      return;
    }
    wss.handleUpgrade(req, socket, head, (ws) => {
      const ps: PresenceSocket = {
        send(data) {
          if (ws.readyState === ws.OPEN) ws.send(data);
        },
        close(code, reason) {
          if (ws.readyState <= ws.OPEN) ws.close(code, reason);
        },
      };
      ws.on("message", (data, isBinary) => {
        const buf = Array.isArray(data) ? Buffer.concat(data) : Buffer.from(data as ArrayBuffer);
        handlers.message(ps, isBinary ? new Uint8Array(buf) : buf.toString("utf8"));
      });
      ws.on("close", (code, reason) => handlers.close(ps, code, reason.toString("utf8")));
      ws.on("error", () => {}); // a close event follows
      handlers.open(ps, path);
    });
  });
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(options.port, options.hostname ?? "0.0.0.0", () => {
      const address = server.address();
      const port = typeof address === "object" && address ? address.port : options.port;
      resolve({
        port,
        close: () =>
          new Promise<void>((done) => {
            for (const client of wss.clients) client.terminate();
            wss.close();
            server.close(() => done());
            server.closeAllConnections?.();
          }),
      });
    });
  });
}
