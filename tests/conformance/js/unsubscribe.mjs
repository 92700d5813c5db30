// After unsubscribe() the relay stops delivering: no callback, and nothing reaches the
// client at all (its cache, which every received SET fills, stays empty for later writes).
import { assert, client, recorder, scenario, synced, until, sleep } from './lib/harness.mjs';

const P = '/js/unsub';

await scenario('unsubscribe', async () => {
  const writer = await client('js-unsub-writer');
  const reader = await client('js-unsub-reader');
  const got = recorder(reader, `${P}/**`);
  const kept = recorder(reader, `${P}/kept/*`);
  await synced(reader);
  writer.set(`${P}/a`, 1);
  writer.emit(`${P}/ev`, 'one');
  await until(() => got.length === 2, 3000, 'deliveries before unsubscribe');

  got.off();
  await synced(reader);
  writer.set(`${P}/b`, 2);
  writer.emit(`${P}/ev`, 'two');
  writer.set(`${P}/kept/x`, 3);
  await until(() => kept.length === 1, 3000, 'the other subscription still delivers');
  await sleep(200);
  assert.deepEqual(got.map((g) => g.address), [`${P}/a`, `${P}/ev`], 'no callbacks after unsubscribe');
  assert.equal(reader.cached(`${P}/b`), undefined, 'the relay sent nothing for the removed subscription');
  assert.equal(reader.cached(`${P}/kept/x`), 3);
});
