/**
 * One JSON line per request. Only what identifies the request is written: never a
 * header (X-Auth-Token), a body (user data, BGP passwords) or a response. A device's
 * create or update also names the device and how many bytes of user data it holds now:
 * the emulator's report of each device's size (issue #22), never its content.
 */
import * as fs from "node:fs";

export interface RequestLogEntry {
  readonly time: string;
  /** Which listener answered: the API (through the proxy), the proxy itself, or the metadata service. */
  readonly listener: "api" | "proxy" | "metadata";
  readonly method: string;
  /** Path without the query string; for CONNECT, the requested host:port. */
  readonly path: string;
  /** Query string parameter names and values (the API takes no secret in the query). */
  readonly query?: string;
  readonly status: number;
  readonly durationMs: number;
  /** The caller's address (metadata and proxy only). */
  readonly caller?: string;
  /** The device a successful create or update left, as Metal now holds it. */
  readonly device?: LoggedDevice;
}

/** What the log says of a device: its name and the size of its user data, not the data. */
export interface LoggedDevice {
  readonly id: string;
  readonly hostname: string;
  /** Bytes (UTF-8) of the user data the device holds; 0 without any. */
  readonly userDataBytes: number;
}

export type RequestLog = (entry: Omit<RequestLogEntry, "time">) => void;

export function openRequestLog(file: string): RequestLog {
  return (entry) => fs.appendFileSync(file, `${JSON.stringify({ time: new Date().toISOString(), ...entry })}\n`, { mode: 0o600 });
}

export function readRequestLog(file: string): RequestLogEntry[] {
  if (!fs.existsSync(file)) return [];
  return fs
    .readFileSync(file, "utf8")
    .split("\n")
    .filter((line) => line.trim() !== "")
    .map((line) => JSON.parse(line) as RequestLogEntry);
}
