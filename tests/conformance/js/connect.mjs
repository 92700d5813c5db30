// Connecting: WELCOME resolves connect() with a session id and the relay's clock; any path
// works; the builder API connects too; two clients get distinct sessions.
import { ClaspBuilder, Clasp, assert, client, scenario, url, watch } from './lib/harness.mjs';

await scenario('connect', async () => {
  const a = await client('js-connect-a');
  assert.equal(a.connected, true, 'connected after connect()');
  assert.equal(typeof a.session, 'string', 'session id from WELCOME');
  assert.ok(a.session.length > 0, 'session id is not empty');
  // time() = local clock + offset from WELCOME: on loopback the relay's clock is ours.
  const skew = Math.abs(a.time() - Date.now() * 1000);
  assert.ok(skew < 1_000_000, `WELCOME time within 1 s of the local clock (off by ${skew} µs)`);

  // Builder API, and a path the relay must ignore.
  const b = watch(await new ClaspBuilder(`${url}/clasp/any/path`).withName('js-connect-b').withReconnect(false).connect(), 'js-connect-b');
  assert.equal(b.connected, true, 'builder client connected on another path');
  assert.notEqual(b.session, a.session, 'each connection is its own session');

  // Clasp.builder(url) is the same builder.
  const c = watch(await Clasp.builder(url).name('js-connect-c').reconnect(false).connect(), 'js-connect-c');
  assert.ok(c.session && c.session !== a.session && c.session !== b.session, 'third distinct session');
});
