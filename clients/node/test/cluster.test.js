'use strict'
// SessionStore in a Redis Cluster of three primaries (started here, with the module, in cluster
// mode), through node-redis 6 `createCluster` (RESP3) and ioredis `Cluster` (RESP2): sessions
// land on every primary and enumeration (length, ids, all, clear) sees them all; a page view is
// one SESSION.TOUCH through the cluster client (INFO commandstats summed over the nodes, no
// redirect); login (express-session's regenerate, and @fastify/session's) keeps the activity when
// the new id hashes to a slot of another node, and the per-user index follows the session;
// sessions() and revokeAll() ask every primary.

const { test, describe, before, after } = require('node:test')
const assert = require('node:assert/strict')
const http = require('node:http')
const { startCluster } = require('./server')
const { SessionStore, intelligence, fastifyIntelligence, Intelligence, slotOf } = require('..')

let cluster
let direct // one plain node-redis client per node, to look at each node's own keyspace
before(async () => {
  cluster = await startCluster(3)
  const { createClient } = require('redis')
  direct = []
  for (const node of cluster.nodes) {
    const c = createClient({ url: node.url })
    await c.connect()
    direct.push(c)
  }
})
after(async () => {
  if (direct) await Promise.all(direct.map((c) => c.quit().catch(() => {})))
  if (cluster) await cluster.stop()
})

const raw = (i, args) => direct[i].sendCommand(args)

/** The index of the node holding `key` (the owner of its slot: others answer MOVED), or -1. */
async function holder (key) {
  const i = await owner(key)
  return Number(await raw(i, ['EXISTS', key])) === 1 ? i : -1
}

/** The index of the node serving the slot of `key` (from CLUSTER SLOTS). */
let slotTable
async function owner (key) {
  if (!slotTable) {
    slotTable = []
    for (const [first, last, master] of await raw(0, ['CLUSTER', 'SLOTS'])) {
      const port = Number(master[1])
      slotTable.push({ first: Number(first), last: Number(last), node: cluster.nodes.findIndex((n) => n.port === port) })
    }
  }
  const slot = slotOf(key)
  return slotTable.find((r) => slot >= r.first && slot <= r.last).node
}

/** A session id `${tag}-N` whose key (`sess:` prefix) is served by node `node`. */
async function idOn (node, tag) {
  for (let i = 0; ; i++) {
    const id = `${tag}-${i}`
    if (await owner(`sess:${id}`) === node) return id
  }
}

/** Calls and rejected calls per command over all nodes since the last CONFIG RESETSTAT. */
async function clusterStats () {
  const calls = {}
  let rejected = 0
  for (let i = 0; i < direct.length; i++) {
    const info = String(await raw(i, ['INFO', 'commandstats']))
    for (const m of info.matchAll(/^cmdstat_([^:]+):([^\r\n]*)/gm)) {
      if (/^(info|config\||cluster\||command|ping|client\||hello|readonly|select)/.test(m[1])) continue
      const f = Object.fromEntries(m[2].split(',').map((kv) => kv.split('=')))
      if (Number(f.calls)) calls[m[1]] = (calls[m[1]] || 0) + Number(f.calls)
      rejected += Number(f.rejected_calls || 0)
    }
  }
  return { calls, rejected }
}

async function flushAll () {
  for (let i = 0; i < direct.length; i++) await raw(i, ['FLUSHALL'])
}

function listen (handler) {
  return new Promise((resolve) => {
    const srv = http.createServer(handler)
    srv.listen(0, '127.0.0.1', () => resolve(srv))
  })
}

/** A tiny browser: keeps the session cookie between requests. */
function browser (base) {
  let jar = ''
  return async (path) => {
    const res = await fetch(base + path, { headers: jar ? { cookie: jar } : {} })
    const set = res.headers.get('set-cookie')
    if (set) jar = set.split(';')[0]
    const body = await res.text()
    assert.equal(res.status, 200, body)
    return body && body[0] === '{' ? JSON.parse(body) : body
  }
}

