'use strict'
// SessionStore in a Redis Cluster of three primaries (started here, with the module, in cluster
// mode), through node-redis 6 `createCluster` (RESP3) and ioredis `Cluster` (RESP2): sessions
// land on every primary and enumeration (length, ids, all, clear) sees them all; a page view is
// one SESSION.TOUCH through the cluster client (INFO commandstats summed over the nodes, no
// redirect); login (express-session's regenerate, and @fastify/session's) keeps the activity when
// the new id hashes to a slot of another node, and the per-user index follows the session;
// sessions() and revokeAll() ask every primary; trending() and stats() ask every primary and
// merge (checked against the per-node replies summed here); inbox unread + ack, surfaceRo and
// the group helpers (sent to one primary, reaching all) on sessions of every node.

const { test, describe, before, after } = require('node:test')
const assert = require('node:assert/strict')
const http = require('node:http')
const { startCluster, addReplica, waitFor } = require('./server')
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

/** A STATS reply of a direct client as an object of numbers. */
function rawStats (reply) {
  const out = {}
  for (const [k, v] of Object.entries(pairsOf(reply))) out[k] = Array.isArray(v) ? v.map(Number) : Number(v)
  return out
}

/** Waits until every node answers `check(i)` truthy (registry changes travel over the bus). */
const onEveryNode = (check, what) => waitFor(async () => {
  for (let i = 0; i < direct.length; i++) if (!(await check(i))) return false
  return true
}, what, 15000)

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

