// Events (emit) arrive intact and in order at other subscribers, are not echoed to the sender,
// and are not stored: a late joiner's snapshot, subscription and get() see nothing.
import { assert, client, recorder, scenario, synced, until, sleep } from './lib/harness.mjs';

const P = '/js/ev';
const N = 50;

await scenario('events', async () => {
  const sender = await client('js-ev-sender');
  const receiver = await client('js-ev-receiver');
  const own = recorder(sender, `${P}/**`);
  const got = recorder(receiver, `${P}/**`);
  await synced(sender);
  await synced(receiver);

  for (let i = 0; i < N; i++) sender.emit(`${P}/cue`, { n: i, name: `cue ${i} ✓`, at: [i, i / 2] });
  sender.emit(`${P}/bare`); // no payload: null
  sender.emit(`${P}/text`, 'go');
  await until(() => got.length >= N + 2, 5000, `${N + 2} events`);
  await sleep(200);
  assert.equal(got.length, N + 2, 'each event delivered once');
  const cues = got.filter((g) => g.address === `${P}/cue`).map((g) => g.value);
  assert.deepEqual(cues, [...Array(N).keys()].map((i) => ({ n: i, name: `cue ${i} ✓`, at: [i, i / 2] })), 'events intact and in order');
  assert.equal(got.find((g) => g.address === `${P}/bare`)?.value, null, 'event without payload arrives as null');
  assert.equal(got.find((g) => g.address === `${P}/text`)?.value, 'go');
  assert.equal(own.length, 0, 'not echoed to the sender');

  const late = await client('js-ev-late');
  const lateGot = recorder(late, `${P}/**`);
  await synced(late);
  assert.equal(lateGot.length, 0, 'a late subscriber gets no stored events');
  for (const a of [`${P}/cue`, `${P}/bare`, `${P}/text`]) assert.equal(late.cached(a), undefined, `${a} not in the initial snapshot`);
  const gets = await Promise.allSettled([late.get(`${P}/cue`), late.get(`${P}/text`)]);
  assert.deepEqual(gets.map((r) => r.status), ['rejected', 'rejected'], 'get() of an event address finds nothing');
});
