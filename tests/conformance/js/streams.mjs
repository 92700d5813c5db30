// 200 stream values arrive intact and in order at other subscribers, are not echoed to the
// sender, and are not stored.
import { assert, client, recorder, scenario, synced, until, sleep } from './lib/harness.mjs';

const P = '/js/stream';
const N = 200;
const sample = (i) => i / N;

await scenario('streams', async () => {
  const sender = await client('js-stream-sender');
  const receiver = await client('js-stream-receiver');
  const own = recorder(sender, `${P}/**`);
  const got = recorder(receiver, `${P}/**`);
  await synced(sender);
  await synced(receiver);

  for (let i = 0; i < N; i++) sender.stream(`${P}/fader`, sample(i));
  for (let i = 0; i < 20; i++) sender.stream(`${P}/xyz`, { x: i, y: -i, z: [i] });
  await until(() => got.length >= N + 20, 5000, `${N} + 20 stream values (got ${got.length})`);
  await sleep(200);
  const fader = got.filter((g) => g.address === `${P}/fader`).map((g) => g.value);
  assert.deepEqual(fader, [...Array(N).keys()].map(sample), 'stream intact and in order');
  const xyz = got.filter((g) => g.address === `${P}/xyz`).map((g) => g.value);
  assert.deepEqual(xyz, [...Array(20).keys()].map((i) => ({ x: i, y: -i, z: [i] })), 'map samples intact and in order');
  assert.equal(got.length, N + 20, 'nothing extra');
  assert.equal(own.length, 0, 'not echoed to the sender');

  const late = await client('js-stream-late');
  const lateGot = recorder(late, `${P}/**`);
  await synced(late);
  assert.equal(lateGot.length, 0, 'a late subscriber gets no stored samples');
  assert.equal(late.cached(`${P}/fader`), undefined, 'not in the initial snapshot');
  await assert.rejects(late.get(`${P}/fader`), 'get() of a stream address finds nothing');
});
