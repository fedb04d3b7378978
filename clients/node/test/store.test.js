'use strict'
// SessionStore against a live server, on every client of the matrix: what connect-redis's README
// documents (options, TTL rules, touch, enumeration, serializer), plus the module's additions
// (absoluteTtl, legacy upgrade, large and binary sessions), and the helpers of issue 21
// (trending, stats, surfaceRo, inbox unread + ack, groups).

const { test, describe, before, after } = require('node:test')
const assert = require('node:assert/strict')
const v8 = require('node:v8')
const { start } = require('./server')
const { clients } = require('./clients')
const { SessionStore, Intelligence, SESSION_TYPE, mergeTrending, mergeStats, trendingPerNodeCount } = require('..')

let server
before(async () => { server = await start() })
after(async () => { await server.stop() })

const cookie = (ms) => ({ cookie: { originalMaxAge: ms, expires: new Date(Date.now() + ms).toISOString(), httpOnly: true, path: '/' } })
const num = (v) => Number(v)

for (const kind of clients) {
  describe(kind.name, () => {
    let c
    let raw
    before(async () => {
      const conn = await kind.connect(server.url)
      c = conn
      raw = conn.raw
    })
    after(async () => { await raw(['FLUSHALL']); await c.close() })

    const store = (opts = {}) => new SessionStore({ client: c.client, ...opts })

    test('trending and stats: the server reply as plain values (no merge on one server)', async () => {
      const s = store()
      const tag = kind.name.replace(/\W/g, '')
      const cat = `${tag}:cat`
      const [hot, warm] = [`${tag}:hot`, `${tag}:warm`]
      await raw(['SESSION.CATALOG', 'ADD', cat, hot, 'SCORE', '1', 'CATEGORIES', '1', 'news'])
      await raw(['SESSION.CATALOG', 'ADD', cat, warm, 'SCORE', '1', 'CATEGORIES', '1', 'golf'])
      const now = Date.now()
      const before = await s.stats({ at: now })
      for (let i = 0; i < 3; i++) await raw(['SESSION.TOUCH', `sess:${tag}${i}`, 'EVENT', hot, 'AT', String(now)])
      await raw(['SESSION.TOUCH', `sess:${tag}0`, 'EVENT', warm, 'AT', String(now)])
      assert.deepEqual(await s.trending(cat, { at: now }), [hot, warm])
      assert.deepEqual(await s.trending(cat, { count: 1 }), [hot])
      assert.deepEqual(await s.trending(cat, { category: 'golf', at: now }), [warm])
      assert.deepEqual(await s.trending(cat, { category: 'nope' }), [])
      const scored = await s.trending(cat, { withScores: true, at: now })
      assert.deepEqual(scored.map((x) => x.item), [hot, warm])
      assert.ok(Math.abs(scored[0].score - 3) < 1e-6 && Math.abs(scored[1].score - 1) < 1e-6, JSON.stringify(scored))
      const after = await s.stats({ at: now })
      assert.equal(after.events, before.events + 4)
      assert.equal(after.views_per_minute.length, 60)
      assert.equal(after.views_per_minute[59], before.views_per_minute[59] + 4)
      assert.ok(after.active >= 3, `active ${after.active}`)
      assert.equal(after.active_window_minutes, 5)
      assert.equal(after.trend_top_k, 1000)
      assert.equal(after.trend_half_life, 600)
      assert.ok(after.trending_tracked >= 2)
      assert.deepEqual(after.nodes, {})
      await assert.rejects(s.trending(`${tag}:none`), /no such catalog/)
    })

    test('surfaceRo records nothing; surface takes boostTrending', async () => {
      const s = store()
      const tag = kind.name.replace(/\W/g, '') + 'ro'
      const cat = `${tag}:cat`
      await raw(['SESSION.CATALOG', 'ADD', cat, 'a', 'SCORE', '2'])
      await raw(['SESSION.CATALOG', 'ADD', cat, 'b', 'SCORE', '1'])
      await raw(['SESSION.TOUCH', `sess:${tag}`, 'EVENT', 'other'])
      const i = new Intelligence(s, { sessionID: tag }, {})
      for (let n = 0; n < 3; n++) assert.deepEqual(await i.surfaceRo(cat, { maxImpressions: 1 }), ['a', 'b'])
      const picks = await i.surfaceRo(cat, { withScores: true, boostTrending: 1, nomark: true })
      assert.deepEqual(picks.map((x) => x.item).sort(), ['a', 'b'])
      assert.ok(picks.every((x) => typeof x.score === 'number'))
      assert.deepEqual(await i.surface(cat, { count: 1 }), ['a']) // marks a
      assert.deepEqual(await i.surfaceRo(cat, { maxImpressions: 1 }), ['b'])
      assert.deepEqual(await i.surface(cat, { boostTrending: 0.5, maxImpressions: 1, nomark: true }), ['b'])
    })

    test('read state: inbox unread (with delivered) and ack; groups list/info/drop', async () => {
      const s = store()
      const tag = kind.name.replace(/\W/g, '') + 'rs'
      const group = `${tag}:g`
      await raw(['SESSION.TOUCH', `sess:${tag}`])
      const i = new Intelligence(s, { sessionID: tag }, {})
      await i.enrich({ join: [group] })
      for (const n of ['n1', 'n2', 'n3']) await raw(['SESSION.NOTIFYGROUP', group, n, `p-${n}`])
      const flags = async () => (await i.inbox({ unread: true })).map((x) => [x.id, x.delivered])
      assert.deepEqual(await flags(), [['n1', false], ['n2', false], ['n3', false]])
      assert.deepEqual((await i.inbox({ count: 2 })).map((x) => x.id), ['n1', 'n2'])
      assert.deepEqual(await flags(), [['n1', true], ['n2', true], ['n3', false]])
      assert.equal(await i.ack(group, { upto: 'n3' }), 2, 'up to the last delivered one')
      assert.deepEqual(await flags(), [['n3', false]])
      assert.equal(await i.ack(group, { ids: ['n3'] }), 0, 'not delivered yet: ignored')
      const [n3] = await i.inbox()
      assert.equal(n3.id, 'n3')
      assert.equal(n3.payload, 'p-n3')
      assert.equal('delivered' in n3, false, 'INBOX itself sends no flag')
      assert.equal(await i.ack(group, { ids: ['n3', 'nope'] }), 1)
      assert.deepEqual(await i.inbox({ unread: true }), [])
      await assert.rejects(i.ack(group, {}), TypeError)
      await assert.rejects(i.ack(group, { upto: 'n1', ids: ['n1'] }), TypeError)
      assert.deepEqual(await i.inbox({ peek: true, unread: true }), [], 'synonyms')
      assert.ok((await s.groupList()).includes(group))
      const info = await s.groupInfo(group)
      assert.equal(info.notifications, 3)
      assert.ok(info.memory > 0 && info.last_seq > info.first_seq)
      assert.equal(await s.groupDrop(group), true)
      assert.equal(await s.groupDrop(group), false)
      assert.ok(!(await s.groupList()).includes(group))
      await assert.rejects(s.groupInfo(group), /no such group/)
    })

    test('catalogAdd/catalogDel; notifyGroup with a join window', async () => {
      const s = store()
      const tag = kind.name.replace(/\W/g, '') + 'jw'
      const cat = `${tag}:cat`
      assert.equal(await s.catalogAdd(cat, 'a', { score: 2, categories: ['x'], ttl: 600 }), true)
      assert.equal(await s.catalogAdd(cat, 'a', { score: 3 }), false, 'replaced')
      assert.equal(await s.catalogAdd(cat, 'b'), true)
      assert.equal(await s.catalogDel(cat, 'b', 'nope'), 1)
      await raw(['SESSION.TOUCH', `sess:${tag}`])
      const i = new Intelligence(s, { sessionID: tag }, {})
      assert.deepEqual(await i.surface(cat, { nomark: true }), ['a'])
      const group = `${tag}:g`
      const t = Date.now()
      await raw(['SESSION.TOUCH', `sess:${tag}b`])
      await raw(['SESSION.ENRICH', `sess:${tag}`, 'JOIN', '1', group, 'AT', String(t)])
      await raw(['SESSION.ENRICH', `sess:${tag}b`, 'JOIN', '1', group, 'AT', String(t + 2000)])
      assert.equal(await s.notifyGroup(group, 'old', 'p1', { at: t + 1000, joinedBefore: 'now' }), true)
      assert.equal(await s.notifyGroup(group, 'old', 'again', { at: t + 1000 }), false, 'already live')
      assert.equal(await s.notifyGroup(group, 'new', Buffer.from('p2'), { at: t + 1000, joinedAfter: t + 1500 }), true)
      assert.deepEqual((await i.inbox()).map((x) => x.id), ['old'])
      const j = new Intelligence(s, { sessionID: `${tag}b` }, {})
      assert.deepEqual((await j.inbox()).map((x) => x.id), ['new'])
      await assert.rejects(s.notifyGroup(group, 'none', 'p', { joinedBefore: t, joinedAfter: t }), /JOINEDAFTER/)
      await assert.rejects(s.notifyGroup(group, 'x', 'p', { ttl: 1, expireat: t }), TypeError)
    })

    test('set, get and destroy round-trip a session in one native key', async () => {
      const s = store()
      const sess = { ...cookie(60000), user: 'ann', n: 1, nested: { a: [1, 2] } }
      await s.set('rt', sess)
      assert.equal(String(await raw(['TYPE', 'sess:rt'])), SESSION_TYPE)
      assert.deepEqual(await s.get('rt'), JSON.parse(JSON.stringify(sess)))
      await s.destroy('rt')
      assert.equal(await s.get('rt'), null)
      assert.equal(num(await raw(['EXISTS', 'sess:rt'])), 0)
    })

    test('callbacks work as well as promises', async () => {
      const s = store()
      await new Promise((resolve, reject) => s.set('cb', { ...cookie(60000), x: 1 }, (e) => e ? reject(e) : resolve()))
      const got = await new Promise((resolve, reject) => s.get('cb', (e, v) => e ? reject(e) : resolve(v)))
      assert.equal(got.x, 1)
      await new Promise((resolve) => s.destroy('cb', resolve))
    })

    test('TTL rules: the cookie expiry first, else ttl (number or function); expired means destroy', async () => {
      const s = store({ ttl: 100 })
      await s.set('cookie', cookie(30000))
      let pttl = num(await raw(['PTTL', 'sess:cookie']))
      assert.ok(pttl > 28000 && pttl <= 31000, `cookie lifetime in ms, got ${pttl}`)
      await s.set('plain', { n: 1 })
      pttl = num(await raw(['PTTL', 'sess:plain']))
      assert.ok(pttl > 98000 && pttl <= 100000, `ttl option, got ${pttl}`)
      const f = store({ ttl: (sess) => sess.long ? 500 : 5 })
      await f.set('fn', { ...cookie(1000), long: true })
      pttl = num(await raw(['PTTL', 'sess:fn']))
      assert.ok(pttl > 498000 && pttl <= 500000, `ttl function wins, got ${pttl}`)
      assert.equal(f.getTTL({ long: false }), 5)
      await s.set('gone', { n: 1 })
      await s.set('gone', { cookie: { expires: new Date(Date.now() - 1000).toISOString() } })
      assert.equal(num(await raw(['EXISTS', 'sess:gone'])), 0, 'an expired cookie destroys')
    })

    test('a 30-day cookie lives 30 days (no silent module default), absoluteTtl caps it', async () => {
      const s = store()
      await s.set('long', cookie(30 * 86400 * 1000))
      const info = JSON.parse(String(await raw(['SESSION.INFO', 'sess:long'])))
      assert.equal(info.idle_s, 30 * 86400)
      assert.ok(info.maxage_s >= 30 * 86400)
      const capped = store({ absoluteTtl: 3600 })
      await capped.set('capped', cookie(30 * 86400 * 1000))
      const pttl = num(await raw(['PTTL', 'sess:capped']))
      assert.ok(pttl > 3590000 && pttl <= 3600000, `MAXAGE caps the lifetime, got ${pttl}`)
    })

    test('touch slides the expiry; disableTouch leaves it; disableTTL is refused', async () => {
      const s = store()
      await s.set('t', cookie(10000))
      await s.touch('t', cookie(200000))
      let pttl = num(await raw(['PTTL', 'sess:t']))
      assert.ok(pttl > 190000, `touched, got ${pttl}`)
      const nt = store({ disableTouch: true })
      await nt.touch('t', cookie(5000))
      pttl = num(await raw(['PTTL', 'sess:t']))
      assert.ok(pttl > 190000, 'disableTouch does nothing')
      await s.touch('missing', cookie(5000))
      assert.equal(num(await raw(['EXISTS', 'sess:missing'])), 0, 'touch creates nothing')
      assert.throws(() => store({ disableTTL: true }), /disableTTL is not supported/)
    })

    test('enumeration: length, ids, all and clear see only the prefix', async () => {
      await raw(['FLUSHALL'])
      const s = store({ prefix: 'app:', scanCount: 2 })
      for (let i = 0; i < 7; i++) await s.set(`id${i}`, { ...cookie(60000), i })
      await raw(['SET', 'other:key', 'x'])
      await raw(['SET', 'app:legacy', JSON.stringify({ ...cookie(60000), i: 99 })])
      assert.equal(await s.length(), 8)
      assert.deepEqual((await s.ids()).sort(), ['id0', 'id1', 'id2', 'id3', 'id4', 'id5', 'id6', 'legacy'])
      const all = await s.all()
      assert.equal(all.length, 8)
      assert.deepEqual(all.map((x) => x.i).sort((a, b) => a - b), [0, 1, 2, 3, 4, 5, 6, 99])
      assert.ok(all.every((x) => typeof x.id === 'string'))
      await s.clear()
      assert.equal(await s.length(), 0)
      assert.equal(String(await raw(['GET', 'other:key'])), 'x')
    })

    test('serializer option, and a binary serializer round-trips Buffers', async () => {
      const calls = []
      const custom = {
        stringify: (o) => { calls.push('s'); return 'X' + JSON.stringify(o) },
        parse: (t) => { calls.push('p'); return JSON.parse(t.slice(1)) }
      }
      const s = store({ serializer: custom })
      await s.set('ser', { ...cookie(60000), a: 1 })
      assert.equal((await s.get('ser')).a, 1)
      assert.deepEqual(calls, ['s', 'p'])
      const bin = store({ serializer: { stringify: (o) => v8.serialize(o), parse: (b) => v8.deserialize(b), binary: true } })
      const bytes = Buffer.from([0, 255, 13, 10, 0x80, 0xc3])
      await bin.set('bin', { ...cookie(60000), bytes, text: 'é😀\u0000' })
      const got = await bin.get('bin')
      assert.deepEqual(Buffer.from(got.bytes), bytes)
      assert.equal(got.text, 'é😀\u0000')
    })

    test('a 100 KiB session and __proto__ keys survive', async () => {
      const s = store()
      const big = 'x'.repeat(100 * 1024)
      const sess = JSON.parse(`{"cookie":{"originalMaxAge":60000},"big":"${big}","__proto__":{"p":1}}`)
      await s.set('big', sess)
      const got = await s.get('big')
      assert.equal(got.big.length, big.length)
      assert.equal(Object.getOwnPropertyDescriptor(got, '__proto__').value.p, 1)
    })

    test('a legacy connect-redis session is upgraded on first read, keeping its TTL', async () => {
      const legacy = { ...cookie(60000), user: 'old' }
      await raw(['SET', 'sess:legacy', JSON.stringify(legacy), 'EX', '50'])
      const s = store()
      assert.deepEqual(await s.get('legacy'), legacy)
      assert.equal(String(await raw(['TYPE', 'sess:legacy'])), SESSION_TYPE)
      const pttl = num(await raw(['PTTL', 'sess:legacy']))
      assert.ok(pttl > 48000 && pttl <= 51000, `remaining TTL kept, got ${pttl}`)
      // writes go to the native session from then on
      await s.set('legacy', { ...legacy, n: 2 })
      assert.equal((await s.get('legacy')).n, 2)
      // and a legacy key written over is upgraded too
      await raw(['SET', 'sess:legacy2', JSON.stringify(legacy), 'EX', '50'])
      await s.set('legacy2', { ...legacy, n: 3 })
      assert.equal((await s.get('legacy2')).n, 3)
    })
  })
}

