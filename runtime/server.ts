/**
 * The boundary between the library and the runtime's server: a fetch-style handler for plain
 * HTTP, and three callbacks for websockets under a path prefix. Runtime adapters (`deno.ts`,
 * `node.ts`, chosen by the `#runtime` import alias) implement {@link ServeFunction} and provide
 * a {@link WebSocketFactory}; nothing else in the library knows which runtime it runs on.
 *
 * @module
 */
import { readPemFile } from "../bus/config.ts";
import type { AppConfig } from "../bus/config.ts";
import { ConfigError } from "../bus/errors.ts";

/** One websocket connection, as a server's handlers see it. */
export interface ServerSocket {
  /** Sends a binary (bytes) or text frame; a closed socket ignores it. */
  send(data: Uint8Array | string): void;
  /** Closes the connection with a code and a reason. */
  close(code: number, reason: string): void;
  /** The client's IP address, as the server sees it (a proxy's, behind one). */
  readonly remoteAddress?: string;
  /** The subprotocols the client offered in its handshake (credentials travel there). */
  readonly protocols?: readonly string[];
}

/** Websocket callbacks. `path` is the request path, such as `/ws/presence/<origin>`. */
export interface SocketHandlers {
  /** A websocket opened on `path`. */
  open(socket: ServerSocket, path: string): void;
  /** A binary (bytes) or text frame arrived. */
  message(socket: ServerSocket, data: Uint8Array | string): void;
  /** The websocket closed, by either side. */
  close(socket: ServerSocket, code: number, reason: string): void;
}

/** What to serve. */
export interface ServeOptions {
  /** TCP port; 0 picks a free one. */
  port: number;
  /** Interface to bind (default `0.0.0.0`: every interface). */
  hostname?: string;
  /** Requests whose path starts with this are websocket upgrades (e.g. `/ws/presence/`). */
  wsPrefix: string;
  /** Plain HTTP requests. */
  fetch(request: Request): Response | Promise<Response>;
  /** Websocket events. */
  handlers: SocketHandlers;
  /** Limits of the server (defaults in docs/security.md). */
  limits?: Partial<ServerLimits>;
  /**
   * Milliseconds within which a websocket client that stops answering pings is closed (the
   * server pings five times in that span), with 1006 and the reason
   * {@link UNANSWERED_PINGS}. Off (0) by default. Browsers and WebSocket clients answer pings
   * by themselves: only a frozen process or an unreachable host fails this.
   */
  pingTimeoutMs?: number;
  /** Serve HTTPS and WSS with this certificate chain and key (PEM); plain HTTP without. */
  tls?: TlsFiles;
  /** The websocket subprotocol the server selects when a client offers it. */
  subprotocol?: string;
  /**
   * Called for each websocket upgrade with its path and the subprotocols the client offered;
   * a refusal closes the websocket at once with its code and reason, before
   * {@link SocketHandlers.open}.
   */
  authorize?(upgrade: { path: string; protocols: string[] }): WebSocketRefusal | undefined;
}

/** A server's certificate chain and private key, in PEM. */
export interface TlsFiles {
  /** The certificate chain (PEM). */
  cert: string;
  /** The private key (PEM). */
  key: string;
}

/**
 * The server's TLS from `server.tls.cert` and `server.tls.key` (PEM files), or undefined when
 * neither is set: then the server speaks plain HTTP, as before.
 *
 * @throws {ConfigError} When only one is set, or a file cannot be read.
 */
export function serverTls(config: AppConfig): TlsFiles | undefined {
  const certFile = config.getString("server.tls.cert");
  const keyFile = config.getString("server.tls.key");
  if (!certFile && !keyFile) return undefined;
  if (!certFile || !keyFile) {
    throw new ConfigError(
      certFile ? "server.tls.key" : "server.tls.cert",
      "(missing)",
      "both server.tls.cert and server.tls.key (PEM files)",
    );
  }
  return {
    cert: readPemFile("server.tls.cert", certFile),
    key: readPemFile("server.tls.key", keyFile),
  };
}

const ADDRESSES = new WeakMap<Request, string>();

/**
 * The address of the client that sent `req` to a server of {@link ServeFunction}, or
 * undefined for a request made some other way.
 */
export function clientAddress(req: Request): string | undefined {
  return ADDRESSES.get(req);
}

/** Notes the client address of a request (for the runtime adapters). */
export function noteClientAddress(req: Request, address: string | undefined): void {
  if (address !== undefined) ADDRESSES.set(req, address);
}

/** Why a websocket is closed at once: its close code and reason. */
export interface WebSocketRefusal {
  /** The close code. */
  code: number;
  /** The close reason. */
  reason: string;
}

/** The close reason of a websocket closed because it answered no ping in time. */
export const UNANSWERED_PINGS = "no answer to pings";

