// The session store from Node.js with node-redis (the `redis` npm package).
//
// One visitor's session: page views, reading fields, "have they seen it?", enrichment with
// attributes from other services, content they have not seen yet, and a group notification.
//
//   REDIS_URL=redis://127.0.0.1:6379 node session_demo.mjs
//
// Every reply is checked with node:assert: any unexpected reply throws and the process exits
// non-zero. REDIS_PROTOCOL=2|3 picks the protocol (default 3: the module's maps arrive as plain
// objects; with 2 they arrive as flat name/value arrays, which asMap turns into objects).

import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { createClient } from 'redis';

const url = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
const RESP = Number(process.env.REDIS_PROTOCOL ?? '3');

// A module map reply as an object, whatever the protocol. RESP3: node-redis already gives a
// plain object. RESP2: a flat [name, value, name, value, ...] array.
function asMap(reply) {
  if (!Array.isArray(reply)) return reply;
  const map = {};
  for (let i = 0; i < reply.length; i += 2) map[reply[i]] = reply[i + 1];
  return map;
}

// A demo should fail fast when the server is unreachable: no reconnection attempts.
const client = createClient({ url, RESP, socket: { reconnectStrategy: false } });
client.on('error', (err) => console.error('redis client error:', err.message));
await client.connect();
// Module commands go through sendCommand; arguments must be strings (or Buffers).
const cmd = (...args) => client.sendCommand(args.map(String));

// Unique names per run, so the demo can run against a shared server, any number of times.
const run = randomBytes(4).toString('hex');
const key = `demo:node:${run}:sess`; // in an application: the session id from the cookie
const catalog = `demo:node:${run}:articles`;
const group = `demo:node:${run}:beta`;
console.log(`node-redis, RESP${RESP}, session ${key}`);

