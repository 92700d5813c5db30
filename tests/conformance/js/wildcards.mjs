// `*` and `**` subscriptions get exactly the matching addresses. Each pattern has a session of
// its own, and the check also reads the client's cache, which holds every SET the relay sent
// whether or not a local callback matched: so the relay's own filtering is what is tested,
// not only the client's re-filtering.
import { assert, client, recorder, scenario, synced, until } from './lib/harness.mjs';

const P = '/js/wild';
const WRITES = [
  `${P}/a/level`,
  `${P}/b/level`,
  `${P}/a/b/level`,
  `${P}/level`,
  `${P}/a/levels`,
  `${P}/c`,
  `${P}`,
  `${P}card/a/level`, // shares the prefix text but not the segment
  '/js/other/a/level',
];
const ONE = [`${P}/a/level`, `${P}/b/level`];
// `**` matches zero or more segments: the bare prefix too (the relay's documented semantics;
// this client's own regex matcher does not fire the callback for it, so the cache shows it).
const ALL_CALLBACK = [`${P}/a/b/level`, `${P}/a/level`, `${P}/a/levels`, `${P}/b/level`, `${P}/c`, `${P}/level`];
const ALL_DELIVERED = [...ALL_CALLBACK, P];

await scenario('wildcards', async () => {
  const writer = await client('js-wild-writer');
  const oneReader = await client('js-wild-one');
  const allReader = await client('js-wild-all');
  const one = recorder(oneReader, `${P}/*/level`);
  const all = recorder(allReader, `${P}/**`);
  await synced(oneReader);
  await synced(allReader);

  for (const a of WRITES) writer.set(a, a);
  // A marker written last: when it has arrived, every earlier write has too.
  writer.set(`${P}/z/level`, 'done');
  await until(() => one.some((g) => g.address === `${P}/z/level`), 3000, 'marker via *');
  await until(() => all.some((g) => g.address === `${P}/z/level`), 3000, 'marker via **');

  const strip = (got) => got.map((g) => g.address).filter((a) => a !== `${P}/z/level`).sort();
  assert.deepEqual(strip(one), ONE.slice().sort(), '* callbacks: exactly one segment');
  assert.deepEqual(strip(all), ALL_CALLBACK.slice().sort(), '** callbacks: everything under the prefix');
  for (const g of [...one, ...all]) assert.equal(g.value, g.address === `${P}/z/level` ? 'done' : g.address, 'value matches its address');

  const delivered = (c) => WRITES.filter((a) => c.cached(a) !== undefined).sort();
  assert.deepEqual(delivered(oneReader), ONE.slice().sort(), 'the relay sent the * session exactly its matches');
  assert.deepEqual(delivered(allReader), ALL_DELIVERED.slice().sort(), 'the relay sent the ** session exactly its matches (the prefix itself included)');
});
