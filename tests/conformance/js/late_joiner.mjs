// A client that connects after the writes gets the latest value: in the initial SNAPSHOT
// (cache), from get(), and in the SNAPSHOT that answers its SUBSCRIBE, with the revision.
import { assert, client, recorder, scenario, synced, until } from './lib/harness.mjs';

const P = '/js/late';

await scenario('late_joiner', async () => {
  const writer = await client('js-late-writer');
  const own = recorder(writer, `${P}/**`);
  await synced(writer);
  writer.set(`${P}/x`, 1);
  writer.set(`${P}/x`, 2);
  writer.set(`${P}/x`, 3);
  writer.set(`${P}/deep/map`, { scene: 'intro', level: 0.5 });
  // The writer is subscribed, so the relay echoes its own SETs: wait for the last one.
  await until(() => own.length >= 4, 3000, "the writer's own SETs echoed");
  assert.deepEqual(own.map((g) => g.value), [1, 2, 3, { scene: 'intro', level: 0.5 }], 'echoed in order');

  const late = await client('js-late-joiner');
  // connect() resolves on WELCOME; the initial SNAPSHOT follows it.
  await until(() => late.cached(`${P}/x`) !== undefined, 3000, 'initial SNAPSHOT in the cache');
  assert.equal(late.cached(`${P}/x`), 3, 'initial SNAPSHOT has the latest value');
  assert.deepEqual(late.cached(`${P}/deep/map`), { scene: 'intro', level: 0.5 });
  assert.equal(await late.get(`${P}/x`), 3, 'get() gives the latest value');

  const got = recorder(late, `${P}/**`);
  await until(() => got.length >= 2, 3000, 'SNAPSHOT on subscribe');
  await synced(late);
  const x = got.filter((g) => g.address === `${P}/x`);
  assert.equal(x.length, 1, 'one entry for /x, not its history');
  assert.equal(x[0].value, 3, 'latest value');
  assert.equal(x[0].meta?.revision, 3, 'its revision: three writes');
  const m = got.find((g) => g.address === `${P}/deep/map`);
  assert.equal(m?.meta?.revision, 1, 'the map was written once');

  // A live write after joining arrives with the next revision.
  writer.set(`${P}/x`, 4);
  await until(() => got.some((g) => g.value === 4), 3000, 'live SET after joining');
  assert.equal(late.cached(`${P}/x`), 4);
});
