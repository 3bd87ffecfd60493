// PostgREST read subset through supabase-js: row level security per caller,
// eq / order / limit, the balance view, maybeSingle / single, error shapes.
//
// Rows are inserted with pg as the superuser (as the backend writers do).
// Other writers (the running pipeline, other test files) may add rows for the
// same users or broadcast messages at any time, so assertions name the rows
// this test inserted (by a random tag) or check the RLS rule on every row.

import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import {
  anonClient,
  cleanup,
  db,
  insertCredit,
  insertMediaFile,
  insertNotification,
  newUser,
  notificationVisibleTo,
  randomTag,
  waitFor,
} from './helpers.mjs';

after(cleanup);

// The page's history query (spec: fetchHistory).
function history(client) {
  return client
    .from('user_notifications')
    .select('event_type, payload, event_time')
    .order('created_at', { ascending: false })
    .limit(20);
}

function tagsOf(rows) {
  return rows.map((r) => {
    try {
      return JSON.parse(r.payload).tag;
    } catch {
      return undefined;
    }
  });
}

function assertPostgrestError(error, label) {
  assert.ok(error, `${label}: an error is returned`);
  for (const key of ['code', 'message', 'details', 'hint']) {
    assert.ok(key in error, `${label}: error has "${key}" (PostgREST shape): ${JSON.stringify(error)}`);
  }
  assert.equal(typeof error.code, 'string');
  assert.ok(error.code.length > 0, `${label}: error.code is not empty`);
  assert.equal(typeof error.message, 'string');
}

test('each user reads only the user_notifications rows the RLS policy allows', async () => {
  const [a, b] = await Promise.all([newUser('rest-a'), newUser('rest-b')]);
  const tag = randomTag();
  const t = (name) => ({ tag: `${tag}-${name}` });
  const other = crypto.randomUUID();

  await insertNotification({ userId: a.id, eventType: 'test.private', payload: t('a1') });
  const aSecond = await insertNotification({ userId: a.id, eventType: 'test.private', payload: t('a2') });
  await insertNotification({ userId: b.id, eventType: 'test.private', payload: t('b1') });
  // user.message: broadcast is visible to every signed-in user; direct to owner and recipient
  await insertNotification({
    userId: b.id,
    eventType: 'user.message',
    payload: { ...t('b-broadcast'), email: b.email, message: 'hello all' },
    visibility: 'broadcast',
  });
  await insertNotification({
    userId: b.id,
    eventType: 'user.message',
    payload: { ...t('b-to-a'), email: b.email, message: 'hello a' },
    visibility: 'direct',
    recipientId: a.id,
  });
  await insertNotification({
    userId: b.id,
    eventType: 'user.message',
    payload: { ...t('b-to-other'), email: b.email, message: 'hello other' },
    visibility: 'direct',
    recipientId: other,
  });
  // a non-message row flagged broadcast stays owner-only
  await insertNotification({
    userId: b.id,
    eventType: 'test.private',
    payload: t('b-flagged'),
    visibility: 'broadcast',
  });

  const asA = await history(a.client);
  assert.equal(asA.error, null);
  assert.equal(asA.status, 200);
  for (const row of asA.data) {
    assert.deepEqual(Object.keys(row).sort(), ['event_time', 'event_type', 'payload'], 'select= picks the columns');
    assert.equal(typeof row.payload, 'string', 'payload is text, returned as a JSON string');
  }
  const aTags = tagsOf(asA.data).filter((x) => x?.startsWith(tag));
  const want = (names) => names.map((n) => `${tag}-${n}`).sort();
  assert.deepEqual(aTags.slice().sort(), want(['a1', 'a2', 'b-broadcast', 'b-to-a']), 'A sees its rows and the messages meant for it');
  assert.ok(aTags.indexOf(`${tag}-a2`) < aTags.indexOf(`${tag}-a1`), 'newest first');
  const a2 = asA.data.find((r) => tagsOf([r])[0] === `${tag}-a2`);
  assert.equal(a2.event_type, 'test.private');
  assert.equal(a2.event_time, aSecond.event_time, 'event_time is passed through verbatim');

  const asB = await history(b.client);
  assert.equal(asB.error, null);
  const bTags = tagsOf(asB.data).filter((x) => x?.startsWith(tag));
  assert.deepEqual(bTags.slice().sort(), want(['b-broadcast', 'b-flagged', 'b-to-a', 'b-to-other', 'b1']), 'B sees its own rows only');

  // every row either user gets satisfies the policy (whoever else is writing)
  for (const u of [a, b]) {
    const { data, error } = await u.client
      .from('user_notifications')
      .select('id, user_id, event_type, visibility, recipient_id')
      .order('created_at', { ascending: false })
      .limit(500);
    assert.equal(error, null);
    for (const row of data) {
      assert.ok(notificationVisibleTo(row, u.id), `row ${JSON.stringify(row)} is not visible to ${u.id} under RLS`);
    }
    assert.equal(typeof data.find((r) => r.user_id === u.id)?.id, 'number', 'bigint id is a JSON number');
  }

  // filtering on someone else's id gives nothing private
  const aOnB = await a.client.from('user_notifications').select('event_type, payload').eq('user_id', b.id);
  assert.equal(aOnB.error, null);
  assert.ok(aOnB.data.every((r) => r.event_type === 'user.message'), 'A sees no private row of B');
});

