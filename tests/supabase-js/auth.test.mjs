// GoTrue subset: signup, password and refresh-token grants, /user, logout,
// the admin users API, and the apikey gate, through supabase-js.

import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import { isAuthSessionMissingError } from '@supabase/supabase-js';
import {
  ANON_KEY,
  PASSWORD,
  anonClient,
  cleanup,
  db,
  decodeJwt,
  newUser,
  rawFetch,
  serviceClient,
  trackUser,
  uniqueEmail,
  waitFor,
} from './helpers.mjs';

after(cleanup);

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

async function userRow(id) {
  const { rows } = await db().query(
    `select id, email, email_confirmed_at, encrypted_password,
            (extract(epoch from last_sign_in_at) * 1000000)::bigint::text as last_sign_in_us
       from auth.users where id = $1`,
    [id],
  );
  return rows[0];
}

async function sessionIds(userId) {
  const { rows } = await db().query('select id from auth.sessions where user_id = $1', [userId]);
  return rows.map((r) => r.id);
}

// GET /auth/v1/user with an explicit bearer token, as auth-js sends it.
function getUserRaw(token, { apikey = ANON_KEY } = {}) {
  const headers = { Authorization: `Bearer ${token}`, 'X-Supabase-Api-Version': '2024-01-01' };
  if (apikey) headers.apikey = apikey;
  return rawFetch('/auth/v1/user', { headers });
}

// GoTrue sends `code` with an API version header, `error_code` without.
async function errorCode(res) {
  const body = await res.json();
  return body.code ?? body.error_code;
}

test('signUp returns a confirmed user and a session, recorded in auth.users and auth.sessions', async () => {
  const client = anonClient();
  const email = uniqueEmail('signup');
  const { data, error } = await client.auth.signUp({ email, password: PASSWORD });
  assert.equal(error, null);
  trackUser(data.user?.id);

  assert.match(data.user.id, UUID);
  assert.equal(data.user.email, email);
  assert.equal(data.user.aud, 'authenticated');
  assert.ok(data.user.email_confirmed_at, 'signup auto-confirms: user.email_confirmed_at is set');

  const { session } = data;
  assert.ok(session, 'signup returns a session (auto-confirm)');
  assert.equal(session.token_type, 'bearer');
  assert.equal(typeof session.access_token, 'string');
  assert.ok(session.refresh_token, 'session has a refresh_token');
  assert.ok(session.expires_in > 0, 'expires_in > 0');
  assert.ok(session.expires_at > Date.now() / 1000, 'expires_at is in the future');
  assert.equal(session.user.id, data.user.id);

  const row = await userRow(data.user.id);
  assert.ok(row, 'auth.users has the new user');
  assert.equal(row.email, email);
  assert.ok(row.email_confirmed_at instanceof Date, 'auth.users.email_confirmed_at is set');
  assert.match(row.encrypted_password, /^\$2[aby]?\$\d\d\$/, 'encrypted_password is a bcrypt hash');
  assert.notEqual(row.encrypted_password, PASSWORD);
  assert.ok(!row.encrypted_password.includes(PASSWORD), 'the password is not stored in clear');
  assert.ok(row.last_sign_in_us, 'signup records a sign-in (last_sign_in_at)');

  const { session_id: sessionId, sub } = decodeJwt(session.access_token).payload;
  assert.equal(sub, data.user.id);
  assert.ok((await sessionIds(data.user.id)).includes(sessionId), 'auth.sessions has the session named by session_id');

  const { data: got } = await client.auth.getSession();
  assert.equal(got.session?.access_token, session.access_token, 'supabase-js stored the session');
});

test('signing up an existing email fails with user_already_exists (422)', async () => {
  const { email } = await newUser('dup');
  const { data, error } = await anonClient().auth.signUp({ email, password: PASSWORD });
  assert.ok(error, 'second signup fails');
  assert.equal(error.code, 'user_already_exists');
  assert.equal(error.status, 422);
  assert.equal(data.session, null);
  const { rows } = await db().query('select count(*)::int as n from auth.users where email = $1', [email]);
  assert.equal(rows[0].n, 1, 'still one auth.users row for the email');
});

test('a password shorter than 6 characters is rejected with weak_password (422)', async () => {
  const email = uniqueEmail('weak');
  const { data, error } = await anonClient().auth.signUp({ email, password: 'abc' });
  trackUser(data.user?.id);
  assert.ok(error, 'weak password is rejected');
  assert.equal(error.code, 'weak_password');
  assert.equal(error.status, 422);
  assert.equal(error.name, 'AuthWeakPasswordError');
  const { rows } = await db().query('select count(*)::int as n from auth.users where email = $1', [email]);
  assert.equal(rows[0].n, 0, 'no auth.users row was created');
});

