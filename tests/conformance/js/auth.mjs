// Authenticated relay: no token or an unknown one is refused promptly (connect() rejects, it
// does not hang); a CPSK token from /auth connects; a limited token reads and writes only
// where its scopes allow, and its cache never holds a value it may not read.
// Tokens come from the environment: CLASP_TOKEN (read:/**, write:/**) and CLASP_TOKEN_LIMITED
// (read:/pub/**, write:/app/**, plus the harness's /sync and /alive round trips).
import { Clasp, assert, client, forgive, recorder, scenario, synced, until, url } from './lib/harness.mjs';

const full = process.env.CLASP_TOKEN;
const limitedToken = process.env.CLASP_TOKEN_LIMITED;

async function refused(token, what) {
  const c = new Clasp(url, { name: `js-${what}`, reconnect: false, ...(token ? { token } : {}) });
  const t0 = Date.now();
  await assert.rejects(c.connect(5000), `${what}: connect() rejects`);
  assert.ok(Date.now() - t0 < 4000, `${what}: refused within 4 s, took ${Date.now() - t0} ms`);
}

await scenario('auth', async () => {
  assert.ok(full && limitedToken, 'CLASP_TOKEN and CLASP_TOKEN_LIMITED are set');
  await refused(undefined, 'no-token');
  await refused('cpsk_00000000000000000000000000000000', 'unknown-token');
  assert.ok(forgive(/300/) >= 2, 'both refusals were ERROR 300');

  const admin = await client('js-auth-full', url, { token: full });
  admin.set('/pub/a', 1);
  admin.set('/secret/s', 2);
  await synced(admin);

  const limited = await client('js-auth-limited', url, { token: limitedToken });
  const pub = recorder(limited, '/pub/**');
  await until(() => pub.some((u) => u.address === '/pub/a' && u.value === 1), 3000, '/pub/a from the snapshot');
  assert.equal(limited.cached('/secret/s'), undefined, 'the initial snapshot held no /secret value');

  const apps = recorder(admin, '/app/**');
  await synced(admin);
  limited.set('/app/x', 5);
  await until(() => apps.some((u) => u.address === '/app/x' && u.value === 5), 3000, 'an allowed write reaching another client');

  limited.set('/secret/s', 9);
  await until(() => forgive(/301/) === 1, 3000, 'ERROR 301 for a write outside the scopes');
  await synced(limited);
  assert.equal(await admin.get('/secret/s'), 2, 'the refused write changed nothing');
  admin.set('/secret/s', 3);
  await synced(admin);
  await synced(limited);
  assert.equal(limited.cached('/secret/s'), undefined, 'no /secret value was ever delivered');
});
