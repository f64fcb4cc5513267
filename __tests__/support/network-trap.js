// Preloaded into a node process (NODE_OPTIONS=--require) by tests: records every DNS
// lookup and outbound connection to a non-loopback host in $NETWORK_TRAP_LOG, one a
// line, and lets it go on (this machine has no route out anyway). Child node
// processes inherit NODE_OPTIONS, so a CLI and the app it runs are both watched.
"use strict";
const fs = require("node:fs");
const dns = require("node:dns");
const net = require("node:net");

const log = process.env.NETWORK_TRAP_LOG;
const LOCAL = /^(localhost|127\.\d+\.\d+\.\d+|::1|0\.0\.0\.0|::)$/;

function record(kind, host) {
  if (!log || !host || LOCAL.test(String(host))) return;
  fs.appendFileSync(log, `${kind} ${host} (pid ${process.pid}: ${process.argv.slice(1, 3).join(" ")})\n`);
}

const lookup = dns.lookup;
dns.lookup = function (hostname, ...rest) {
  record("lookup", hostname);
  return lookup.call(this, hostname, ...rest);
};
const promisesLookup = dns.promises.lookup;
dns.promises.lookup = function (hostname, ...rest) {
  record("lookup", hostname);
  return promisesLookup.call(this, hostname, ...rest);
};
const connect = net.Socket.prototype.connect;
net.Socket.prototype.connect = function (...args) {
  const options = typeof args[0] === "object" && args[0] !== null ? args[0] : { port: args[0], host: args[1] };
  if (!options.path) record("connect", options.host ?? "localhost");
  return connect.apply(this, args);
};
