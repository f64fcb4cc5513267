/**
 * The HTTP CONNECT proxy the provider reaches the API through (HTTPS_PROXY: Go's
 * http.DefaultTransport, which the provider's client wraps, honours it; config.go). It
 * tunnels CONNECT api.equinix.com:443 into the emulator's own TLS server, in-process, and
 * refuses everything else with 403, so no request leaves the machine.
 */
import * as http from "node:http";
import type { Server as TlsServer } from "node:tls";
import type { Duplex } from "node:stream";
import { API_HOST } from "./tls";
import { RequestLog } from "./request-log";

export function createConnectProxy(api: TlsServer, log: RequestLog): http.Server {
  const proxy = http.createServer((req, res) => {
    const started = Date.now();
    res.writeHead(403, { "Content-Type": "text/plain" });
    res.end(`The Metal emulator's proxy only tunnels CONNECT ${API_HOST}:443\n`);
    log({ listener: "proxy", method: req.method ?? "?", path: safeTarget(req.url), status: 403, durationMs: Date.now() - started, caller: req.socket.remoteAddress });
  });
  proxy.on("connect", (req: http.IncomingMessage, socket: Duplex, head: Buffer) => {
    const started = Date.now();
    const target = (req.url ?? "").toLowerCase();
    const caller = req.socket.remoteAddress;
    socket.on("error", () => socket.destroy());
    if (target !== `${API_HOST}:443`) {
      socket.end(`HTTP/1.1 403 Forbidden\r\nContent-Type: text/plain\r\nConnection: close\r\n\r\nThe Metal emulator's proxy only tunnels ${API_HOST}:443\n`);
      log({ listener: "proxy", method: "CONNECT", path: safeTarget(req.url), status: 403, durationMs: Date.now() - started, caller });
      return;
    }
    socket.write("HTTP/1.1 200 Connection Established\r\n\r\n");
    if (head.length > 0) socket.unshift(head);
    // The TLS server takes the client's socket as if it had accepted it itself.
    api.emit("connection", socket);
    log({ listener: "proxy", method: "CONNECT", path: target, status: 200, durationMs: Date.now() - started, caller });
  });
  return proxy;
}

/** A CONNECT target or absolute URL, without any userinfo or query it may carry. */
function safeTarget(url: string | undefined): string {
  const text = url ?? "";
  try {
    if (/^[a-z]+:\/\//i.test(text)) {
      const u = new URL(text);
      return `${u.protocol}//${u.host}${u.pathname}`;
    }
  } catch {
    // not a URL: fall through
  }
  return text.replace(/^[^@/]*@/, "").replace(/\?.*$/, "");
}
