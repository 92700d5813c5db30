// Every value type round-trips exactly, through three paths: a live SET to a subscriber, a
// GET over the wire (a client that has never seen the address), and the initial SNAPSHOT of a
// client that connects afterwards (with the revision in the callback's meta).
import { assert, client, recorder, scenario, synced, until } from './lib/harness.mjs';

const VALUES = {
  null: null,
  true: true,
  false: false,
  int: 42, // JS numbers always travel as f64
  negative: -7,
  maxSafe: Number.MAX_SAFE_INTEGER,
  float: -0.125,
  tiny: 5e-324,
  huge: 1.7976931348623157e308,
  negzero: -0,
  infinity: Infinity,
  nan: NaN,
  empty: '',
  string: 'héllo wörld ✓ 日本語 🎛️',
  bytes: new Uint8Array([0, 1, 127, 128, 254, 255]),
  nobytes: new Uint8Array([]),
  array: [1, 'two', null, false, [3.5, []], new Uint8Array([9])],
  emptyArray: [],
  map: { a: 1, 'ключ': 'значение', nested: { b: [1, 2, { c: 'd' }], e: null, f: { g: { h: true } } } },
  emptyMap: {},
};
const P = '/js/values';

await scenario('values', async () => {
  const writer = await client('js-values-writer');
  const reader = await client('js-values-reader');
  const getter = await client('js-values-getter'); // connected before the writes, never subscribes
  const got = recorder(reader, `${P}/*`);
  await synced(reader);

  for (const [k, v] of Object.entries(VALUES)) writer.set(`${P}/${k}`, v);
  const n = Object.keys(VALUES).length;
  await until(() => got.length >= n, 3000, `${n} live SETs`);
  assert.equal(got.length, n, 'one delivery per SET');
  for (const [k, v] of Object.entries(VALUES)) {
    const seen = got.find((g) => g.address === `${P}/${k}`);
    assert.ok(seen, `live SET of ${k} arrived`);
    assert.deepStrictEqual(seen.value, v, `live SET of ${k} round-trips exactly`);
  }

  for (const [k, v] of Object.entries(VALUES)) {
    assert.equal(getter.cached(`${P}/${k}`), undefined, `getter has not seen ${k} (so get() asks the relay)`);
    assert.deepStrictEqual(await getter.get(`${P}/${k}`), v, `GET of ${k} round-trips exactly`);
  }

  const late = await client('js-values-late');
  const snap = recorder(late, `${P}/*`);
  await until(() => snap.length >= n, 3000, 'SNAPSHOT of every value on subscribe');
  for (const [k, v] of Object.entries(VALUES)) {
    assert.deepStrictEqual(late.cached(`${P}/${k}`), v, `initial SNAPSHOT of ${k} round-trips exactly`);
    const seen = snap.find((g) => g.address === `${P}/${k}`);
    assert.ok(seen, `subscribe SNAPSHOT has ${k}`);
    assert.deepStrictEqual(seen.value, v, `subscribe SNAPSHOT of ${k}`);
    assert.equal(seen.meta?.revision, 1, `${k} is at revision 1`);
    assert.equal(typeof seen.meta?.writer, 'string', `${k} names its writer`);
    assert.equal(seen.meta.writer, writer.session, `${k} was written by the writer's session`);
    const age = Math.abs(Date.now() * 1000 - seen.meta.timestamp);
    assert.ok(age < 10_000_000, `${k} carries the write time in µs (off by ${age} µs)`);
  }
});
