// A binary BUNDLE (QoS Commit) applies: its SETs are stored and broadcast (the writer
// included), its event goes to the others only, after the SETs, and nothing else arrives.
import { assert, client, recorder, scenario, synced, until, sleep } from './lib/harness.mjs';

const P = '/js/bn';

await scenario('bundle', async () => {
  const writer = await client('js-bn-writer');
  const reader = await client('js-bn-reader');
  const own = recorder(writer, `${P}/**`);
  const got = recorder(reader, `${P}/**`);
  await synced(writer);
  await synced(reader);

  // The event is listed first: SETs are applied before PUBLISHes all the same.
  writer.bundle([
    { emit: [`${P}/go`, { cue: 'now' }] },
    { set: [`${P}/a`, 1] },
    { set: [`${P}/b`, 'two'] },
    { set: [`${P}/c`, { nested: [true, null] }] },
  ]);
  await until(() => got.length >= 4, 3000, 'all four bundle members');
  await until(() => own.length >= 3, 3000, "the writer's own SETs");
  await sleep(200);
  assert.deepEqual(
    got.map((g) => [g.address, g.value]),
    [[`${P}/a`, 1], [`${P}/b`, 'two'], [`${P}/c`, { nested: [true, null] }], [`${P}/go`, { cue: 'now' }]],
    'SETs in order, then the event',
  );
  assert.deepEqual(own.map((g) => g.address), [`${P}/a`, `${P}/b`, `${P}/c`], 'writer gets its SETs, not its event');

  const late = await client('js-bn-late');
  assert.equal(await late.get(`${P}/a`), 1, 'bundle SET stored');
  assert.equal(await late.get(`${P}/b`), 'two');
  assert.deepEqual(await late.get(`${P}/c`), { nested: [true, null] });
  assert.equal(late.cached(`${P}/go`), undefined, 'bundle event not stored');
});
