// A BUNDLE with a timestamp (relay time, µs) is held until then.
import { assert, client, recorder, scenario, synced, until } from './lib/harness.mjs';

const P = '/js/bnat';

await scenario('bundle_scheduled', async () => {
  const writer = await client('js-bnat-writer');
  const reader = await client('js-bnat-reader');
  const got = [];
  reader.subscribe(`${P}/**`, (value, address) => got.push({ address, value, t: Date.now() }));
  await synced(reader);

  const sent = Date.now();
  writer.bundle([{ set: [`${P}/later`, 1] }, { emit: [`${P}/cue`, 'go'] }], { at: writer.time() + 800_000 });
  await until(() => got.length >= 2, 3000, 'scheduled bundle members');
  for (const g of got) {
    const after = g.t - sent;
    assert.ok(after >= 700 && after <= 1500, `${g.address} delivered ${after} ms after sending, want ~800 ms`);
  }
  assert.deepEqual(got.map((g) => g.address), [`${P}/later`, `${P}/cue`]);
  // A timestamp in the past runs at once.
  const before = Date.now();
  writer.bundle([{ set: [`${P}/past`, 2] }], { at: writer.time() - 1_000_000 });
  await until(() => got.some((g) => g.address === `${P}/past`), 1000, 'past-dated bundle runs at once');
  assert.ok(Date.now() - before < 500, 'past-dated bundle not delayed');
});
