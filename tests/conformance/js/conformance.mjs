// Conformance scenarios for the official JS client (@clasp-to/core, unchanged) against a
// running relay. Usage: node conformance.mjs ws://127.0.0.1:PORT <scenario>
// Exits 0 when every assertion holds, 1 with a message otherwise. Every wait is bounded.
import { Clasp } from '@clasp-to/core';
import assert from 'node:assert/strict';

const [url, scenario] = process.argv.slice(2);
const problems = [];
// The client reports decode errors and router errors on the console: any is a failure
// unless a scenario expects it.
const expectedErrors = [];
for (const level of ['warn', 'error']) {
  const original = console[level];
  console[level] = (...args) => {
    const text = args.map(String).join(' ');
    if (!expectedErrors.some((re) => re.test(text))) problems.push(`console.${level}: ${text}`);
    original(...args);
  };
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const clients = [];
async function client(name) {
  const c = new Clasp(url, { name, reconnect: false });
  c.onError((e) => problems.push(`${name} error: ${e.message ?? e}`));
  await c.connect(5000);
  clients.push(c);
  return c;
}
/** Waits until `predicate()` holds, at most `ms`. */
async function until(predicate, ms = 3000, what = 'condition') {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (predicate()) return;
    await sleep(10);
  }
  throw new Error(`timed out waiting for ${what}`);
}
function recorder(c, pattern) {
  const got = [];
  c.subscribe(pattern, (value, address, meta) => got.push({ value, address, meta }));
  return got;
}

const VALUES = {
  null: null,
  bool: true,
  false: false,
  number: 42,
  float: -0.125,
  string: 'héllo wörld ✓',
  bytes: new Uint8Array([0, 1, 254, 255]),
  array: [1, 'two', null, false, [3.5]],
  map: { a: 1, nested: { b: [1, 2, { c: 'd' }], e: null }, f: 'g' },
};

