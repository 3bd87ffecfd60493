// Realtime postgres_changes through supabase-js: per-subscriber RLS, column
// typing, server-side filters, leaving a channel, and dropping to the anon
// key (sign-out / setAuth).
//
// "Never receives" is checked on the raw frames the socket received, bounded
// by a sentinel row inserted afterwards: changes are decoded in commit order,
// so once the sentinel has arrived on a socket, an earlier row that was going
// to reach that socket has arrived too. Where the sentinel has to go to a
// different socket, a short settle delay follows it (SETTLE_MS).

import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import {
  ANON_KEY,
  cleanup,
  db,
  eventIds,
  insertNotification,
  newUser,
  notificationVisibleTo,
  randomTag,
  receivedChangeRecords,
  sleep,
  subscribeInserts,
  waitFor,
} from './helpers.mjs';

after(cleanup);

const DELIVERY_MS = 10_000; // a change reaches a subscriber within this
const SETTLE_MS = 500; // cross-socket grace after a sentinel arrived elsewhere
const ISO_TIMESTAMP = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d(:?\d\d)?)$/;

function received(sub, row) {
  return eventIds(sub.events).includes(Number(row.id));
}

function waitReceived(sub, row, who) {
  return waitFor(() => received(sub, row), DELIVERY_MS, `${who} to receive row ${row.id} (${row.event_type})`);
}

function taggedIds(sub, tag) {
  return eventIds(sub.events.filter((e) => typeof e.new?.payload === 'string' && e.new.payload.includes(tag)));
}

function socketSawRow(client, row, topic) {
  return receivedChangeRecords(client, topic).some((r) => Number(r.record.id) === Number(row.id));
}

test("each subscriber receives its own INSERTs, typed, and never another user's private rows", async () => {
  const [a, b] = await Promise.all([newUser('rt-a'), newUser('rt-b')]);
  const [subA, subB] = await Promise.all([subscribeInserts(a.client), subscribeInserts(b.client)]);
  const tag = randomTag();
  const row = (user, n) =>
    insertNotification({
      userId: user.id,
      eventType: 'test.rt_private',
      payload: { tag, n, nested: { ok: true } },
      eventTime: '2026-12-01T10:00:00.123Z',
    });

  const a1 = await row(a, 'a1');
  const b1 = await row(b, 'b1');
  const aSentinel = await row(a, 'a-sentinel');
  const bSentinel = await row(b, 'b-sentinel');
  await Promise.all([waitReceived(subA, aSentinel, 'A'), waitReceived(subB, bSentinel, 'B')]);

  assert.deepEqual(taggedIds(subA, tag), [Number(a1.id), Number(aSentinel.id)], 'A gets exactly its rows, once, in order');
  assert.deepEqual(taggedIds(subB, tag), [Number(b1.id), Number(bSentinel.id)], 'B gets exactly its rows, once, in order');
  for (const [client, foreign] of [
    [a.client, [b1, bSentinel]],
    [b.client, [a1, aSentinel]],
  ]) {
    for (const r of foreign) assert.ok(!socketSawRow(client, r), `row ${r.id} of another user reached the socket`);
  }
  // whatever else arrives (pipeline rows, broadcast messages) obeys the policy
  for (const [sub, user] of [
    [subA, a],
    [subB, b],
  ]) {
    for (const e of sub.events) assert.ok(notificationVisibleTo(e.new, user.id), `not visible to ${user.id}: ${JSON.stringify(e.new)}`);
  }

  // the payload supabase-js hands to the page
  const event = subA.events.find((e) => e.new.id === Number(a1.id));
  assert.equal(event.schema, 'public');
  assert.equal(event.table, 'user_notifications');
  assert.equal(event.eventType, 'INSERT');
  assert.ok(!Number.isNaN(Date.parse(event.commit_timestamp)), `commit_timestamp ${event.commit_timestamp}`);
  assert.ok(event.errors == null || (Array.isArray(event.errors) && event.errors.length === 0), `errors ${event.errors}`);
  assert.deepEqual(event.old, {});

  const { rows: columns } = await db().query(
    `select column_name from information_schema.columns
      where table_schema = 'public' and table_name = 'user_notifications'`,
  );
  const n = event.new;
  assert.deepEqual(Object.keys(n).sort(), columns.map((c) => c.column_name).sort(), 'the whole row (replica identity full)');
  assert.equal(n.id, Number(a1.id), 'int8 id converted to a number');
  assert.equal(n.user_id, a.id);
  assert.equal(n.event_type, 'test.rt_private');
  assert.equal(n.payload, a1.payload, 'payload is a text column: stays a string');
  assert.deepEqual(JSON.parse(n.payload), { tag, n: 'a1', nested: { ok: true } });
  assert.equal(n.event_time, '2026-12-01T10:00:00.123Z', 'text passed through verbatim');
  assert.equal(n.visibility, 'broadcast');
  assert.equal(n.recipient_id, null);
  assert.equal(n.idempotency_key, null);
  assert.equal(typeof n.created_at, 'string');
  assert.match(n.created_at, ISO_TIMESTAMP);
  assert.equal(Date.parse(n.created_at), a1.created_at.getTime(), 'created_at is the stored instant');

  // column types as sent on the wire (supabase-js converts by these)
  const frame = receivedChangeRecords(a.client, subA.topic).find((r) => Number(r.record.id) === Number(a1.id));
  const typeOf = (name) => frame.data.columns.find((c) => c.name === name)?.type;
  assert.equal(typeOf('id'), 'int8');
  assert.equal(typeOf('user_id'), 'text');
  assert.equal(typeOf('payload'), 'text');
  assert.equal(typeOf('created_at'), 'timestamptz');
});

