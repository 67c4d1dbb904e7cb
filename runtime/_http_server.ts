// The HTTP and websocket server behind both runtime adapters: `node:http` for HTTP (bridged to
// web-standard Request/Response) and `ws` (`noServer`) for websockets. Deno runs it through its
// Node compatibility layer, because `Deno.serve` has no header timeout, no connection limit and
// no websocket frame limit, and stops accepting for good after one EMFILE.
//
// Limits (docs/security.md): a connection limit, per client address and in all (at the limit a
// new connection replaces an idle one, so that idle connections cannot lock clients out); only
// the usual methods (others get 405 before any work); a deadline for the request headers; an idle
// deadline for kept-alive connections, longer than clients keep theirs (a server that closes first
// races the client's next request); a deadline and a size cap for the body, enforced while it
// streams; a websocket message cap checked on the frame header (`ws` closes with 1009 before
// reading the payload). Errors from clients or from accept() are logged, never thrown.
import { createServer } from "node:http";
import { createServer as createTlsServer } from "node:https";
import { createServer as createTcpServer } from "node:net";
import type { IncomingMessage, ServerResponse } from "node:http";
import type { Socket } from "node:net";
import { Buffer } from "node:buffer";
import { WebSocketServer } from "ws";
import type { WebSocket } from "ws";
import { logger, throttled as throttledLog } from "../bus/_log.ts";
import { DEFAULT_LIMITS, noteClientAddress, UNANSWERED_PINGS } from "./server.ts";
import type { RunningServer, ServeOptions, ServerLimits, ServerSocket } from "./server.ts";

const log = logger("http");

class HttpRefusal extends Error {
  /** `read`: the whole request was read, so the connection can serve the next one. */
  constructor(readonly status: number, message: string, readonly read = false) {
    super(message);
  }
}

// Logs a repeated warning (or error) at most once a second, with how often it happened
// meanwhile: clients choose how often these happen, and must not fill the log.
function throttled(message: string, level: "warn" | "error" = "warn"): (detail: string) => void {
  const line = throttledLog(log, level, 1);
  return (detail) => line(message, { detail });
}

// Errors of a client that closed its connection rather than sent anything wrong.
function goneAway(e: Error): boolean {
  const code = (e as { code?: string }).code;
  return e.message === "aborted" || code === "ECONNRESET" || code === "EPIPE" ||
    code === "ERR_STREAM_PREMATURE_CLOSE";
}

// The methods a handler may see; anything else (TRACE, CONNECT, made-up ones) gets 405 here.
const METHODS = new Set(["GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"]);
const ALLOW = [...METHODS].join(", ");

// One TCP connection: its client's address, and what uses it. A TLS socket and the TCP socket
// under it share the remote address and port, which is how a request finds its connection.
interface Connection {
  socket: Socket;
  address: string;
  /** Requests in progress, plus one for a websocket. */
  busy: number;
  /** Whether it ever carried a request or an upgrade. */
  used: boolean;
  /** Closed by this server to make room: already uncounted. */
  evicted: boolean;
}

const keyOf = (s: Socket) => `${s.remoteAddress}|${s.remotePort}`;

// Bytes of request bodies a server holds at once: each body takes its share as it arrives (all
// of a declared length at once) and gives it back when its response ends.
interface BodyBudget {
  held: number;
  readonly max: number;
}

const BUSY = "Too many large request bodies at once: try again shortly";