/** A map reply as an object (node-redis hands some RESP2 maps over as objects already). */
function pairsOf (flat) {
  if (!Array.isArray(flat)) return { ...flat }
  const out = {}
  for (let i = 0; i + 1 < flat.length; i += 2) out[String(flat[i])] = flat[i + 1]
  return out
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

    test('trending() and stats() merge every primary: an item second everywhere is first overall', async () => {
      const store = new SessionStore({ client: c.client })
      const tag = kind.name.replace(/\W/g, '')
      const cat = `${tag}:cat`
      const [w, x, y, z] = ['w', 'x', 'y', 'z'].map((l) => `${tag}:${l}`)
      for (const item of [w, x, y, z]) await raw(0, ['SESSION.CATALOG', 'ADD', cat, item, 'SCORE', '1'])
      await onEveryNode(async (i) => {
        try { return Number(pairsOf(await raw(i, ['SESSION.CATALOG', 'INFO', cat])).items) === 4 } catch { return false }
      }, 'the catalog on every node')
      const now = Date.now()
      const own = [x, y, z]
      for (let n = 0; n < 3; n++) {
        const key = `sess:${await idOn(n, `${tag}-t${n}`)}`
        for (let v = 0; v < 3; v++) await raw(n, ['SESSION.TOUCH', key, 'EVENT', own[n], 'AT', String(now)])
        for (let v = 0; v < 2; v++) await raw(n, ['SESSION.TOUCH', key, 'EVENT', w, 'AT', String(now)])
      }
      const perNode = async (i, count) => {
        const flat = await raw(i, ['SESSION.TRENDING', cat, 'COUNT', String(count), 'WITHSCORES', 'AT', String(now)])
        const out = []
        for (let k = 0; k < flat.length; k += 2) out.push([String(flat[k]), Number(flat[k + 1])])
        return out
      }
      const tops = []
      for (let i = 0; i < 3; i++) tops.push((await perNode(i, 1))[0][0])
      assert.deepEqual(tops.sort(), [x, y, z], 'w is first on no primary')
      assert.deepEqual(await store.trending(cat, { count: 1, at: now }), [w])
      const summed = new Map()
      for (let i = 0; i < 3; i++) for (const [id, sc] of await perNode(i, 10)) summed.set(id, (summed.get(id) || 0) + sc)
      const want = [...summed].sort((a, b) => (b[1] - a[1]) || (a[0] < b[0] ? -1 : 1))
      const got = await store.trending(cat, { count: 4, withScores: true, at: now })
      assert.deepEqual(got.map((g) => g.item), want.map(([id]) => id))
      assert.equal(got[0].item, w)
      assert.deepEqual(got.slice(1).map((g) => g.item).sort(), [x, y, z])
      got.forEach((g, k) => assert.ok(Math.abs(g.score - want[k][1]) < 1e-9, `${g.item} ${g.score} vs ${want[k][1]}`))
      assert.ok(Math.abs(got[0].score - 6) < 1e-6 && Math.abs(got[1].score - 3) < 1e-6)
      assert.equal((await store.trending(cat, { count: 2 }))[0], w, 'now: every primary decays to one AT')

      const nodes = []
      for (let i = 0; i < 3; i++) nodes.push(rawStats(await raw(i, ['SESSION.STATS', 'AT', String(now)])))
      for (const st of nodes) assert.ok(st.views_per_minute[59] >= 5, 'every primary counted its events')
      const m = await store.stats({ at: now })
      assert.equal(m.events, nodes.reduce((a, st) => a + st.events, 0))
      assert.equal(m.active, nodes.reduce((a, st) => a + st.active, 0))
      assert.deepEqual(m.views_per_minute, nodes[0].views_per_minute.map((_, k) => nodes.reduce((a, st) => a + st.views_per_minute[k], 0)))
      assert.equal(m.trending_tracked, Math.max(...nodes.map((st) => st.trending_tracked)))
      assert.equal(m.trend_top_k, 1000)
      assert.equal(Object.keys(m.nodes).length, 3)
      const byPort = Object.fromEntries(Object.entries(m.nodes).map(([name, st]) => [Number(name.split(':').pop()), st]))
      cluster.nodes.forEach((node, i) => assert.equal(byPort[node.port].events, nodes[i].events, `node ${i}`))
      await raw(0, ['SESSION.CATALOG', 'DROP', cat])
    })

    test('inbox unread + ack, surfaceRo and groups on sessions of every primary', async () => {
      const store = new SessionStore({ client: c.client })
      const tag = kind.name.replace(/\W/g, '') + 'rs'
      const group = `${tag}:g`
      const cat = `${tag}:cat`
      await raw(0, ['SESSION.CATALOG', 'ADD', cat, 'a', 'SCORE', '2'])
      await raw(0, ['SESSION.CATALOG', 'ADD', cat, 'b', 'SCORE', '1'])
      const people = []
      for (let n = 0; n < 3; n++) {
        const id = await idOn(n, `${tag}-${n}`)
        await raw(n, ['SESSION.TOUCH', `sess:${id}`, 'EVENT', 'a'])
        const i = new Intelligence(store, { sessionID: id }, {})
        await i.enrich({ join: [group] })
        people.push(i)
      }
      assert.ok(await store._registry(['SESSION.NOTIFYGROUP', group, 'n1', 'one']))
      await store._registry(['SESSION.NOTIFYGROUP', group, 'n2', 'two'])
      await onEveryNode(async (i) => {
        try { return Number(pairsOf(await raw(i, ['SESSION.GROUP', 'INFO', group])).notifications) === 2 } catch { return false }
      }, 'the group on every node')
      await onEveryNode(async (i) => {
        try { await raw(i, ['SESSION.CATALOG', 'INFO', cat]); return true } catch { return false }
      }, 'the catalog on every node')
      for (const i of people) {
        assert.deepEqual((await i.inbox({ unread: true })).map((x) => [x.id, x.delivered]), [['n1', false], ['n2', false]])
        assert.equal((await i.inbox({ count: 1 })).length, 1)
        assert.equal(await i.ack(group, { upto: 'n2' }), 1)
        assert.deepEqual((await i.inbox({ unread: true })).map((x) => [x.id, x.delivered]), [['n2', false]])
        assert.deepEqual(await i.surfaceRo(cat, { maxImpressions: 1 }), ['b'])
        assert.deepEqual(await i.surfaceRo(cat, { maxImpressions: 1 }), ['b'])
      }
      assert.ok((await store.groupList()).includes(group))
      assert.equal((await store.groupInfo(group)).notifications, 2)
      assert.equal(await store.groupDrop(group), true)
      await onEveryNode(async (i) => !(await raw(i, ['SESSION.GROUP', 'LIST'])).map(String).includes(group), 'the drop on every node')
      await assert.rejects(store.groupInfo(group), /no such group/)
      await raw(0, ['SESSION.CATALOG', 'DROP', cat])
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

// Last (it adds a replica of node 0 to the shared cluster): surfaceRo is a read-only command,
// sent to the slot's replica only by a client configured for replica reads.
describe('surfaceRo and replica reads', () => {
  let replica
  let key
  const cat = 'ro:cat'
  before(async () => {
    replica = await addReplica(cluster, 0)
    const id = await idOn(0, 'ro')
    key = `sess:${id}`
    await raw(0, ['SESSION.CATALOG', 'ADD', cat, 'a', 'SCORE', '2'])
    await raw(0, ['SESSION.CATALOG', 'ADD', cat, 'b', 'SCORE', '1'])
    await raw(0, ['SESSION.TOUCH', key, 'EVENT', 'a'])
    const { createClient } = require('redis')
    const r = createClient({ url: replica.url })
    await r.connect()
    try {
      await r.sendCommand(['READONLY'])
      await waitFor(async () => {
        if (Number(await r.sendCommand(['EXISTS', key])) !== 1) return false
        try { await r.sendCommand(['SESSION.CATALOG', 'INFO', cat]); return true } catch { return false }
      }, 'the replica has the session and the catalog', 15000)
    } finally {
      await r.quit()
    }
  })

  /** SURFACE_RO calls on [node 0, its replica] (INFO commandstats). */
  async function calls () {
    const { createClient } = require('redis')
    const out = []
    for (const node of [cluster.nodes[0], replica]) {
      const c = createClient({ url: node.url })
      await c.connect()
      const m = /^cmdstat_session\.surface_ro:calls=(\d+)/m.exec(String(await c.sendCommand(['INFO', 'commandstats'])))
      out.push(m ? Number(m[1]) : 0)
      await c.quit()
    }
    return out
  }

  const kinds = [
    { name: 'node-redis 6 default: the primary', replicas: false, make: (roots) => require('redis').createCluster({ rootNodes: roots.map((n) => ({ url: `redis://${n.host}:${n.port}` })) }) },
    { name: 'node-redis 6 useReplicas: the replica too', replicas: 'some', make: (roots) => require('redis').createCluster({ rootNodes: roots.map((n) => ({ url: `redis://${n.host}:${n.port}` })), useReplicas: true }) },
    { name: 'ioredis default: the primary', replicas: false, make: (roots) => new (require('ioredis').Cluster)(roots) },
    { name: "ioredis scaleReads 'slave': the replica", replicas: 'all', make: (roots) => new (require('ioredis').Cluster)(roots, { scaleReads: 'slave' }) }
  ]
  for (const kind of kinds) {
    test(kind.name, async () => {
      const c = kind.make(cluster.rootNodes)
      c.on('error', () => {})
      if (typeof c.connect === 'function' && !('nodes' in c && typeof c.nodes === 'function')) await c.connect()
      else await new Promise((resolve, reject) => { c.once('ready', resolve); c.once('error', reject) })
      try {
        const store = new SessionStore({ client: c })
        const i = new Intelligence(store, { sessionID: key.slice(5) }, {})
        const [p0, r0] = await calls()
        for (let n = 0; n < 4; n++) assert.deepEqual(await i.surfaceRo(cat), ['b'])
        const [p1, r1] = await calls()
        assert.equal(p1 - p0 + r1 - r0, 4, 'each call ran once, on node 0 or its replica')
        if (!kind.replicas) assert.equal(r1 - r0, 0, 'nothing on the replica')
        else if (kind.replicas === 'all') assert.equal(r1 - r0, 4, 'all on the replica')
        else assert.ok(r1 - r0 >= 1, `some on the replica (${r1 - r0})`)
      } finally {
        await (typeof c.close === 'function' ? c.close() : c.quit())
      }
    })
  }
})
