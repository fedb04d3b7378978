'use strict'
// express-session + SessionStore + intelligence() in a real Express app (and plain connect, and
// @fastify/session): the one-command page view (counted with INFO commandstats), anonymous
// visitors, login/regenerate keeping the activity, logout everywhere, and req.intelligence's
// plain values, on RESP2 and RESP3.

const { test, describe, before, after } = require('node:test')
const assert = require('node:assert/strict')
const http = require('node:http')
const { start } = require('./server')
const { clients } = require('./clients')
const { SessionStore, intelligence, fastifyIntelligence } = require('..')

let server
before(async () => { server = await start() })
after(async () => { await server.stop() })

function listen (handler) {
  return new Promise((resolve) => {
    const srv = http.createServer(handler)
    srv.listen(0, '127.0.0.1', () => resolve(srv))
  })
}

/** A tiny browser: keeps the session cookie between requests. */
function browser (srv) {
  let jar = ''
  const base = `http://127.0.0.1:${srv.address().port}`
  return async (path) => {
    const res = await fetch(base + path, { headers: jar ? { cookie: jar } : {} })
    const set = res.headers.get('set-cookie')
    if (set) jar = set.split(';')[0]
    const body = await res.text()
    return { status: res.status, body: body && body[0] === '{' ? JSON.parse(body) : body, cookie: jar }
  }
}

/** Calls per command since the last CONFIG RESETSTAT (INFO commandstats). */
async function commandStats (raw) {
  const info = String(await raw(['INFO', 'commandstats']))
  const out = {}
  for (const m of info.matchAll(/^cmdstat_([^:]+):calls=(\d+)/gm)) out[m[1]] = Number(m[2])
  return out
}

function app (store, session) {
  const express = require('express')
  const a = express()
  a.use(intelligence({ store, event: (req) => req.path.startsWith('/p/') ? { item: req.path.slice(3), categories: ['news'] } : null }))
  a.use(session({ store, secret: 'test', resave: false, saveUninitialized: false, cookie: { maxAge: 3600000 } }))
  a.get('/login/:user', (req, res, next) => {
    req.session.regenerate((err) => {
      if (err) return next(err)
      req.session.user = req.params.user
      res.json({ sid: req.sessionID })
    })
  })
  a.get('/cart', (req, res) => { req.session.cart = (req.session.cart || 0) + 1; res.json({ cart: req.session.cart, sid: req.sessionID }) })
  a.get('/p/:item', (req, res) => res.json({ view: req.intelligence.view, sid: req.sessionID, cart: req.session.cart || 0 }))
  a.get('/intel', async (req, res, next) => {
    try {
      const i = req.intelligence
      res.json({
        surface: await i.surface('news', { count: 3 }),
        seen: await i.seen(['a1', 'zz']),
        inbox: await i.inbox(),
        enrich: await i.enrich({ join: ['beta'] }),
        sessions: await i.sessions()
      })
    } catch (e) { next(e) }
  })
  a.get('/logout-everywhere', async (req, res) => res.json({ revoked: await req.intelligence.revokeAll() }))
  return a
}