test('signInWithPassword with a wrong password (or unknown email) fails with invalid_credentials (400)', async () => {
  const { email } = await newUser('wrongpw');
  const client = anonClient();

  const wrong = await client.auth.signInWithPassword({ email, password: 'not-the-password' });
  assert.ok(wrong.error, 'wrong password fails');
  assert.equal(wrong.error.code, 'invalid_credentials');
  assert.equal(wrong.error.status, 400);
  assert.equal(wrong.data.session, null);

  const unknown = await client.auth.signInWithPassword({ email: uniqueEmail('nobody'), password: PASSWORD });
  assert.ok(unknown.error, 'unknown email fails');
  assert.equal(unknown.error.code, 'invalid_credentials');
  assert.equal(unknown.error.status, 400);
});

test('signInWithPassword issues a session whose access token carries the GoTrue claims', async () => {
  const { id, email } = await newUser('signin');
  const before = await userRow(id);
  const sessionsBefore = await sessionIds(id);

  const client = anonClient();
  const { data, error } = await client.auth.signInWithPassword({ email, password: PASSWORD });
  assert.equal(error, null);
  assert.equal(data.user.id, id);
  assert.equal(data.user.email, email);
  assert.ok(data.session?.access_token, 'a session is returned');
  assert.ok(data.session.refresh_token);

  const { payload: claims } = decodeJwt(data.session.access_token);
  const now = Math.floor(Date.now() / 1000);
  assert.equal(claims.sub, id);
  assert.equal(claims.aud, 'authenticated');
  assert.equal(claims.role, 'authenticated');
  assert.equal(claims.email, email);
  assert.ok(claims.exp > now, `exp ${claims.exp} is in the future`);
  assert.ok(Math.abs(claims.exp - data.session.expires_at) <= 2, 'session.expires_at matches the exp claim');
  assert.match(claims.session_id, UUID);

  const sessionsAfter = await sessionIds(id);
  assert.ok(sessionsAfter.includes(claims.session_id), 'session_id names an auth.sessions row');
  assert.ok(!sessionsBefore.includes(claims.session_id), 'sign-in created a new session (not the signup one)');

  const after = await userRow(id);
  assert.ok(
    BigInt(after.last_sign_in_us) > BigInt(before.last_sign_in_us),
    `last_sign_in_at advanced (${before.last_sign_in_us} -> ${after.last_sign_in_us})`,
  );
});

test('getUser returns the signed-in user', async () => {
  const { client, id, email } = await newUser('getuser');
  const { data, error } = await client.auth.getUser();
  assert.equal(error, null);
  assert.equal(data.user.id, id);
  assert.equal(data.user.email, email);
  assert.equal(data.user.aud, 'authenticated');
});

test('refreshSession rotates both tokens and the old refresh token stops working', async () => {
  const { client, session: old } = await newUser('refresh');
  const oldClaims = decodeJwt(old.access_token).payload;
  // A JWT is only guaranteed to differ once iat (seconds) differs.
  await waitFor(() => Math.floor(Date.now() / 1000) > oldClaims.iat, 3000, 'the next second');

  const { data, error } = await client.auth.refreshSession();
  assert.equal(error, null);
  const fresh = data.session;
  assert.ok(fresh, 'refresh returns a session');
  assert.notEqual(fresh.access_token, old.access_token, 'new access token');
  assert.notEqual(fresh.refresh_token, old.refresh_token, 'new refresh token');
  const claims = decodeJwt(fresh.access_token).payload;
  assert.equal(claims.sub, oldClaims.sub);
  assert.equal(claims.session_id, oldClaims.session_id, 'refresh keeps the session');
  assert.ok(claims.exp >= oldClaims.exp);
  assert.equal(data.user.id, oldClaims.sub);

  // the new token works
  const me = await client.auth.getUser();
  assert.equal(me.error, null);
  assert.equal(me.data.user.id, oldClaims.sub);

  // the old refresh token was consumed (a separate client, so the test
  // client's own session is left alone)
  const reuse = await anonClient().auth.refreshSession({ refresh_token: old.refresh_token });
  assert.ok(reuse.error, 'the old refresh token is refused');
  assert.equal(reuse.error.status, 400);
  assert.ok(
    ['refresh_token_already_used', 'refresh_token_not_found'].includes(reuse.error.code),
    `error code ${reuse.error.code}`,
  );
  assert.equal(reuse.data.session, null);

  // the new refresh token still works
  const again = await anonClient().auth.refreshSession({ refresh_token: fresh.refresh_token });
  assert.equal(again.error, null);
  assert.ok(again.data.session?.access_token);
});