/** What one server accepts; every client beyond them is refused, and the refusal logged. */
export interface ServerLimits {
  /**
   * Open TCP connections (`server.max.connections`, 1000). At the limit a new connection
   * replaces an idle one of the address that holds the most (its oldest that never sent a
   * request, then its idle longest); an address that holds some already replaces only one of
   * an address holding at least two more. Otherwise the new connection is closed at once.
   */
  maxConnections: number;
  /**
   * Open TCP connections from one client address (`server.max.connections.per.address`, a
   * tenth of `maxConnections`); more are closed at once.
   */
  maxConnectionsPerAddress: number;
  /** Milliseconds to receive a request's headers (`server.header.timeout`, 10 s). */
  headerTimeoutMs: number;
  /**
   * Milliseconds a kept-alive connection may wait for its next request
   * (`server.keep.alive.timeout`, 120 s): longer than clients keep idle connections (Node's
   * agent 5 s, undici 4 s, Deno's fetch and Go 90 s), so that the server does not close one
   * just as a client reuses it (the client would see a reset). Idle connections are the first
   * closed at `maxConnections`.
   */
  keepAliveMs: number;
  /** Milliseconds to receive a request's body (`server.body.timeout`, 30 s); then 408. */
  bodyTimeoutMs: number;
  /** Bytes of a request body (16 MiB); larger ones get 413 as soon as the limit is crossed. */
  maxBodyBytes: number;
  /**
   * Bytes of request bodies held at once, all requests together (`server.max.body.bytes.total`,
   * four times `maxBodyBytes`, at least 64 MiB); a body that would cross it is read and dropped,
   * then answered 503 with `Retry-After`, so that many large bodies at once cannot add up.
   */
  maxBodyBytesTotal: number;
  /** Bytes of one websocket message, checked on the frame header (64 KiB); then close 1009. */
  maxFrameBytes: number;
}

/** A running server; `await using` closes it at the end of a scope. */
export interface RunningServer extends AsyncDisposable {
  /** The bound port. */
  readonly port: number;
  /** Stops listening and closes connections. */
  close(): Promise<void>;
  /**
   * Stops accepting: no new connections, idle kept-alive connections close, and responses in
   * progress tell their clients to close (`connection: close`). Requests in progress finish.
   */
  drain(): void;
  /** HTTP requests in progress. */
  readonly pending: number;
}

/** Starts a server. */
export type ServeFunction = (options: ServeOptions) => Promise<RunningServer>;

/**
 * A WebSocket client constructor with the web-standard API (Deno's global `WebSocket`, or the
 * `ws` package's on Node).
 */
export type WebSocketFactory = new (url: string, protocols?: string | string[]) => WebSocket;

/** The defaults of {@link ServerLimits}. */
export const DEFAULT_LIMITS: Readonly<ServerLimits> = {
  maxConnections: 1000,
  maxConnectionsPerAddress: 100,
  headerTimeoutMs: 10_000,
  keepAliveMs: 120_000,
  bodyTimeoutMs: 30_000,
  maxBodyBytes: 16 * 1024 * 1024,
  maxBodyBytesTotal: 64 * 1024 * 1024,
  maxFrameBytes: 65_536,
};

/**
 * A server's limits: `server.max.connections`, `server.header.timeout` and
 * `server.body.timeout` (seconds) from configuration, over the server's own `defaults`, over
 * {@link DEFAULT_LIMITS}.
 */
export function serverLimits(config: AppConfig, defaults: Partial<ServerLimits>): ServerLimits {
  const base = { ...DEFAULT_LIMITS, ...defaults };
  const seconds = (key: string, fallbackMs: number) =>
    Math.max(1, config.getNumber(key, fallbackMs / 1000)) * 1000;
  const maxConnections = Math.max(
    1,
    config.getNumber("server.max.connections", base.maxConnections),
  );
  const perAddress = defaults.maxConnectionsPerAddress ?? Math.ceil(maxConnections / 10);
  return {
    ...base,
    maxConnections,
    maxBodyBytesTotal: Math.max(
      base.maxBodyBytes,
      config.getNumber(
        "server.max.body.bytes.total",
        defaults.maxBodyBytesTotal ?? Math.max(4 * base.maxBodyBytes, 64 * 1024 * 1024),
      ),
    ),
    maxConnectionsPerAddress: Math.max(
      1,
      config.getNumber("server.max.connections.per.address", perAddress),
    ),
    headerTimeoutMs: seconds("server.header.timeout", base.headerTimeoutMs),
    keepAliveMs: seconds("server.keep.alive.timeout", base.keepAliveMs),
    bodyTimeoutMs: seconds("server.body.timeout", base.bodyTimeoutMs),
  };
}