test('eq, order and limit select, sort and cap the rows', async () => {
  const a = await newUser('rest-order');
  const eventType = `test.order.${randomTag()}`;
  // explicit, distinct created_at an hour ago, so the rows sit below anything live
  const base = Math.floor(Date.now() / 1000) * 1000 - 3_600_000;
  const inserted = [];
  for (const i of [1, 2, 3]) {
    inserted.push(
      await insertNotification({
        userId: a.id,
        eventType,
        payload: { seq: i },
        createdAt: new Date(base + i * 1000).toISOString(),
      }),
    );
  }
  await insertNotification({ userId: a.id, eventType: `${eventType}.other`, payload: { seq: 99 } });

  const seqs = (rows) => rows.map((r) => JSON.parse(r.payload).seq);

  const desc = await a.client
    .from('user_notifications')
    .select('payload, created_at')
    .eq('event_type', eventType)
    .order('created_at', { ascending: false })
    .limit(2);
  assert.equal(desc.error, null);
  assert.deepEqual(seqs(desc.data), [3, 2], 'desc + limit 2');
  assert.equal(Date.parse(desc.data[0].created_at), base + 3000, 'timestamptz comes back as an ISO string');
  assert.match(desc.data[0].created_at, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d(:?\d\d)?)$/);

  const asc = await a.client
    .from('user_notifications')
    .select('payload')
    .eq('event_type', eventType)
    .eq('user_id', a.id)
    .order('created_at', { ascending: true })
    .limit(20);
  assert.equal(asc.error, null);
  assert.deepEqual(seqs(asc.data), [1, 2, 3], 'asc, two eq filters combined');

  const byId = await a.client.from('user_notifications').select('id, payload').eq('id', inserted[1].id);
  assert.equal(byId.error, null);
  assert.deepEqual(byId.data, [{ id: Number(inserted[1].id), payload: inserted[1].payload }], 'eq on a bigint column');

  const none = await a.client.from('user_notifications').select('id').eq('event_type', `${eventType}.missing`);
  assert.equal(none.error, null);
  assert.deepEqual(none.data, []);
});

test('user_credit_balances gives a user their own balance only', async () => {
  const [a, b] = await Promise.all([newUser('bal-a'), newUser('bal-b')]);
  await insertCredit(a.id, 5);
  await insertCredit(a.id, -2, 'credit.test_deducted');

  // the pipeline may add a signup bonus meanwhile: compare with the ledger's sum
  const sumFor = async (id) =>
    Number((await db().query('select coalesce(sum(amount), 0) as s from public.credit_ledger where user_id = $1', [id])).rows[0].s);
  let last;
  await waitFor(
    async () => {
      last = await a.client.from('user_credit_balances').select('balance').eq('user_id', a.id).maybeSingle();
      return last.error === null && last.data !== null && last.data.balance === (await sumFor(a.id));
    },
    5000,
    () => `A's balance to equal the ledger sum (last: ${JSON.stringify(last)})`,
  );
  assert.deepEqual(Object.keys(last.data), ['balance']);
  assert.equal(typeof last.data.balance, 'number', 'bigint sum is a JSON number');
  assert.ok(last.data.balance >= 3);

  const bOnA = await b.client.from('user_credit_balances').select('balance').eq('user_id', a.id).maybeSingle();
  assert.equal(bOnA.error, null);
  assert.equal(bOnA.data, null, "B cannot see A's balance (security_invoker view)");

  const all = await a.client.from('user_credit_balances').select('user_id, balance');
  assert.equal(all.error, null);
  assert.ok(all.data.every((r) => r.user_id === a.id), 'without a filter A still gets only its own row');

  const ledger = await b.client.from('credit_ledger').select('amount').eq('user_id', a.id);
  assert.equal(ledger.error, null);
  assert.deepEqual(ledger.data, [], "B cannot read A's ledger rows");
});

