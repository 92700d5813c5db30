// Cross-client check, JS side: subscribes to /cross/**, publishes its own set/event/stream
// under /cross/js/, then prints what it received from the others as JSON lines.
// Usage: node cross.mjs ws://127.0.0.1:PORT
import { Clasp } from '@clasp-to/core';

const url = process.argv[2];
const VALUE = { n: 1.5, s: 'héllo', b: true, z: null, list: [0.25, 'x', false] };
const c = new Clasp(url, { name: 'cross-js', reconnect: false });
await c.connect(5000);
const got = [];
c.subscribe('/cross/**', (value, address) => got.push({ address, value }));
await new Promise((r) => setTimeout(r, 1500));
c.set('/cross/js/param', VALUE);
c.emit('/cross/js/event', VALUE);
c.stream('/cross/js/stream', 0.75);
await new Promise((r) => setTimeout(r, 2000));
for (const g of got) {
  if (!g.address.startsWith('/cross/js/')) console.log(JSON.stringify({ by: 'js', ...g }));
}
c.close();
process.exit(0);