const scenarios = {
  async connect() {
    const c = await client('js-connect');
    assert.ok(c.connected, 'connected');
    assert.match(c.session, /.+/, 'session id from WELCOME');
    // WELCOME carries the router clock: time() is close to ours on loopback.
    assert.ok(Math.abs(c.time() - Date.now() * 1000) < 5_000_000, 'server time within 5 s');
  },

  async values() {
    const writer = await client('js-writer');
    const reader = await client('js-reader');
    const got = recorder(reader, '/js/values/*');
    await sleep(100);
    for (const [k, v] of Object.entries(VALUES)) writer.set(`/js/values/${k}`, v);
    await until(() => got.length >= Object.keys(VALUES).length, 3000, 'all value types');
    for (const [k, v] of Object.entries(VALUES)) {
      const seen = got.find((g) => g.address === `/js/values/${k}`);
      assert.ok(seen, `received ${k}`);
      assert.deepEqual(seen.value, v, `value ${k} round-trips exactly`);
      // A fresh client's get() is answered by the relay (not a local cache).
      const fresh = await client(`js-get-${k}`);
      assert.deepEqual(await fresh.get(`/js/values/${k}`), v, `get ${k}`);
    }
  },

  async wildcards() {
    const writer = await client('js-writer');
    const reader = await client('js-reader');
    const one = recorder(reader, '/js/wild/*/level');
    const all = recorder(reader, '/js/wild/**');
    await sleep(100);
    const addresses = ['/js/wild/a/level', '/js/wild/b/level', '/js/wild/a/b/level', '/js/wild/c', '/js/other/a/level'];
    for (const a of addresses) writer.set(a, 1);
    writer.set('/js/wild/done', 1);
    await until(() => all.some((g) => g.address === '/js/wild/done'), 3000, 'marker');
    await sleep(100);
    assert.deepEqual(one.map((g) => g.address).sort(), ['/js/wild/a/level', '/js/wild/b/level']);
    assert.deepEqual(
      all.map((g) => g.address).sort(),
      ['/js/wild/a/b/level', '/js/wild/a/level', '/js/wild/b/level', '/js/wild/c', '/js/wild/done'],
    );
  },

  async latejoin() {
    const writer = await client('js-writer');
    writer.set('/js/late/x', 1);
    writer.set('/js/late/x', 2);
    writer.set('/js/late/x', 3);
    await sleep(200);
    const late = await client('js-late');
    const got = recorder(late, '/js/late/**');
    await until(() => got.length >= 1, 3000, 'snapshot on subscribe');
    assert.equal(got.at(-1).value, 3, 'latest value');
    assert.equal(got.at(-1).meta?.revision, 3, 'its revision');
    assert.equal(late.cached('/js/late/x'), 3, 'initial snapshot filled the cache');
  },

  async events() {
    const sender = await client('js-sender');
    const receiver = await client('js-receiver');
    const own = recorder(sender, '/js/ev/**');
    const got = recorder(receiver, '/js/ev/**');
    await sleep(100);
    for (let i = 0; i < 50; i++) sender.emit('/js/ev/cue', { n: i, name: `cue ${i}` });
    for (let i = 0; i < 200; i++) sender.stream('/js/ev/fader', i / 200);
    await until(() => got.length >= 250, 5000, '50 events and 200 stream values');
    const cues = got.filter((g) => g.address === '/js/ev/cue').map((g) => g.value.n);
    const fader = got.filter((g) => g.address === '/js/ev/fader').map((g) => g.value);
    assert.deepEqual(cues, [...Array(50).keys()], 'events intact and in order');
    assert.deepEqual(fader, [...Array(200).keys()].map((i) => i / 200), 'stream intact and in order');
    await sleep(200);
    assert.equal(own.length, 0, 'not echoed to the sender');
    // Not stored: a late joiner's snapshot and subscription see nothing.
    const late = await client('js-late');
    const lateGot = recorder(late, '/js/ev/**');
    await sleep(300);
    assert.equal(lateGot.length, 0, 'events and streams are not stored');
    assert.equal(late.cached('/js/ev/cue'), undefined);
  },

  async bundle() {
    const writer = await client('js-writer');
    const reader = await client('js-reader');
    const got = recorder(reader, '/js/bn/**');
    await sleep(100);
    writer.bundle([{ set: ['/js/bn/a', 1] }, { set: ['/js/bn/b', 'two'] }, { emit: ['/js/bn/go', 'now'] }]);
    await until(() => got.length >= 3, 3000, 'bundle members');
    assert.deepEqual(
      got.map((g) => [g.address, g.value]).sort(),
      [['/js/bn/a', 1], ['/js/bn/b', 'two'], ['/js/bn/go', 'now']],
    );
    // Scheduled: held until its time.
    const at = writer.time() + 500_000;
    writer.bundle([{ set: ['/js/bn/later', 1] }], { at });
    await sleep(300);
    assert.ok(!got.some((g) => g.address === '/js/bn/later'), 'not before its time');
    await until(() => got.some((g) => g.address === '/js/bn/later'), 2000, 'scheduled bundle');
  },

  async unsubscribe() {
    const writer = await client('js-writer');
    const reader = await client('js-reader');
    const got = [];
    const off = reader.subscribe('/js/unsub/**', (value, address) => got.push(address));
    await sleep(100);
    writer.set('/js/unsub/a', 1);
    await until(() => got.length === 1, 3000, 'first delivery');
    off();
    await sleep(100);
    writer.set('/js/unsub/b', 1);
    await sleep(300);
    assert.deepEqual(got, ['/js/unsub/a'], 'nothing after unsubscribe');
  },

  async gesture() {
    const pad = await client('js-pad');
    const screen = await client('js-screen');
    const got = recorder(screen, '/js/touch');
    await sleep(100);
    pad.gesture('/js/touch', 7, 'start', { x: 0, y: 0 });
    for (let i = 1; i <= 10; i++) pad.gesture('/js/touch', 7, 'move', { x: i, y: i });
    pad.gesture('/js/touch', 7, 'end', { x: 10, y: 10 });
    await until(() => got.some((g) => g.value?.phase === 'end'), 3000, 'gesture end');
    const phases = got.map((g) => g.value.phase);
    assert.equal(phases[0], 'start');
    assert.equal(phases.at(-1), 'end');
    assert.ok(phases.slice(1, -1).every((p) => p === 'move'), 'moves between');
    assert.equal(got.at(-2).value.x, 10, 'last move is the final position');
    assert.equal(got[0].value.gestureId, 7, 'gesture id kept');
  },

  async get_unknown() {
    const c = await client('js-get');
    const started = Date.now();
    await assert.rejects(c.get('/js/none/here'), 'get of an unknown address rejects');
    assert.ok(Date.now() - started < 7000, 'within the client timeout');
  },
};

const run = scenarios[scenario];
if (!run) {
  console.log(`unknown scenario ${scenario}; one of ${Object.keys(scenarios).join(', ')}`);
  process.exit(2);
}
const watchdog = setTimeout(() => {
  console.log(`scenario ${scenario} did not finish in 30 s`);
  process.exit(1);
}, 30_000);
try {
  await run();
  await sleep(100);
  if (problems.length) throw new Error(`client reported problems:\n${problems.join('\n')}`);
  console.log(`js ${scenario}: ok`);
  for (const c of clients) c.close();
  clearTimeout(watchdog);
  process.exit(0);
} catch (e) {
  console.log(`js ${scenario}: FAILED: ${e.stack ?? e}`);
  process.exit(1);
}