function readBody(
  req: IncomingMessage,
  limits: ServerLimits,
  budget: BodyBudget,
  took: (n: number) => void,
): Promise<Uint8Array> {
  const declared = Number(req.headers["content-length"] ?? 0);
  if (declared > limits.maxBodyBytes) {
    return Promise.reject(
      new HttpRefusal(413, `Request body of ${declared} bytes is over ${limits.maxBodyBytes}`),
    );
  }
  const take = (n: number) => {
    if (budget.held + n > budget.max) return false;
    budget.held += n;
    took(n);
    return true;
  };
  return new Promise((resolve, reject) => {
    // With a declared length, the body is copied into place as it arrives: one copy of 16 MiB
    // at the end would hold the event loop for ~10 ms, per body.
    const into = declared > 0 && take(declared) ? new Uint8Array(declared) : undefined;
    const chunks: Buffer[] = [];
    let size = 0;
    // Over the bodies held at once, the body is read and dropped, then answered 503: the client
    // hears it (one still sending would not read an answer on a connection closed under it),
    // and it costs this process no memory.
    let busy = declared > 0 && into === undefined;
    const timer = setTimeout(() => {
      fail(new HttpRefusal(408, `Request body not received within ${limits.bodyTimeoutMs} ms`));
    }, limits.bodyTimeoutMs);
    const fail = (e: Error) => {
      clearTimeout(timer);
      req.removeAllListeners("data");
      req.pause();
      reject(e);
    };
    req.on("data", (chunk: Buffer) => {
      if (size + chunk.length > limits.maxBodyBytes) {
        return fail(new HttpRefusal(413, `Request body is over ${limits.maxBodyBytes} bytes`));
      }
      size += chunk.length;
      if (busy) return;
      if (into !== undefined && size <= into.length) into.set(chunk, size - chunk.length);
      else if (!take(chunk.length)) busy = true;
      else chunks.push(chunk);
    });
    req.on("end", () => {
      clearTimeout(timer);
      if (busy) reject(new HttpRefusal(503, BUSY, true));
      else if (into === undefined) resolve(Buffer.concat(chunks));
      else if (size !== into.length) reject(new HttpRefusal(400, "Request body length mismatch"));
      else resolve(into);
    });
    req.on(
      "error",
      (e) => fail(new HttpRefusal(400, `Cannot read the request body: ${e.message}`)),
    );
  });
}

// A body as a stream of its one chunk: `new Request` copies bytes given as they are (another
// ~10 ms for 16 MiB), and takes a stream as it is.
function bodyStream(bytes: Uint8Array): ReadableStream<Uint8Array> {
  return new ReadableStream({
    start(controller) {
      if (bytes.length > 0) controller.enqueue(bytes);
      controller.close();
    },
  });
}

async function toRequest(
  req: IncomingMessage,
  limits: ServerLimits,
  budget: BodyBudget,
  took: (n: number) => void,
): Promise<Request> {
  const headers = new Headers();
  for (const [k, v] of Object.entries(req.headers)) {
    if (v === undefined) continue;
    for (const one of Array.isArray(v) ? v : [v]) headers.append(k, one);
  }
  const method = req.method ?? "GET";
  const body = method === "GET" || method === "HEAD"
    ? undefined
    : await readBody(req, limits, budget, took);
  let request: Request;
  try {
    const url = new URL(req.url ?? "/", `http://${req.headers.host ?? "localhost"}`);
    request = new Request(url, {
      method,
      headers,
      body: body === undefined ? undefined : bodyStream(body),
      duplex: "half",
    } as RequestInit);
  } catch {
    throw new HttpRefusal(400, "Invalid request target");
  }
  noteClientAddress(request, req.socket.remoteAddress);
  return request;
}

// Ends a connection whose client is still sending: stop reading (TCP pushes back), send what is
// written and a FIN, and destroy it a second later. Destroying at once could reset the
// connection before the client has read the answer.
function linger(socket: Socket): void {
  socket.pause();
  socket.end();
  setTimeout(() => socket.destroy(), 1000).unref?.();
}

function plain(res: ServerResponse, status: number, message: string, close: boolean): void {
  if (res.headersSent) return void res.destroy();
  const body = JSON.stringify({ type: "error", status, message });
  res.writeHead(status, {
    "content-type": "application/json",
    ...(close ? { connection: "close" } : {}),
  });
  res.end(body);
}