for (const kind of clients.filter((k) => /6 RESP|5 RESP3|ioredis RESP3/.test(k.name))) {
  describe(`express on ${kind.name}`, () => {
    let c, raw, srv, store
    before(async () => {
      c = await kind.connect(server.url)
      raw = c.raw
      await raw(['FLUSHALL'])
      store = new SessionStore({ client: c.client, user: (sess) => sess.user })
      srv = await listen(app(store, require('express-session')))
    })
    after(async () => { srv.close(); await c.close() })

    test('anonymous visitors create nothing; the first save records its view', async () => {
      const b = browser(srv)
      await b('/p/a0')
      assert.equal(Number(await raw(['DBSIZE'])), 0, 'no orphan session for a visitor who saves nothing')
      const r = await b('/cart')
      const info = JSON.parse(String(await raw(['SESSION.INFO', `sess:${r.body.sid}`])))
      assert.equal(info.activity, null, '/cart records no view (event() returned null)')
      await raw(['FLUSHALL'])
    })

    test('a page view is ONE command: load + record + slide (INFO commandstats)', async () => {
      const b = browser(srv)
      const { body } = await b('/cart')
      await raw(['CONFIG', 'RESETSTAT'])
      const views = 5
      for (let i = 0; i < views; i++) {
        const r = await b(`/p/a${i}`)
        assert.equal(r.body.cart, 1, 'the session is loaded')
        assert.equal(r.body.view.events, i + 1, 'the view is recorded')
      }
      const stats = await commandStats(raw)
      delete stats.info // our own INFO
      delete stats['config|resetstat']
      assert.deepEqual(stats, { 'session.touch': views }, 'nothing but one TOUCH per page view')
      const info = JSON.parse(String(await raw(['SESSION.INFO', `sess:${body.sid}`])))
      assert.equal(info.activity.events, views)
      const ttl = Number(await raw(['PTTL', `sess:${body.sid}`]))
      assert.ok(ttl > 3500000, `the expiry slid with the cookie lifetime, got ${ttl}`)
    })

    test('login regenerates the id and keeps the activity; logout everywhere revokes all', async () => {
      const b = browser(srv)
      const first = await b('/cart')
      await b('/p/a1')
      await b('/p/a2')
      const login = await b('/login/ann')
      assert.notEqual(login.body.sid, first.body.sid, 'a new session id')
      assert.equal(Number(await raw(['EXISTS', `sess:${first.body.sid}`])), 0, 'the old id is gone')
      const info = JSON.parse(String(await raw(['SESSION.INFO', `sess:${login.body.sid}`])))
      assert.equal(info.activity.events, 2, 'activity kept across login')
      assert.equal(info.user, 'ann')
      const sess = JSON.parse(info.fields.sess)
      assert.equal(sess.cart, undefined, 'anonymous fields cleared')
      assert.equal(sess.user, 'ann')
      const other = browser(srv)
      await other('/login/ann')
      await raw(['SESSION.CATALOG', 'ADD', 'news', 'a1', 'SCORE', '5', 'CATEGORIES', '1', 'news'])
      await raw(['SESSION.CATALOG', 'ADD', 'news', 'b1', 'SCORE', '3', 'CATEGORIES', '1', 'news'])
      await raw(['SESSION.NOTIFYGROUP', 'beta', 'n1', 'hello'])
      const intel = (await b('/intel')).body
      assert.deepEqual(intel.surface, ['b1'], 'a1 was seen: only unseen items')
      assert.deepEqual(intel.seen, [true, false])
      assert.deepEqual(intel.inbox, [], 'joined after the publication? delivered at the next inbox')
      assert.deepEqual(intel.enrich.groups, ['beta'])
      assert.equal(intel.enrich.events, 2)
      assert.equal(intel.sessions.length, 2)
      assert.ok(intel.sessions.includes(login.body.sid))
      const second = (await b('/intel')).body
      assert.equal(second.inbox.length, 1)
      assert.deepEqual(Object.keys(second.inbox[0]).sort(), ['group', 'id', 'payload', 'published_ms'])
      assert.equal(second.inbox[0].payload, 'hello')
      assert.equal(typeof second.inbox[0].published_ms, 'number')
      const out = await b('/logout-everywhere')
      assert.equal(out.body.revoked, 2)
      for (const sid of intel.sessions) assert.equal(Number(await raw(['EXISTS', `sess:${sid}`])), 0)
      await raw(['SESSION.CATALOG', 'DROP', 'news'])
    })
  })
}

test('plain connect with express-session', async () => {
  const c = await clients[0].connect(server.url)
  const store = new SessionStore({ client: c.client })
  const connect = require('connect')
  const session = require('express-session')
  const a = connect()
  a.use(intelligence({ store, event: (req) => ({ item: req.url }) }))
  a.use(session({ store, secret: 's', resave: false, saveUninitialized: false }))
  a.use((req, res) => { req.session.n = (req.session.n || 0) + 1; res.end(JSON.stringify({ n: req.session.n, sid: req.sessionID })) })
  const srv = await listen(a)
  const b = browser(srv)
  await b('/x')
  const r = await b('/y')
  assert.equal(r.body.n, 2)
  const info = JSON.parse(String(await c.raw(['SESSION.INFO', `sess:${r.body.sid}`])))
  assert.equal(info.activity.events, 2, 'both views recorded (the first at the first save)')
  srv.close()
  await c.raw(['FLUSHALL'])
  await c.close()
})

