// Gestures: start, moves, end arrive in order with their id and payload (the relay may
// coalesce moves, keeping the latest), two gesture ids at once stay apart, and the sender
// gets no echo.
import { assert, client, recorder, scenario, synced, until, sleep } from './lib/harness.mjs';

const P = '/js/touch';

await scenario('gesture', async () => {
  const pad = await client('js-gesture-pad');
  const screen = await client('js-gesture-screen');
  const own = recorder(pad, `${P}/**`);
  const got = recorder(screen, `${P}/**`);
  await synced(pad);
  await synced(screen);

  for (const id of [1, 2]) pad.gesture(`${P}/surface`, id, 'start', { x: 0, y: id });
  for (let i = 1; i <= 20; i++) for (const id of [1, 2]) pad.gesture(`${P}/surface`, id, 'move', { x: i, y: id });
  for (const id of [1, 2]) pad.gesture(`${P}/surface`, id, 'end', { x: 20, y: id });
  await until(() => got.filter((g) => g.value?.phase === 'end').length === 2, 3000, 'both gesture ends');
  await sleep(100);

  for (const id of [1, 2]) {
    const mine = got.filter((g) => g.value?.gestureId === id).map((g) => g.value);
    const phases = mine.map((v) => v.phase);
    assert.equal(phases[0], 'start', `gesture ${id} starts with start`);
    assert.equal(phases.at(-1), 'end', `gesture ${id} ends with end`);
    assert.ok(phases.length >= 3, `gesture ${id}: at least one move (phases ${phases})`);
    assert.ok(phases.slice(1, -1).every((p) => p === 'move'), `gesture ${id}: only moves between (${phases})`);
    const xs = mine.map((v) => v.x);
    assert.deepEqual(xs, xs.slice().sort((a, b) => a - b), `gesture ${id}: positions in order (${xs})`);
    assert.deepEqual(mine[0], { x: 0, y: id, phase: 'start', gestureId: id }, `gesture ${id} start payload`);
    assert.deepEqual(mine.at(-2), { x: 20, y: id, phase: 'move', gestureId: id }, `gesture ${id}: the last move is the final position`);
    assert.deepEqual(mine.at(-1), { x: 20, y: id, phase: 'end', gestureId: id }, `gesture ${id} end payload`);
    assert.ok(mine.every((v) => v.y === id), `gesture ${id}: no payload of the other gesture`);
  }
  assert.equal(got.length, got.filter((g) => g.address === `${P}/surface`).length);
  assert.equal(own.length, 0, 'no echo to the sender');
});