test('media_files: owners list their active files only', async () => {
  const [a, b] = await Promise.all([newUser('media-a'), newUser('media-b')]);
  const tag = randomTag();
  await insertMediaFile(a.id, { fileName: `${tag}-active.png`, fileSize: 4_000_000_000 });
  await insertMediaFile(a.id, { fileName: `${tag}-gone.png`, status: 'deleted' });

  const mine = await a.client.from('media_files').select('file_name, file_size, status').eq('user_id', a.id);
  assert.equal(mine.error, null);
  assert.deepEqual(mine.data, [{ file_name: `${tag}-active.png`, file_size: 4_000_000_000, status: 'active' }]);

  const theirs = await b.client.from('media_files').select('file_name').eq('user_id', a.id);
  assert.equal(theirs.error, null);
  assert.deepEqual(theirs.data, []);
});

test('a client that is not signed in reads no private rows', async () => {
  const a = await newUser('rest-anon');
  await insertNotification({ userId: a.id, eventType: 'test.private', payload: { tag: randomTag() } });
  await insertCredit(a.id, 1);
  await insertMediaFile(a.id, { fileName: 'anon.png' });

  const anon = anonClient();
  for (const [table, columns] of [
    ['user_notifications', 'user_id, payload'],
    ['user_credit_balances', 'user_id, balance'],
    ['credit_ledger', 'user_id, amount'],
    ['media_files', 'user_id, file_name'],
  ]) {
    const { data, error } = await anon.from(table).select(columns).eq('user_id', a.id);
    // PostgREST: the anon role has no grant on these tables -> 401 42501
    if (error) assert.equal(error.code, '42501', `${table}: ${JSON.stringify(error)}`);
    assert.ok(data === null || data.length === 0, `${table}: anon got rows ${JSON.stringify(data)}`);
  }
});

test('errors keep the PostgREST shape: unknown table, unknown column, single() on two rows', async () => {
  const a = await newUser('rest-err');
  const eventType = `test.single.${randomTag()}`;
  await insertNotification({ userId: a.id, eventType, payload: { n: 1 } });
  await insertNotification({ userId: a.id, eventType, payload: { n: 2 } });

  const table = await a.client.from('no_such_table').select('*');
  assertPostgrestError(table.error, 'unknown table');
  assert.equal(table.status, 404);
  assert.ok(['PGRST205', '42P01'].includes(table.error.code), `unknown table code ${table.error.code}`);
  assert.equal(table.data, null);

  const column = await a.client.from('user_notifications').select('no_such_column');
  assertPostgrestError(column.error, 'unknown column in select');
  assert.equal(column.status, 400);
  assert.equal(column.error.code, '42703');

  const filter = await a.client.from('user_notifications').select('id').eq('no_such_column', 'x');
  assertPostgrestError(filter.error, 'unknown column in a filter');
  assert.equal(filter.status, 400);
  assert.equal(filter.error.code, '42703');

  const two = await a.client.from('user_notifications').select('id').eq('event_type', eventType).single();
  assertPostgrestError(two.error, 'single() on two rows');
  assert.equal(two.error.code, 'PGRST116');
  assert.equal(two.status, 406);
  assert.equal(two.data, null);

  const one = await a.client
    .from('user_notifications')
    .select('payload')
    .eq('event_type', eventType)
    .order('created_at', { ascending: true })
    .limit(1)
    .single();
  assert.equal(one.error, null);
  assert.deepEqual(one.data, { payload: JSON.stringify({ n: 1 }) }, 'single() on one row gives an object');

  const zero = await a.client.from('user_notifications').select('id').eq('event_type', `${eventType}.none`).maybeSingle();
  assert.equal(zero.error, null);
  assert.equal(zero.data, null, 'maybeSingle() on no rows gives null');
});