const clusterClients = [
  {
    name: 'node-redis 6 createCluster RESP3',
    async connect (rootNodes) {
      const c = require('redis').createCluster({ rootNodes: rootNodes.map((n) => ({ url: `redis://${n.host}:${n.port}` })), RESP: 3 })
      c.on('error', () => {})
      await c.connect()
      return { client: c, close: () => c.close() }
    }
  },
  {
    name: 'ioredis Cluster RESP2',
    async connect (rootNodes) {
      const Redis = require('ioredis')
      const c = new Redis.Cluster(rootNodes)
      await new Promise((resolve, reject) => {
        c.once('ready', resolve)
        c.once('error', reject)
      })
      return { client: c, close: () => c.quit() }
    }
  }
]

test('slotOf agrees with CLUSTER KEYSLOT (hash tags included)', async () => {
  for (const key of ['sess:a', 'sess:{u42}:a', 'x{}y', '{a}{b}', 'sess:\u00e9t\u00e9', '{', 'a{b']) {
    assert.equal(slotOf(key), Number(await raw(0, ['CLUSTER', 'KEYSLOT', key])), key)
  }
})

for (const kind of clusterClients) {
  describe(kind.name, () => {
    let c
    let ids // genid queue for express-session / @fastify/session
    const nextId = () => ids.shift() || `rand-${Math.random().toString(36).slice(2)}`
    before(async () => { c = await kind.connect(cluster.rootNodes) })
    after(async () => { await flushAll(); await c.close() })

    test('sessions land on all 3 primaries; length, ids, all and clear see every one', async () => {
      await flushAll()
      const store = new SessionStore({ client: c.client, scanCount: 7 })
      const want = []
      for (let i = 0; i < 30; i++) {
        want.push(`s${i}`)
        await store.set(`s${i}`, { cookie: { originalMaxAge: 60000 }, n: i })
      }
      await raw(await owner('other:thing'), ['SET', 'other:thing', 'x'])
      for (let i = 0; i < 3; i++) {
        assert.ok(Number(await raw(i, ['DBSIZE'])) > 0, `node ${i} holds sessions`)
      }
      assert.equal(await store.length(), 30)
      assert.deepEqual((await store.ids()).sort(), want.slice().sort())
      const all = await store.all()
      assert.equal(all.length, 30)
      assert.deepEqual(all.map((s) => s.id).sort(), want.slice().sort())
      for (const s of all) assert.equal(s.n, Number(s.id.slice(1)))
      assert.deepEqual(await store.get('s7'), { cookie: { originalMaxAge: 60000 }, n: 7 })
      await store.clear()
      assert.equal(await store.length(), 0)
      let left = 0
      for (let i = 0; i < 3; i++) left += Number(await raw(i, ['DBSIZE']))
      assert.equal(left, 1, 'clear leaves keys of other prefixes alone')
      await flushAll()
    })

    test('a page view is ONE SESSION.TOUCH through the cluster client (no redirect)', async () => {
      await flushAll()
      const store = new SessionStore({ client: c.client })
      const express = require('express')
      const a = express()
      a.use(intelligence({ store, event: (req) => req.path.startsWith('/p/') ? { item: req.path.slice(3) } : null }))
      a.use(require('express-session')({ store, genid: nextId, secret: 't', resave: false, saveUninitialized: false, cookie: { maxAge: 3600000 } }))
      a.get('/cart', (req, res) => { req.session.cart = 1; res.json({ sid: req.sessionID }) })
      a.get('/p/:item', (req, res) => res.json({ view: req.intelligence.view, cart: req.session.cart || 0 }))
      const srv = await listen(a)
      try {
        // sessions on every node, so that a client routing by chance would be caught
        for (let n = 0; n < 3; n++) {
          const b = browser(`http://127.0.0.1:${srv.address().port}`)
          ids = [await idOn(n, `view${n}`)]
          const { sid } = await b('/cart')
          assert.equal(await holder(`sess:${sid}`), n)
          for (let i = 0; i < 3; i++) await raw(i, ['CONFIG', 'RESETSTAT'])
          const views = 4
          for (let v = 0; v < views; v++) {
            const r = await b(`/p/a${v}`)
            assert.equal(r.cart, 1, 'the session is loaded')
            assert.equal(r.view.events, v + 1, 'the view is recorded')
          }
          const { calls, rejected } = await clusterStats()
          assert.deepEqual(calls, { 'session.touch': views }, `nothing but one TOUCH per page view (session on node ${n}): ${JSON.stringify(calls)}`)
          assert.equal(rejected, 0, 'no command was redirected (MOVED): one round trip per view')
        }
      } finally {
        srv.close()
      }
    })

    test('express login: regenerate to an id of another node keeps the activity, clears the fields', async () => {
      await flushAll()
      const store = new SessionStore({ client: c.client, user: (sess) => sess.user })
      const express = require('express')
      const a = express()
      a.use(intelligence({ store, event: (req) => req.path.startsWith('/p/') ? { item: req.path.slice(3), categories: ['news'] } : null }))
      a.use(require('express-session')({ store, genid: nextId, secret: 't', resave: false, saveUninitialized: false, cookie: { maxAge: 3600000 } }))
      a.get('/cart', (req, res) => { req.session.cart = 1; res.json({ sid: req.sessionID }) })
      a.get('/p/:item', (req, res) => res.json({ sid: req.sessionID }))
      a.get('/login/:user', (req, res, next) => req.session.regenerate((err) => {
        if (err) return next(err)
        req.session.user = req.params.user
        res.json({ sid: req.sessionID })
      }))
      const srv = await listen(a)
      try {
        const b = browser(`http://127.0.0.1:${srv.address().port}`)
        const oldId = await idOn(0, 'anon')
        const newId = await idOn(2, 'login')
        ids = [oldId, newId]
        assert.equal((await b('/cart')).sid, oldId)
        await b('/p/a1')
        await b('/p/a2')
        const oldKey = `sess:${oldId}`
        const pttlBefore = Number(await raw(0, ['PTTL', oldKey]))
        assert.equal((await b('/login/ann')).sid, newId)
        assert.equal(await holder(oldKey), -1, 'the old id is gone')
        const newKey = `sess:${newId}`
        assert.equal(await holder(newKey), 2, 'the session moved to the other node')
        const info = JSON.parse(String(await raw(2, ['SESSION.INFO', newKey])))
        assert.equal(info.activity.events, 2, 'the activity came along')
        assert.equal(info.activity.unique_items, 2)
        assert.deepEqual(info.activity.interests.map((x) => x.category || x[0]), ['news'])
        assert.equal(info.user, 'ann')
        const sess = JSON.parse(info.fields.sess)
        assert.equal(sess.cart, undefined, 'the anonymous fields are cleared')
        assert.equal(sess.user, 'ann')
        const pttl = Number(await raw(2, ['PTTL', newKey]))
        assert.ok(pttl > 3500000 && pttlBefore > 3500000, `the lifetime came along, got ${pttl}`)
        assert.deepEqual((await raw(2, ['SESSION.SESSIONS', 'ann'])).map(String), [newKey])
        const r = await b('/p/a3')
        assert.equal(r.sid, newId, 'the browser uses the new id')
        const after = JSON.parse(String(await raw(2, ['SESSION.INFO', newKey])))
        assert.equal(after.activity.events, 3)
      } finally {
        srv.close()
      }
    })

    test('store.regenerate across slots: the per-user index follows the restored session', async () => {
      await flushAll()
      const store = new SessionStore({ client: c.client, user: (sess) => sess.user })
      const oldId = await idOn(1, 'u-old')
      const newId = await idOn(0, 'u-new')
      const oldKey = `sess:${oldId}`
      const newKey = `sess:${newId}`
      await store.set(oldId, { cookie: { originalMaxAge: 600000, expires: new Date(Date.now() + 600000).toISOString() }, user: 'bob', secret: 'anonymous data' })
      await raw(1, ['SESSION.TOUCH', oldKey, 'XX', 'EVENT', 'i1'])
      assert.deepEqual((await raw(1, ['SESSION.SESSIONS', 'bob'])).map(String), [oldKey])
      store.generate = (req) => { req.sessionID = newId }
      const req = { sessionID: oldId }
      await new Promise((resolve, reject) => store.regenerate(req, (err) => err ? reject(err) : resolve()))
      assert.equal(req.sessionID, newId)
      assert.equal(await holder(oldKey), -1)
      assert.equal(await holder(newKey), 0)
      const info = JSON.parse(String(await raw(0, ['SESSION.INFO', newKey])))
      assert.equal(info.field_count, 0, 'fields cleared (login), as ROTATE CLEARFIELDS does')
      assert.equal(info.activity.events, 1)
      assert.equal(info.user, 'bob')
      assert.deepEqual((await raw(0, ['SESSION.SESSIONS', 'bob'])).map(String), [newKey], 'listed on the new node')
      // SESSIONS answers for the whole cluster from any node: the old node lists only the new key
      assert.deepEqual((await raw(1, ['SESSION.SESSIONS', 'bob'])).map(String), [newKey], 'gone from the old node')
      const pttl = Number(await raw(0, ['PTTL', newKey]))
      assert.ok(pttl > 590000 && pttl <= 600000, `the idle timeout came along, got ${pttl}`)
      // a missing old session: nothing to carry, no error, nothing created
      store.generate = (r) => { r.sessionID = 'never-created' }
      await new Promise((resolve, reject) => store.regenerate({ sessionID: 'gone' }, (err) => err ? reject(err) : resolve()))
      assert.equal(await holder('sess:never-created'), -1)
    })

    test('sessions() and revokeAll() cover the per-user index of every primary', async () => {
      await flushAll()
      const store = new SessionStore({ client: c.client, user: (sess) => sess.user })
      const mine = []
      for (let n = 0; n < 3; n++) {
        const id = await idOn(n, `carl${n}`)
        mine.push(id)
        await store.set(id, { cookie: { originalMaxAge: 60000 }, user: 'carl' })
      }
      await store.set(await idOn(1, 'dora'), { cookie: { originalMaxAge: 60000 }, user: 'dora' })
      const i = new Intelligence(store, { sessionID: mine[0], session: { user: 'carl' } }, {})
      assert.deepEqual(await i.sessions(), mine.slice().sort())
      assert.equal(await i.revokeAll(), 3)
      for (const id of mine) assert.equal(await holder(`sess:${id}`), -1)
      assert.deepEqual(await i.sessions(), [])
      assert.equal(await store.length(), 1, "another user's session stays")
    })

    test('@fastify/session regenerate keeps the activity across nodes', async () => {
      await flushAll()
      const store = new SessionStore({ client: c.client })
      const fastify = require('fastify')()
      fastify.addHook('onRequest', fastifyIntelligence({ store, event: (req) => req.url.startsWith('/p/') ? { item: req.url.slice(3) } : null }))
      fastify.register(require('@fastify/cookie'))
      fastify.register(require('@fastify/session'), { store, idGenerator: nextId, secret: 'a secret with minimum length of 32 characters', cookie: { secure: false, maxAge: 600000 }, saveUninitialized: false })
      fastify.get('/cart', async (req) => { req.session.set('cart', 1); return { sid: req.session.sessionId } })
      fastify.get('/p/:item', async (req) => ({ sid: req.session.sessionId, cart: req.session.get('cart') || 0 }))
      fastify.get('/login', async (req) => { await req.session.regenerate(); req.session.set('user', 'ann'); return { sid: req.session.sessionId } })
      await fastify.listen({ port: 0, host: '127.0.0.1' })
      try {
        const oldId = await idOn(1, 'f-anon')
        const newId = await idOn(2, 'f-login')
        ids = [oldId, newId]
        const b = browser(`http://127.0.0.1:${fastify.server.address().port}`)
        assert.equal((await b('/cart')).sid, oldId)
        await b('/p/x1')
        await b('/p/x2')
        assert.equal((await b('/login')).sid, newId)
        assert.equal(await holder(`sess:${oldId}`), -1, 'the old id is gone')
        assert.equal(await holder(`sess:${newId}`), 2)
        const info = JSON.parse(String(await raw(2, ['SESSION.INFO', `sess:${newId}`])))
        assert.equal(info.activity.events, 2, 'the activity came along')
        const sess = JSON.parse(info.fields.sess)
        assert.equal(sess.cart, undefined, 'regenerate() without keys starts empty')
        assert.equal(sess.user, 'ann')
        assert.equal((await b('/p/x3')).sid, newId)
      } finally {
        await fastify.close()
      }
    })
  })
}
