// Federation seen by the official JS client: `node federation.mjs ws://LEAF_A ws://LEAF_B`.
// Leaf A owns /site-a/**, leaf B owns /site-b/**; both joined one hub. A client on each leaf
// reads and subscribes across sites, writes into the other site's namespace (forwarded to
// its owner), and events cross too. A client joining B late sees A's params in its snapshot.
import { assert, client, recorder, scenario, synced, until } from './lib/harness.mjs';

const other = process.argv[3];
if (!other || !/^wss?:\/\//.test(other)) {
  console.log('usage: node federation.mjs ws://LEAF_A ws://LEAF_B');
  process.exit(2);
}

await scenario('federation', async () => {
  const a = await client('js-site-a');
  const b = await client('js-site-b', other);
  const seenOnB = recorder(b, '/site-a/**');
  const seenOnA = recorder(a, '/site-b/**');
  await synced(a);
  await synced(b);

  // A write on A (its own namespace) reaches B's subscriber live, and B's get().
  a.set('/site-a/greeting', 'hello from a');
  await until(() => seenOnB.some((g) => g.value === 'hello from a'), 3000, "A's SET on B");
  assert.equal(await b.get('/site-a/greeting'), 'hello from a', 'get() on B');

  // B writes into A's namespace: forwarded to A, the owner, and mirrored back to B.
  b.set('/site-a/from-b', 42);
  await until(() => seenOnB.some((g) => g.address === '/site-a/from-b' && g.value === 42), 3000, "B's write mirrored on B");
  assert.equal(await a.get('/site-a/from-b'), 42, 'the owner A has it');

  // And the other way round.
  a.set('/site-b/from-a', { on: true });
  await until(() => seenOnA.some((g) => g.address === '/site-b/from-a'), 3000, "A's write into B's namespace");
  assert.deepEqual(await b.get('/site-b/from-a'), { on: true }, 'the owner B has it');

  // Events cross sites (and are not stored).
  a.emit('/site-a/cue', { go: 7 });
  await until(() => seenOnB.some((g) => g.address === '/site-a/cue'), 3000, 'event from A on B');

  // A late joiner on B gets A's params in its initial snapshot.
  const late = await client('js-site-b-late', other);
  await until(() => late.cached('/site-a/greeting') !== undefined, 3000, 'late joiner snapshot');
  assert.equal(late.cached('/site-a/greeting'), 'hello from a');
  assert.equal(late.cached('/site-a/from-b'), 42);
});