test('signOut deletes the session and the old access token is then refused (session_not_found, 403)', async () => {
  const { client, id, session } = await newUser('signout');
  const { session_id: sessionId } = decodeJwt(session.access_token).payload;
  assert.ok((await sessionIds(id)).includes(sessionId));

  const { error } = await client.auth.signOut();
  assert.equal(error, null);
  await waitFor(async () => !(await sessionIds(id)).includes(sessionId), 5000, 'the auth.sessions row to be deleted');

  const { data: local } = await client.auth.getSession();
  assert.equal(local.session, null, 'supabase-js forgot the session');

  // what the page's ghost-session check sees
  const { data, error: getUserError } = await anonClient().auth.getUser(session.access_token);
  assert.equal(data.user, null);
  assert.ok(isAuthSessionMissingError(getUserError), `expected AuthSessionMissingError, got ${getUserError?.name}`);

  // and on the wire
  const res = await getUserRaw(session.access_token);
  assert.equal(res.status, 403);
  assert.equal(await errorCode(res), 'session_not_found');
});

test("signOut({ scope: 'local' }) ends only the current session", async () => {
  const { id, email, session: signupSession } = await newUser('local');
  const other = decodeJwt(signupSession.access_token).payload.session_id;
  const client = anonClient();
  const { data, error } = await client.auth.signInWithPassword({ email, password: PASSWORD });
  assert.equal(error, null);
  const current = decodeJwt(data.session.access_token).payload.session_id;

  assert.equal((await client.auth.signOut({ scope: 'local' })).error, null);
  await waitFor(async () => !(await sessionIds(id)).includes(current), 5000, 'the current session row to be deleted');
  assert.ok((await sessionIds(id)).includes(other), 'the other session survives');
  const res = await getUserRaw(signupSession.access_token);
  assert.equal(res.status, 200, 'the other session still authenticates');
});

test("an admin-deleted user's access token is refused by getUser", async () => {
  const { id, session } = await newUser('deleted');
  const { error } = await serviceClient().auth.admin.deleteUser(id);
  assert.equal(error, null);

  assert.equal(await userRow(id), undefined, 'auth.users row is gone');
  assert.deepEqual(await sessionIds(id), [], 'its sessions are gone');

  const { data, error: getUserError } = await anonClient().auth.getUser(session.access_token);
  assert.equal(data.user, null);
  assert.ok(getUserError, 'getUser fails, so the page signs the ghost session out');

  const res = await getUserRaw(session.access_token);
  assert.equal(res.status, 403);
  const code = await errorCode(res);
  assert.ok(['session_not_found', 'user_not_found'].includes(code), `error code ${code}`);
});

test('requests without an apikey (or with an unknown one) are refused with 401', async () => {
  const { email, session } = await newUser('apikey');
  const bearer = { Authorization: `Bearer ${session.access_token}` };
  const json = { 'Content-Type': 'application/json' };
  const cases = [
    ['GET /auth/v1/user', '/auth/v1/user', { headers: bearer }],
    [
      'POST /auth/v1/token?grant_type=password',
      '/auth/v1/token?grant_type=password',
      { method: 'POST', headers: json, body: JSON.stringify({ email, password: PASSWORD }) },
    ],
    [
      'POST /auth/v1/signup',
      '/auth/v1/signup',
      { method: 'POST', headers: json, body: JSON.stringify({ email: uniqueEmail('nokey'), password: PASSWORD }) },
    ],
    ['GET /rest/v1/user_notifications', '/rest/v1/user_notifications?select=id&limit=1', { headers: bearer }],
  ];
  for (const [name, path, init] of cases) {
    const res = await rawFetch(path, init);
    assert.equal(res.status, 401, `${name} without apikey -> 401`);
    const bad = await rawFetch(path, { ...init, headers: { ...init.headers, apikey: 'not-a-key' } });
    assert.equal(bad.status, 401, `${name} with an unknown apikey -> 401`);
  }
  // the same request with the key is fine
  const ok = await getUserRaw(session.access_token);
  assert.equal(ok.status, 200);
});

test('admin listUsers is refused with the anon key and lists the user with the service-role key', async () => {
  const { id, email } = await newUser('admin');

  const denied = await anonClient().auth.admin.listUsers({ page: 1, perPage: 50 });
  assert.ok(denied.error, 'anon key cannot list users');
  assert.ok([401, 403].includes(denied.error.status), `status ${denied.error.status}`);
  assert.deepEqual(denied.data.users, []);

  const deleteDenied = await anonClient().auth.admin.deleteUser(id);
  assert.ok(deleteDenied.error, 'anon key cannot delete users');
  assert.ok([401, 403].includes(deleteDenied.error.status), `status ${deleteDenied.error.status}`);
  assert.ok(await userRow(id), 'the user still exists');

  const perPage = 1000;
  let found;
  for (let page = 1; page <= 100 && !found; page++) {
    const { data, error } = await serviceClient().auth.admin.listUsers({ page, perPage });
    assert.equal(error, null);
    assert.ok(Array.isArray(data.users));
    found = data.users.find((u) => u.id === id);
    if (data.users.length < perPage) break;
  }
  assert.ok(found, 'the service-role key lists the new user');
  assert.equal(found.email, email);
});
