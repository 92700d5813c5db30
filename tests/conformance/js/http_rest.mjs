// The REST bridge on the relay's own port against the official JS client (FEATURES HTTP-2/3):
// a PUT over HTTP reaches a JS subscriber with its type; a JS set() is read back over HTTP with
// its revision and writer; an HTTP emit reaches a JS on(); a JS subscriber sees a DELETE.
import { assert, client, recorder, scenario, synced, until } from './lib/harness.mjs';

const base = process.argv[2].replace(/^ws/, 'http') + '/api/v1';
const P = 'js/http';

async function rest(method, path, body) {
  const res = await fetch(`${base}${path}`, {
    method,
    headers: { 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
    signal: AbortSignal.timeout(5000),
  });
  return { status: res.status, json: await res.json() };
}

await scenario('http_rest', async () => {
  const js = await client('js-http');
  const got = recorder(js, `/${P}/**`);
  await synced(js);

  const values = { int: 42, float: 0.8, text: 'hé ✓', flag: true, list: [1, 'two', 3.5], map: { a: 1, b: [false] } };
  for (const [k, v] of Object.entries(values)) {
    const r = await rest('PUT', `/state/${P}/${k}`, { value: v });
    assert.equal(r.status, 200, `PUT ${k}: ${JSON.stringify(r.json)}`);
    assert.equal(r.json.revision, 1);
  }
  await until(() => got.length >= 6, 5000, 'six values at the JS subscriber');
  for (const [k, v] of Object.entries(values)) {
    assert.deepEqual(got.find((g) => g.address === `/${P}/${k}`)?.value, v, `${k} arrives intact`);
  }

  js.set(`/${P}/fromjs`, 0.25);
  await until(() => got.some((g) => g.address === `/${P}/fromjs`), 5000, 'own set echoed');
  const read = await rest('GET', `/state/${P}/fromjs`);
  assert.equal(read.status, 200);
  assert.equal(read.json.value, 0.25);
  assert.equal(read.json.revision, 1);
  assert.equal(read.json.writer, js.session, 'writer is the JS session');

  const events = [];
  js.on(`/${P}/cue/*`, (value, address) => events.push({ value, address }));
  await synced(js);
  const e = await rest('POST', `/emit/${P}/cue/go`, { value: { n: 7 } });
  assert.deepEqual(e.json, { address: `/${P}/cue/go`, status: 'emitted' });
  await until(() => events.length >= 1, 5000, 'the event at on()');
  assert.deepEqual(events[0], { value: { n: 7 }, address: `/${P}/cue/go` });

  const d = await rest('DELETE', `/state/${P}/int`);
  assert.equal(d.status, 200);
  await until(() => got.some((g) => g.address === `/${P}/int` && g.value === null), 5000, 'the delete at the subscriber');
  assert.equal((await rest('GET', `/state/${P}/int`)).status, 404);
});