test('the cluster merge rules (no server): sums, then id; minute by minute', () => {
  const b = (x) => Buffer.from(x)
  const replies = [[b('b'), '1', b('a'), '2'], [b('c'), 3, b('b'), 2, b('a'), '1'], [b('d'), '2.5']]
  assert.deepEqual(mergeTrending(replies, 10), [{ item: 'a', score: 3 }, { item: 'b', score: 3 }, { item: 'c', score: 3 }, { item: 'd', score: 2.5 }])
  assert.deepEqual(mergeTrending(replies, 2).map((x) => x.item), ['a', 'b'])
  assert.deepEqual([1, 10, 100, 600, 1000, 1001].map(trendingPerNodeCount), [11, 20, 200, 1000, 1000, 1001])
  const st = (events, vpm, tracked, topK = 1000) => ({ events, active: events / 2, active_window_minutes: 5, views_per_minute: vpm, trending_tracked: tracked, trend_top_k: topK, trend_half_life: 600 })
  const m = mergeStats([['a:1', st(10, [1, 2, 3], 7)], ['b:2', st(4, [0, 5, 1], 9, 50)]])
  assert.deepEqual([m.events, m.active, m.views_per_minute, m.trending_tracked, m.trend_top_k], [14, 7, [1, 7, 4], 9, 1000])
  assert.deepEqual(Object.keys(m.nodes), ['a:1', 'b:2'])
  assert.equal(m.nodes['b:2'].trend_top_k, 50)
})