test("a filter 'event_type=eq.user.message' only delivers matching rows", async () => {
  const a = await newUser('rt-filter');
  const sub = await subscribeInserts(a.client, { filter: 'event_type=eq.user.message' });
  const tag = randomTag();

  const other = await insertNotification({ userId: a.id, eventType: 'test.rt_private', payload: { tag } });
  // direct to its own owner, so no other subscriber sees it
  const message = await insertNotification({
    userId: a.id,
    eventType: 'user.message',
    payload: { tag, email: a.email, message: 'hi' },
    visibility: 'direct',
    recipientId: a.id,
  });
  await waitReceived(sub, message, 'the filtered channel');

  assert.deepEqual(taggedIds(sub, tag), [Number(message.id)]);
  assert.ok(!socketSawRow(a.client, other), 'the non-matching row never reached the socket');
  for (const e of sub.events) assert.equal(e.new.event_type, 'user.message');
  const event = sub.events.find((e) => e.new.id === Number(message.id));
  assert.equal(event.new.visibility, 'direct');
  assert.equal(event.new.recipient_id, a.id);
});

test('removeChannel leaves the channel (CLOSED, ok) and nothing more arrives on it', async () => {
  const a = await newUser('rt-remove');
  const main = await subscribeInserts(a.client);
  const keep = await subscribeInserts(a.client, { name: 'user-events-keep' });

  const first = await insertNotification({ userId: a.id, eventType: 'test.rt_private', payload: { n: 1 } });
  await Promise.all([waitReceived(main, first, 'the channel'), waitReceived(keep, first, 'the second channel')]);

  const status = await a.client.removeChannel(main.channel);
  assert.equal(status, 'ok', 'phx_leave answered ok');
  await waitFor(() => main.statuses.includes('CLOSED'), 5000, 'status CLOSED');
  assert.ok(!a.client.getChannels().includes(main.channel), 'the channel is gone from the client');

  const second = await insertNotification({ userId: a.id, eventType: 'test.rt_private', payload: { n: 2 } });
  const third = await insertNotification({ userId: a.id, eventType: 'test.rt_private', payload: { n: 3 } });
  await waitReceived(keep, third, 'the remaining channel');
  assert.ok(received(keep, second));
  for (const r of [second, third]) {
    assert.ok(!socketSawRow(a.client, r, main.topic), `row ${r.id} was still sent to the left topic`);
    assert.ok(!received(main, r));
  }
});

for (const variant of ['signOut()', 'realtime.setAuth(anon key)']) {
  test(`after ${variant} the socket receives no private rows`, async () => {
    const [a, observer] = await Promise.all([newUser('rt-anon'), newUser('rt-observer')]);
    const [subA, subObserver] = await Promise.all([subscribeInserts(a.client), subscribeInserts(observer.client)]);
    const tag = randomTag();

    const before = await insertNotification({ userId: a.id, eventType: 'test.rt_private', payload: { tag, n: 'before' } });
    await waitReceived(subA, before, 'A (signed in)');

    if (variant === 'signOut()') {
      assert.equal((await a.client.auth.signOut()).error, null);
    } else {
      await a.client.realtime.setAuth(ANON_KEY);
    }
    // supabase-js pushes access_token (the anon key) to the joined channel
    await waitFor(() => a.client.realtime.accessTokenValue === ANON_KEY, 5000, 'the socket to switch to the anon key');
    // Barrier: a join sent after that push is answered after the push was handled.
    const barrier = a.client
      .channel('user-events-barrier')
      .on('postgres_changes', { event: 'INSERT', schema: 'public', table: 'user_notifications' }, () => {});
    const barrierStatus = await new Promise((resolve) => barrier.subscribe((s) => s !== 'CLOSED' && resolve(s)));
    assert.ok(['SUBSCRIBED', 'CHANNEL_ERROR'].includes(barrierStatus), `barrier join: ${barrierStatus}`);

    const hidden = await insertNotification({ userId: a.id, eventType: 'test.rt_private', payload: { tag, n: 'after' } });
    const sentinel = await insertNotification({ userId: observer.id, eventType: 'test.rt_private', payload: { tag, n: 'sentinel' } });
    await waitReceived(subObserver, sentinel, 'the observer');
    await sleep(SETTLE_MS);

    assert.ok(!socketSawRow(a.client, hidden), "A's private row reached the socket after it dropped to the anon key");
    assert.deepEqual(taggedIds(subA, tag), [Number(before.id)]);
    assert.ok(!socketSawRow(observer.client, hidden), "the observer never sees A's private row");
  });
}
