'use strict'
// SessionStore against a live server, on every client of the matrix: what connect-redis's README
// documents (options, TTL rules, touch, enumeration, serializer), plus the module's additions
// (absoluteTtl, legacy upgrade, large and binary sessions).

const { test, describe, before, after } = require('node:test')
const assert = require('node:assert/strict')
const v8 = require('node:v8')
const { start } = require('./server')
const { clients } = require('./clients')
const { SessionStore, SESSION_TYPE } = require('..')

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
