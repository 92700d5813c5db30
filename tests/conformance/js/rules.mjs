// The rules engine seen by the official JS client (FEATURES RU-3, RU-5). Run by tests/rules.rs
// against a relay started with the rules of that test: a main fader that drives a secondary
// one at half level, and an alert event that sets a param.
import { assert, client, recorder, scenario, synced, until } from './lib/harness.mjs';

await scenario('rules', async () => {
  const js = await client('js-rules');
  const secondary = recorder(js, '/lights/secondary/intensity');
  const seen = recorder(js, '/alerts/seen');
  await synced(js);

  // RU-3: on_change → set_from_trigger scaled 0.5.
  js.set('/lights/main/intensity', 0.8);
  await until(() => secondary.length > 0, 3000, 'the secondary intensity');
  assert.equal(secondary[0].value, 0.4);

  // RU-5: an event fires on_event; its action's SET is visible.
  js.emit('/alerts/x', 'smoke');
  await until(() => seen.length > 0, 3000, 'the alert param');
  assert.equal(seen[0].value, 'smoke');
});