// An event stream (server-sent events) is written as it comes, never buffered whole: read a
// chunk only once the last one is out, so a slow client holds back its producer (which drops
// it, see presence/dashboard) instead of filling this process's memory. A client that goes away
// cancels the stream.
async function stream(
  body: ReadableStream<Uint8Array>,
  res: ServerResponse,
  headers: Record<string, string>,
): Promise<void> {
  const reader = body.getReader();
  res.on("close", () => reader.cancel().catch(() => {}));
  res.writeHead(200, { ...headers, "cache-control": "no-store", "x-accel-buffering": "no" });
  res.flushHeaders();
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done || res.destroyed) break;
      if (!res.write(value)) {
        await new Promise((go) => (res.once("drain", go), res.once("close", go)));
      }
    }
  } catch { /* the producer failed or was cancelled: end the response */ }
  res.end();
}

/** Serves HTTP and websockets with `node:http` and `ws`, within `options.limits`. */
export function serve(options: ServeOptions): Promise<RunningServer> {
  const { handlers } = options;
  const limits = { ...DEFAULT_LIMITS, ...options.limits };
  const refused = throttled("Connection refused: {detail}");
  const evicting = throttled("Idle connection closed to make room: {detail}");
  const clientError = throttled("Bad client: {detail}");
  const failed = throttled("Request failed: {detail}", "error");
  const wss = new WebSocketServer({
    noServer: true,
    maxPayload: limits.maxFrameBytes,
    handleProtocols: (offered: Set<string>) =>
      options.subprotocol !== undefined && offered.has(options.subprotocol)
        ? options.subprotocol
        : false,
  });
  let inFlight = 0;
  let draining = false;
  // Sockets with a request in progress, or a websocket: a drain leaves them to finish.
  const inUse = new Set<Socket>();
  // Websocket → when it last sent a frame or answered a ping (or opened), while pings are on.
  const timeout = options.pingTimeoutMs ?? 0;
  const pinged = timeout > 0 ? new Map<WebSocket, number>() : undefined;
  const hung = new WeakSet<WebSocket>();
  // Every fifth of the timeout, a look at each socket: one silent for two fifths is pinged (one
  // that sends shows it is there: an idle mesh member asks its monitor something every 3 s, and
  // a ping beside it would wake both ends once more); one silent for three fifths (a ping
  // unanswered for a fifth) is dropped, so that one that froze just after its last frame is
  // dropped within the timeout with a fifth to spare for the leave to reach its peers.
  const every = Math.max(50, timeout / 5);
  const pinger = pinged === undefined ? undefined : setInterval(() => {
    const now = Date.now();
    for (const [ws, at] of pinged) {
      if (now - at > timeout - 2 * every) {
        pinged.delete(ws);
        hung.add(ws);
        ws.terminate();
      } else if (now - at >= 2 * every && ws.readyState === ws.OPEN) ws.ping();
    }
  }, every);
  // Per connection: the deadline for the next request's headers (armed on connect and after
  // each response, cleared when a request or an upgrade has arrived).
  const deadlines = new Map<Socket, ReturnType<typeof setTimeout>>();
  const arm = (socket: Socket, ms = limits.headerTimeoutMs) => {
    clearTimeout(deadlines.get(socket));
    deadlines.set(
      socket,
      setTimeout(() => {
        deadlines.delete(socket);
        socket.destroy();
      }, ms),
    );
  };
  const disarm = (socket: Socket) => {
    clearTimeout(deadlines.get(socket));
    deadlines.delete(socket);
  };

  const serverOptions = {
    // Both runtimes' own checks of these are not relied on (Deno's layer ignores them, and Node
    // runs its header check only on a server that listens itself), hence `arm`.
    headersTimeout: limits.headerTimeoutMs,
    requestTimeout: limits.headerTimeoutMs + limits.bodyTimeoutMs,
    keepAliveTimeout: limits.keepAliveMs,
    maxHeaderSize: 16 * 1024,
  };
  const bodies: BodyBudget = { held: 0, max: limits.maxBodyBytesTotal };
  // Every TCP connection (under TLS too), oldest first, and how many each address has open.
  const connections = new Map<string, Connection>();
  const perAddress = new Map<string, number>();
  const uncount = (c: Connection) => {
    const n = (perAddress.get(c.address) ?? 1) - 1;
    if (n > 0) perAddress.set(c.address, n);
    else perAddress.delete(c.address);
  };
  // Makes room for a connection from `address`: closes an idle connection of the address that
  // holds the most (its oldest that never carried a request, else its idle longest), so that
  // strangers who fill the server close each other's connections, not a genuine client's few
  // (one slow to finish its TLS handshake among them). An address that already holds some
  // takes room only from one that holds at least two more: attackers at par are refused at
  // once instead of closing each other's in turn. False when no connection may go.
  const evictIdle = (address: string): boolean => {
    const mine = perAddress.get(address) ?? 0;
    let victim: Connection | undefined;
    let victimHolds = 0;
    for (const c of connections.values()) {
      if (c.busy > 0) continue;
      const holds = perAddress.get(c.address) ?? 0;
      if (mine > 0 && holds < mine + 2) continue;
      // Oldest first: a later one replaces the choice only by holding more, or as the first
      // unused one of the same count.
      if (
        victim === undefined || holds > victimHolds ||
        (holds === victimHolds && victim.used && !c.used)
      ) {
        victim = c;
        victimHolds = holds;
      }
    }
    if (victim === undefined) return false;
    evicting(`${victim.address} (${victim.used ? "kept alive" : "no request"})`);
    victim.evicted = true;
    connections.delete(keyOf(victim.socket));
    uncount(victim);
    victim.socket.destroy();
    return true;
  };
  const use = (socket: Socket): Connection | undefined => {
    const c = connections.get(keyOf(socket));
    if (c !== undefined) {
      c.busy++;
      c.used = true;
    }
    return c;
  };
  const release = (c: Connection | undefined) => {
    if (c === undefined || --c.busy > 0 || c.evicted) return;
    // Idle again: the newest idle one, the last to be closed to make room.
    const key = keyOf(c.socket);
    connections.delete(key);
    connections.set(key, c);
  };

  const onRequest = (req: IncomingMessage, res: ServerResponse) => {
    disarm(req.socket);
    inFlight++;
    inUse.add(req.socket);
    const connection = use(req.socket);
    let held = 0;
    res.on("close", () => {
      bodies.held -= held;
      inFlight--;
      inUse.delete(req.socket);
      release(connection);
      if (draining) req.socket.end();
    });
    res.on("finish", () => {
      if (!req.socket.destroyed) arm(req.socket, limits.keepAliveMs);
    });
    if (!METHODS.has(req.method ?? "")) {
      req.resume(); // a body, if any, is read and dropped; the connection stays usable
      res.writeHead(405, { "content-type": "application/json", allow: ALLOW });
      res.end(JSON.stringify({ type: "error", status: 405, message: "Method not allowed" }));
      return;
    }
    toRequest(req, limits, bodies, (n) => (held += n))
      .then((r) => options.fetch(r))
      .then(async (response) => {
        const headers: Record<string, string> = {};
        response.headers.forEach((v, k) => (headers[k] = v));
        if (response.body && headers["content-type"]?.startsWith("text/event-stream")) {
          return stream(response.body, res, headers);
        }
        const body = Buffer.from(await response.arrayBuffer());
        if (draining) headers.connection = "close";
        res.writeHead(response.status, headers);
        res.end(body);
      })
      .catch((e) => {
        if (e instanceof HttpRefusal) {
          // The rest of an oversized or stalled body is not read: close the connection.
          if (e.status === 503) res.setHeader("retry-after", "1");
          plain(res, e.status, e.message, !e.read);
          if (e.status !== 400 && !e.read) res.on("finish", () => linger(req.socket));
          return;
        }
        failed(`${req.method} ${String(req.url).slice(0, 200)}: ${(e as Error).message}`);
        plain(res, 500, "Internal error", false);
      });
  };
  // With TLS, the handshake must end within the header timeout too; the sockets that requests
  // and upgrades see are the TLS ones, so those are the ones counted and timed.
  const server = options.tls
    ? createTlsServer({
      ...serverOptions,
      cert: options.tls.cert,
      key: options.tls.key,
      handshakeTimeout: limits.headerTimeoutMs,
    }, onRequest)
    : createServer(serverOptions, onRequest);
  // Every TCP connection is taken by a plain TCP server first, counted, and refused or given
  // room there, before the HTTP or TLS server sets anything up for it: a refused connection
  // costs an accept and a close. (Handed to the TLS server first, each one cost a TLS context,
  // about 0.5 ms of CPU under Deno: strangers who reconnected at once from a process of their
  // own kept the server busy refusing them, and genuine handshakes waited seconds.) Every TCP
  // connection counts, a TLS one from before its handshake, so that handshakes that never end
  // cannot hold the server either. Counted and logged here in both runtimes (Deno emits no
  // "drop" event); the TCP server's own limit is a safety net only: the connection closed to
  // make room for a new one is still counted there until its close event.
  const tcp = createTcpServer();
  const open = new Set<Socket>();
  const over = `over server.max.connections (${limits.maxConnections})`;
  const overAddress =
    `over server.max.connections.per.address (${limits.maxConnectionsPerAddress})`;
  tcp.maxConnections = 2 * limits.maxConnections + 1;
  // The HTTP server never listens itself; it is listening while the TCP server is (Deno's layer
  // closes every kept-alive connection after its response while its server does not listen).
  Object.defineProperty(server, "listening", { get: () => tcp.listening });
  tcp.on("drop", () => refused(over));
  tcp.on("connection", (socket: Socket) => {
    socket.on("error", () => {}); // a close follows
    const address = socket.remoteAddress ?? "";
    const n = perAddress.get(address) ?? 0;
    if (n >= limits.maxConnectionsPerAddress) {
      refused(`${address} ${overAddress}`);
      return void socket.destroy();
    }
    if (connections.size >= limits.maxConnections && !evictIdle(address)) {
      refused(over);
      return void socket.destroy();
    }
    const c: Connection = { socket, address, busy: 0, used: false, evicted: false };
    const key = keyOf(socket);
    connections.set(key, c);
    perAddress.set(address, n + 1);
    socket.on("close", () => {
      if (c.evicted) return;
      connections.delete(key);
      uncount(c);
    });
    server.emit("connection", socket);
  });
  server.on(options.tls ? "secureConnection" : "connection", (socket: Socket) => {
    if (socket.destroyed) return;
    open.add(socket);
    arm(socket);
    socket.on("close", () => {
      open.delete(socket);
      disarm(socket);
    });
  });
  // CONNECT never reaches "request": answered here, or node:http would just drop the socket.
  server.on("connect", (_req: IncomingMessage, socket: Socket) => {
    socket.end(
      `HTTP/1.1 405 Method Not Allowed\r\nallow: ${ALLOW}\r\nconnection: close\r\n` +
        "content-length: 0\r\n\r\n",
    );
  });
  server.on("clientError", (e: Error, socket: Socket) => {
    // A client that went away (a closed tab, a cancelled fetch) is not a bad client.
    if (goneAway(e)) log.debug("Client went away: {detail}", { detail: e.message });
    else clientError(e.message);
    if (socket.writable) socket.end("HTTP/1.1 400 Bad Request\r\nconnection: close\r\n\r\n");
    socket.destroy();
  });
  server.on("upgrade", (req: IncomingMessage, socket: Socket, head: Buffer) => {
    disarm(socket);
    inUse.add(socket);
    use(socket); // a websocket is never idle: it is closed by its own rules
    socket.on("close", () => inUse.delete(socket));
    const path = (req.url ?? "/").split("?")[0];
    if (!path.startsWith(options.wsPrefix)) {
      socket.end("HTTP/1.1 400 Bad Request\r\nconnection: close\r\n\r\n");
      return;
    }
    const protocols = (req.headers["sec-websocket-protocol"] ?? "").split(",")
      .map((p) => p.trim()).filter(Boolean);
    // Every parameter typed here: an application that links this package without the `ws` types
    // must not see implicit anys.
    wss.handleUpgrade(req, socket, head, (ws: WebSocket) => {
      const refusal = options.authorize?.({ path, protocols });
      if (refusal !== undefined) {
        ws.on("error", (e: Error) => clientError(`websocket: ${e.message}`)); // never unhandled
        ws.close(refusal.code, refusal.reason);
        return;
      }
      const ps: ServerSocket = {
        remoteAddress: req.socket.remoteAddress,
        protocols,
        send(data) {
          if (ws.readyState === ws.OPEN) ws.send(data);
        },
        close(code, reason) {
          if (ws.readyState <= ws.OPEN) ws.close(code, reason);
        },
      };
      ws.on("message", (data: Buffer | ArrayBuffer | Buffer[], isBinary: boolean) => {
        if (pinged?.has(ws)) pinged.set(ws, Date.now());
        const buf = Array.isArray(data) ? Buffer.concat(data) : Buffer.from(data as ArrayBuffer);
        handlers.message(ps, isBinary ? new Uint8Array(buf) : buf.toString("utf8"));
      });
      ws.on("close", (code: number, reason: Buffer) => {
        pinged?.delete(ws);
        handlers.close(ps, code, hung.has(ws) ? UNANSWERED_PINGS : reason.toString("utf8"));
      });
      if (pinged !== undefined) {
        pinged.set(ws, Date.now());
        ws.on("pong", () => pinged.has(ws) && pinged.set(ws, Date.now()));
      }
      ws.on("error", (e: Error) => {
        clientError(`websocket: ${e.message}`);
        // ws has sent its close frame (1009 for an oversized frame) and would go on reading the
        // rest of the payload only to discard it (it resumes the socket on the next tick).
        setTimeout(() => linger(socket), 0);
      });
      handlers.open(ps, path);
    });
  });
  return new Promise((resolve, reject) => {
    const failed = (e: Error) => reject(listenError(e, options.port, options.hostname));
    tcp.once("error", failed);
    tcp.listen(options.port, options.hostname ?? "0.0.0.0", () => {
      tcp.off("error", failed);
      // From now on: accept() failures such as EMFILE. The server keeps listening.
      tcp.on(
        "error",
        (e: Error) => log.error("Server error: {message}", { message: e.message }),
      );
      const address = tcp.address();
      const port = typeof address === "object" && address ? address.port : options.port;
      const close = () =>
        new Promise<void>((done) => {
          clearInterval(pinger);
          for (const client of wss.clients) client.terminate();
          wss.close();
          for (const t of deadlines.values()) clearTimeout(t);
          deadlines.clear();
          tcp.close(() => done());
          for (const c of connections.values()) c.socket.destroy();
        });
      const drain = () => {
        if (draining) return;
        draining = true;
        tcp.close(); // stops listening; the connections end as below
        server.closeIdleConnections?.();
        // Kept-alive connections between requests (which Deno's layer may not count as idle).
        for (const socket of open) if (!inUse.has(socket)) socket.end();
      };
      resolve({
        port,
        close,
        drain,
        get pending() {
          return inFlight;
        },
        [Symbol.asyncDispose]: close,
      });
    });
  });
}

// Why the server cannot listen, naming the setting to change (the cause kept).
function listenError(e: Error, port: number, hostname: string | undefined): Error {
  const code = (e as { code?: string }).code;
  const where = `${hostname ?? "0.0.0.0"}:${port}`;
  const message = code === "EADDRINUSE"
    ? `Port ${port} is in use (server.port): stop what listens on ${where}, or set another ` +
      `port (-Dserver.port=..., or SERVER_PORT)`
    : code === "EACCES"
    ? `Not allowed to listen on ${where} (server.port below 1024 needs privileges): set ` +
      `server.port to 1024 or above`
    : code === "EADDRNOTAVAIL"
    ? `${hostname} is not an address of this machine (server.host)`
    : `Cannot listen on ${where}: ${e.message}`;
  return new Error(message, { cause: e });
}
