// Shared harness of the JS conformance scenarios: the official @clasp-to/core client, unchanged,
// against a running relay. A scenario script is `node <scenario>.mjs ws://127.0.0.1:PORT`; it
// calls `scenario(name, fn)`, which exits 0 when `fn` resolves and nothing went wrong inside the
// clients, and 1 with a message otherwise. Every wait is bounded.
import { Clasp, ClaspBuilder } from '@clasp-to/core';
import assert from 'node:assert/strict';

export { Clasp, ClaspBuilder, assert };

export const url = process.argv[2];
if (!url || !/^wss?:\/\//.test(url)) {
  console.log('usage: node <scenario>.mjs ws://127.0.0.1:PORT (or wss://)');
  process.exit(2);
}
if (typeof WebSocket === 'undefined') {
  console.log('this Node has no global WebSocket: run it with --experimental-websocket (Node 20) or use Node >= 22');
  process.exit(2);
}

/** Everything that went wrong inside a client: decode errors, router ERRORs, callbacks. */
const problems = [];
// The client logs decode errors (console.warn) and router ERROR frames (console.error): any
// of them fails the scenario. ACKs go to console.debug and are expected for JS (QoS 1 SETs).
for (const level of ['warn', 'error']) {
  const original = console[level].bind(console);
  console[level] = (...args) => {
    problems.push(`console.${level}: ${args.map((a) => (a instanceof Error ? a.stack : String(a))).join(' ')}`);
    original(...args);
  };
}
// ACKs (QoS 1 SETs, QoS 2 bundles) are logged at debug level: expected, kept out of the output.
export const acks = [];
console.debug = (...args) => acks.push(args.map(String).join(' '));
process.on('unhandledRejection', (e) => problems.push(`unhandled rejection: ${e?.stack ?? e}`));

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

const clients = [];

/** Registers a connected client so its errors and disconnects are watched and it is closed at the end. */
export function watch(c, name) {
  c.onError((e) => problems.push(`${name}: client error: ${e?.message ?? e}`));
  c.onDisconnect((reason) => {
    if (!c.closing) problems.push(`${name}: disconnected by the relay (${reason || 'no reason'})`);
  });
  clients.push(c);
  return c;
}

/** Removes the expected problems matching `re` (e.g. an ERROR 301 a scenario provoked); returns how many. */
export function forgive(re) {
  const before = problems.length;
  for (let i = problems.length - 1; i >= 0; i--) if (re.test(problems[i])) problems.splice(i, 1);
  return before - problems.length;
}

/** A connected client (`new Clasp(url, {...})`, no reconnect: a drop must show). */
export async function client(name, target = url, options = {}) {
  const c = new Clasp(target, { name, reconnect: false, ...options });
  await c.connect(5000);
  return watch(c, name);
}

/** Waits until `predicate()` holds, at most `ms`; throws naming `what` otherwise. */
export async function until(predicate, ms = 3000, what = 'condition') {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (predicate()) return;
    await sleep(5);
  }
  throw new Error(`timed out after ${ms} ms waiting for ${what}`);
}

/** Subscribes and records every callback as {value, address, meta}. */
export function recorder(c, pattern) {
  const got = [];
  got.off = c.subscribe(pattern, (value, address, meta) => got.push({ value, address, meta }));
  return got;
}

let syncs = 0;
/**
 * Round trip through the relay: once it returns, every SUBSCRIBE/UNSUBSCRIBE `c` sent before
 * is in effect (the relay handles a session's frames in order). It sets a param of its own and
 * waits for it to come back through a subscription sent after the others.
 */
export async function synced(c) {
  const address = `/sync/js/${process.pid}/${++syncs}`;
  const got = recorder(c, address);
  c.set(address, syncs);
  await until(() => got.length > 0, 3000, `round trip through the relay (${address})`);
  got.off();
}

/** Runs a scenario with a watchdog; exits the process with its verdict. */
export async function scenario(name, fn, { limitMs = 30_000 } = {}) {
  const watchdog = setTimeout(() => {
    console.log(`js ${name}: FAILED: did not finish within ${limitMs} ms`);
    process.exit(1);
  }, limitMs);
  try {
    await fn();
    // Late decode errors or ERROR frames still count.
    await sleep(100);
    if (problems.length) throw new Error(`the clients reported problems:\n  ${problems.join('\n  ')}`);
    for (const c of clients) {
      c.closing = true;
      c.close();
    }
    clearTimeout(watchdog);
    console.log(`js ${name}: ok`);
    process.exit(0);
  } catch (e) {
    console.log(`js ${name}: FAILED: ${e?.stack ?? e}`);
    if (problems.length) console.log(`also reported by the clients:\n  ${problems.join('\n  ')}`);
    process.exit(1);
  }
}