try {
  // --- Page views: ONE command per request creates/refreshes the session, writes fields,
  // records what was viewed (and its categories) and slides the idle expiry.
  const views = [
    { item: 'article:1', cats: ['hockey', 'sports'], events: 1, unique: 1, seenBefore: 0 },
    { item: 'article:5', cats: ['hockey'], events: 2, unique: 2, seenBefore: 0 },
    { item: 'article:5', cats: ['hockey'], events: 3, unique: 2, seenBefore: 1 }, // a re-read
  ];
  for (const [i, v] of views.entries()) {
    const args = ['SESSION.TOUCH', key];
    if (i === 0) {
      // The login page: lifetime, principal and some session data.
      args.push('IDLE', 1800, 'USER', 'alice', 'SET', 2, 'theme', 'dark', 'cart', 3);
    }
    args.push('EVENT', v.item, 'CATEGORIES', v.cats.length, ...v.cats);
    const page = asMap(await cmd(...args));
    console.log(`TOUCH ${v.item}:`, JSON.stringify(page));
    assert.equal(page.new, i === 0 ? 1 : 0);
    assert.equal(page.events, v.events);
    assert.equal(page.unique, v.unique); // a HyperLogLog estimate, exact this small
    assert.equal(page.seen_before, v.seenBefore);
    assert.ok(page.ttl_ms > 0 && page.ttl_ms <= 1_800_000, 'ttl slides to the idle timeout');
    assert.equal(page.pending, 0);
  }

  // --- Read fields (no TTL renewal): all of them as a map, or named ones as an array.
  const fields = asMap(await cmd('SESSION.GET', key));
  console.log('GET:', JSON.stringify(fields));
  assert.deepEqual(fields, { theme: 'dark', cart: '3' });
  const some = await cmd('SESSION.GET', key, 'theme', 'missing');
  console.log('GET theme missing:', some);
  assert.deepEqual(some, ['dark', null]);

  // --- Has the user seen these? 0 is certain (Bloom filter, no false negatives).
  const seen = await cmd('SESSION.SEEN', key, 'article:1', 'article:2');
  console.log('SEEN article:1 article:2:', seen);
  assert.deepEqual(seen, [1, 0]);

  // --- Enrich: merge attributes from other services (JSON merge patch), join a group, and
  // get the calculated data back as one JSON document.
  const attrs = { churn_risk: 0.12, geo: { country: 'SE' } };
  const doc = JSON.parse(
    await cmd('SESSION.ENRICH', key, 'ATTRS', JSON.stringify(attrs), 'JOIN', 1, group),
  );
  console.log(`ENRICH: interests=${JSON.stringify(doc.interests)} segments=${JSON.stringify(doc.segments)}`);
  assert.equal(doc.events, 3);
  assert.equal(doc.unique_items, 2);
  assert.equal(doc.interests[0].category, 'hockey'); // strongest first
  const total = doc.interests.reduce((sum, i) => sum + i.weight, 0);
  assert.ok(Math.abs(total - 1) < 1e-6, 'weights sum to 1');
  assert.ok(doc.segments.includes('interest:hockey'));
  assert.ok(doc.engagement >= 0 && doc.engagement <= 1);
  assert.deepEqual(doc.attrs, attrs);
  assert.deepEqual(doc.groups, [group]);

  // --- A catalog of content (module-global, not a key) and what to show this user next.
  const items = [
    ['article:1', 5, ['hockey', 'sports']], // seen: never surfaced
    ['article:2', 3, ['hockey']],
    ['article:3', 4, ['golf']],
    ['article:4', 1, ['cooking']],
    ['article:5', 2, ['hockey']], // seen: never surfaced
  ];
  for (const [item, score, cats] of items) {
    const added = await cmd('SESSION.CATALOG', 'ADD', catalog, item,
      'SCORE', score, 'CATEGORIES', cats.length, ...cats, 'TTL', 3600);
    assert.equal(added, 1); // 1: a new item
  }
  const info = asMap(await cmd('SESSION.CATALOG', 'INFO', catalog));
  console.log('CATALOG INFO:', JSON.stringify(info));
  assert.equal(info.items, 5);
  assert.equal(info.categories, 4);

  // WITHSCORES: item and score alternate (a number in RESP3, a string in RESP2).
  const flat = await cmd('SESSION.SURFACE', key, 'FROM', catalog, 'COUNT', 3, 'WITHSCORES');
  const picks = [];
  for (let i = 0; i < flat.length; i += 2) picks.push([flat[i], Number(flat[i + 1])]);
  console.log('SURFACE:', JSON.stringify(picks));
  // article:2 wins: unseen, and in the user's strongest interest.
  assert.deepEqual(picks.map(([item]) => item), ['article:2', 'article:3', 'article:4']);
  assert.ok(picks[0][1] > picks[1][1] && picks[1][1] > picks[2][1], 'scores descending');

  // --- One notification to a whole group: O(1), idempotent by id.
  assert.equal(await cmd('SESSION.NOTIFYGROUP', group, 'promo-1', '50% off', 'TTL', 300), 1);
  assert.equal(await cmd('SESSION.NOTIFYGROUP', group, 'promo-1', '50% off', 'TTL', 300), 0);
  const next = asMap(await cmd('SESSION.TOUCH', key)); // the next request sees it is pending
  assert.equal(next.pending, 1);
  const inbox = (await cmd('SESSION.INBOX', key)).map(asMap);
  console.log('INBOX:', JSON.stringify(inbox));
  assert.equal(inbox.length, 1);
  const { published_ms: publishedMs, ...note } = inbox[0];
  assert.deepEqual(note, { group, id: 'promo-1', payload: '50% off' });
  assert.ok(publishedMs > 0);
  assert.deepEqual(await cmd('SESSION.INBOX', key), []); // delivered exactly once
} finally {
  // Tidy up the shared server (the group's notification expires on its own).
  await client.del(key);
  await cmd('SESSION.CATALOG', 'DROP', catalog);
  await client.close();
}

console.log('node example: all replies as expected');
