// The official JS client moves a fader under the OSC bridge's namespace; the OSC target
// (oscdump, started by tests/bridge_osc.rs) must print `/mixer/fader f 0.750000`.
import { client, scenario } from '../conformance/js/lib/harness.mjs';

await scenario('osc fader', async () => {
  const c = await client('js-osc-fader');
  c.set('/osc/mixer/fader', 0.75);
  const back = await c.get('/osc/mixer/fader');
  if (back !== 0.75) throw new Error(`GET after SET gave ${back}`);
});