test('@fastify/session uses the store (and records views with fastifyIntelligence)', async () => {
  const c = await clients.find((k) => k.name === 'ioredis RESP2').connect(server.url)
  const store = new SessionStore({ client: c.client })
  const fastify = require('fastify')()
  fastify.addHook('onRequest', fastifyIntelligence({ store, event: (req) => ({ item: req.url }) }))
  fastify.register(require('@fastify/cookie'))
  fastify.register(require('@fastify/session'), { store, secret: 'a secret with minimum length of 32 characters', cookie: { secure: false, maxAge: 600000 }, saveUninitialized: false })
  fastify.get('/n', async (req) => { req.session.set('n', (req.session.get('n') || 0) + 1); return { n: req.session.get('n'), sid: req.session.sessionId } })
  fastify.get('/logout', async (req) => { await req.session.destroy(); return { ok: true } })
  await fastify.listen({ port: 0, host: '127.0.0.1' })
  const b = browser(fastify.server)
  await b('/n')
  const r = await b('/n')
  assert.equal(r.body.n, 2)
  assert.equal(String(await c.raw(['TYPE', `sess:${r.body.sid}`])), 'session01')
  const pttl = Number(await c.raw(['PTTL', `sess:${r.body.sid}`]))
  assert.ok(pttl > 590000 && pttl <= 600000, `cookie maxAge as TTL, got ${pttl}`)
  const info = JSON.parse(String(await c.raw(['SESSION.INFO', `sess:${r.body.sid}`])))
  assert.ok(info.activity && info.activity.events >= 1, 'views recorded')
  await b('/logout')
  assert.equal(Number(await c.raw(['EXISTS', `sess:${r.body.sid}`])), 0)
  await fastify.close()
  await c.raw(['FLUSHALL'])
  await c.close()
})

test('@fastify/session regenerate keeps the activity; logout stays a logout', async () => {
  for (const kind of clients.filter((k) => /6 RESP3|ioredis RESP2/.test(k.name))) {
    const c = await kind.connect(server.url)
    const store = new SessionStore({ client: c.client, user: (sess) => sess.user })
    const fastify = require('fastify')()
    fastify.addHook('onRequest', fastifyIntelligence({ store, event: (req) => req.url.startsWith('/p/') ? { item: req.url.slice(3) } : null }))
    fastify.register(require('@fastify/cookie'))
    fastify.register(require('@fastify/session'), { store, secret: 'a secret with minimum length of 32 characters', cookie: { secure: false, maxAge: 600000 }, saveUninitialized: false })
    fastify.get('/cart', async (req) => { req.session.set('cart', 1); return { sid: req.session.sessionId } })
    fastify.get('/p/:item', async (req) => ({ sid: req.session.sessionId }))
    fastify.get('/login', async (req) => { await req.session.regenerate(); req.session.set('user', 'ann'); return { sid: req.session.sessionId } })
    fastify.get('/logout', async (req) => { const sid = req.session.sessionId; await req.session.destroy(); return { sid } })
    await fastify.listen({ port: 0, host: '127.0.0.1' })
    const b = browser(fastify.server)
    const first = (await b('/cart')).body.sid
    await b('/p/x1')
    await b('/p/x2')
    const login = (await b('/login')).body.sid
    assert.notEqual(login, first)
    assert.equal(Number(await c.raw(['EXISTS', `sess:${first}`])), 0, `${kind.name}: the old id is gone`)
    const info = JSON.parse(String(await c.raw(['SESSION.INFO', `sess:${login}`])))
    assert.equal(info.activity.events, 2, `${kind.name}: the activity came along`)
    assert.equal(info.user, 'ann')
    assert.equal(JSON.parse(info.fields.sess).cart, undefined, 'regenerate() without keys starts empty')
    const out = (await b('/logout')).body.sid
    assert.equal(out, login)
    assert.equal(Number(await c.raw(['DBSIZE'])), 0, `${kind.name}: logout leaves nothing behind`)
    assert.deepEqual((await c.raw(['SESSION.SESSIONS', 'ann'])).map(String), [])
    await fastify.close()
    await c.raw(['FLUSHALL'])
    await c.close()
  }
})
