// get() of an address nobody wrote: the relay answers nothing, so the client rejects with its
// 5 s timeout (and not earlier through an ERROR or a dropped connection).
import { assert, client, scenario, synced } from './lib/harness.mjs';

await scenario('get_unknown', async () => {
  const c = await client('js-get-unknown');
  const started = Date.now();
  await assert.rejects(c.get('/js/none/here'), /Timeout/, 'get of an unknown address rejects');
  const took = Date.now() - started;
  assert.ok(took >= 4500 && took < 6500, `rejected by the client's 5 s timeout (after ${took} ms)`);
  assert.equal(c.connected, true, 'still connected');
  await synced(c);
});
