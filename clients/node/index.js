'use strict'
// session-store-redis: an express-session Store (drop-in for connect-redis's RedisStore) on the
// session-store Redis module, and the intelligence() middleware that records each page view in
// the same command that loads the session. Works with node-redis 4/5/6 and ioredis, RESP2 and
// RESP3, standalone and cluster. See README.md.

const { AsyncLocalStorage } = require('node:async_hooks')

// express-session's Store, as the application resolves it: the app's copy first (from its main
// module and its working directory), so a package installed by symlink (`npm install
// ./clients/node`, `file:` dependencies) extends the same Store class the app's session() uses;
// then the copy this package can see.
function findBaseStore () {
  const from = [require.main && require.main.path, process.cwd()].filter(Boolean)
  for (const dir of from) {
    try {
      return require(require.resolve('express-session', { paths: [dir] })).Store
    } catch {}
  }
  try {
    return require('express-session').Store
  } catch {
    // Without express-session (fastify, plain use): a minimal EventEmitter base.
    return require('node:events').EventEmitter
  }
}
const BaseStore = findBaseStore()

/** The module's native type name (for `SCAN ... TYPE`). */
const SESSION_TYPE = 'session01'
/** Longest lifetime the module accepts, in seconds (ten years). */
const MAX_LIFETIME_S = 315360000

// The page view a store call belongs to. express-session hands the store no request, but its
// session objects carry one (`sess.req`), and it calls `get` synchronously from its middleware
// right after setting `req.sessionID`: intelligence() parks the request in `store._waiting` for
// that call (checked against the id). Fastify and withPageView use an AsyncLocalStorage instead
// (it is not used for Express: its promise hooks slow down every promise of the process).
const CTX = Symbol('session-store-redis.pageView')
const context = new AsyncLocalStorage()

function ctxOf (sess) {
  const req = sess && sess.req
  return (req && req[CTX]) || context.getStore()
}

function optionalCb (err, data, cb) {
  if (cb) return cb(err, data)
  if (err) throw err
  return data
}

const isWrongType = (err) => err && typeof err.message === 'string' && err.message.startsWith('WRONGTYPE')

// ---------------------------------------------------------------------------------------------
// One way to send a raw command with binary replies, whatever the client.

const BLOB_STRING = 36 // '$'
const MAP = 37 // '%'
const TYPE_MAPPING = { [BLOB_STRING]: Buffer, [MAP]: Array }

function isIoCluster (client) {
  return typeof client.callBuffer === 'function' && typeof client.nodes === 'function'
}

function isCluster (client) {
  return 'masters' in client || isIoCluster(client)
}

// The Redis Cluster hash slot of a key (CRC16-XMODEM of the hash tag or the whole key, mod 16384).
function crc16 (buf) {
  let crc = 0
  for (const byte of buf) {
    crc ^= byte << 8
    for (let i = 0; i < 8; i++) crc = (crc & 0x8000) ? ((crc << 1) ^ 0x1021) & 0xffff : (crc << 1) & 0xffff
  }
  return crc
}

function slotOf (key) {
  const buf = Buffer.isBuffer(key) ? key : Buffer.from(String(key))
  const open = buf.indexOf(123) // '{'
  if (open !== -1) {
    const close = buf.indexOf(125, open + 1) // '}'
    if (close > open + 1) return crc16(buf.subarray(open + 1, close)) % 16384
  }
  return crc16(buf) % 16384
}

const isRedirect = (err) => err && typeof err.message === 'string' && /^(MOVED|ASK|TRYAGAIN|CLUSTERDOWN) /.test(err.message)

/**
 * ioredis Cluster knows the keys of the commands it ships a table for, not of module commands:
 * it sends those to a random node, which answers MOVED (a second round trip, 2 times in 3 on three
 * primaries). So keyed commands go straight to the primary of the key's slot (from the cluster's
 * slot table); a redirect (resharding, failover: the command did not run) is retried through the
 * cluster, which follows it and refreshes its table.
 */
function ioClusterSender (cluster) {
  const viaCluster = (args) => cluster.callBuffer(args[0], ...args.slice(1))
  let byKey = new Map()
  const nodeOf = (nodeKey) => {
    let node = byKey.get(nodeKey)
    if (node && node.status !== 'end') return node
    byKey = new Map()
    for (const n of cluster.nodes('all')) byKey.set(`${n.options.host}:${n.options.port}`, n)
    node = byKey.get(nodeKey)
    return node && node.status !== 'end' ? node : null
  }
  // A read-only command (`{ readonly: true }`) may go to a replica of the slot when the cluster
  // was made with `scaleReads: 'slave'` (a random replica) or `'all'` (any node of the slot);
  // ioredis's replica connections send READONLY. A `scaleReads` function, or none: the primary.
  const pick = (owners, readonly) => {
    const scale = cluster.options && cluster.options.scaleReads
    if (!readonly || owners.length < 2 || (scale !== 'slave' && scale !== 'all')) return owners[0]
    const from = scale === 'slave' ? owners.slice(1) : owners
    return from[Math.floor(Math.random() * from.length)]
  }
  return (args, key, opts) => {
    const owners = key != null && cluster.slots && cluster.slots[slotOf(key)]
    const node = owners && owners.length ? nodeOf(pick(owners, opts && opts.readonly)) : null
    if (!node) return viaCluster(args)
    return node.callBuffer(args[0], ...args.slice(1)).catch((err) => {
      if (isRedirect(err)) return viaCluster(args)
      throw err
    })
  }
}

/**
 * Returns `send(args, key, opts)` -> Promise of the reply with bulk strings as Buffers and maps
 * as flat arrays (or, on clients that insist, Map/objects: `pairs()` handles all shapes). `key`
 * routes the command in a cluster; `opts.readonly` lets a cluster client configured for replica
 * reads (node-redis `useReplicas`, ioredis `scaleReads`) send it to a replica.
 */
function makeSender (client) {
  if (isIoCluster(client)) return ioClusterSender(client)
  if (typeof client.callBuffer === 'function') {
    // ioredis Redis
    return (args) => client.callBuffer(args[0], ...args.slice(1))
  }
  if (typeof client.withTypeMapping === 'function' || typeof client.sendCommand === 'function') {
    const v4 = typeof client.commandOptions === 'function'
    const options = v4 ? client.commandOptions({ returnBuffers: true }) : { typeMapping: TYPE_MAPPING }
    if ('masters' in client) {
      // node-redis cluster: sendCommand(firstKey, isReadonly, args, options)
      return (args, key, opts) => client.sendCommand(key, Boolean(opts && opts.readonly), args, options)
    }
    return (args) => client.sendCommand(args, options)
  }
  throw new TypeError('session-store-redis: `client` must be a node-redis (4+) or ioredis client')
}

/** Name/value pairs of a reply that is a flat array, a Map or a plain object. */
function pairs (reply) {
  if (reply == null) return []
  if (Array.isArray(reply)) {
    const out = []
    for (let i = 0; i + 1 < reply.length; i += 2) out.push([text(reply[i]), reply[i + 1]])
    return out
  }
  if (reply instanceof Map) return [...reply.entries()].map(([k, v]) => [text(k), v])
  if (typeof reply === 'object' && !Buffer.isBuffer(reply)) return Object.entries(reply)
  return []
}

function text (v) {
  if (Buffer.isBuffer(v)) return v.toString('utf8')
  if (v instanceof Uint8Array) return Buffer.from(v).toString('utf8')
  return v == null ? v : String(v)
}

function num (v) {
  if (typeof v === 'number') return v
  if (typeof v === 'bigint') return Number(v)
  return Number(text(v))
}

/** Flat [id, score, ...] (TRENDING/SURFACE WITHSCORES) as [{ item, score }]. */
function scored (reply) {
  const out = []
  for (let i = 0; i + 1 < reply.length; i += 2) out.push({ item: text(reply[i]), score: num(reply[i + 1]) })
  return out
}

/** An INBOX entry: `delivered` (a boolean) only when the server sent it. */
function notification (entry) {
  const o = {}
  for (const [k, v] of pairs(entry)) {
    if (k === 'published_ms') o[k] = num(v)
    else if (k === 'delivered') o[k] = num(v) === 1
    else o[k] = text(v)
  }
  return o
}

const STATS_NUMBERS = ['events', 'active', 'active_window_minutes', 'trending_tracked', 'trend_top_k', 'trend_half_life']

/** A STATS reply as a plain object (`views_per_minute` an array of numbers, oldest first). */
function statsReply (reply) {
  const out = {}
  for (const [k, v] of pairs(reply)) {
    if (k === 'views_per_minute') out[k] = (Array.isArray(v) ? v : []).map(num)
    else if (STATS_NUMBERS.includes(k)) out[k] = num(v)
    else out[k] = Array.isArray(v) ? v : text(v)
  }
  return out
}

/**
 * The primaries' STATS as one: `events` and `active` summed (a session is one key, active on one
 * primary only: exact up to each primary's sketch error), `views_per_minute` summed minute by
 * minute (aligned on the current minute; every primary is asked at one AT), `trending_tracked`
 * the fullest primary's, the sizing (`active_window_minutes`, `trend_top_k`, `trend_half_life`)
 * the first primary's, and `nodes`: each primary's own reply by `host:port`.
 */
function mergeStats (named) {
  const replies = named.map(([, st]) => st)
  if (!replies.length) throw new Error('session-store-redis: no primary replied')
  const first = replies[0]
  const width = Math.max(...replies.map((st) => st.views_per_minute.length))
  const vpm = new Array(width).fill(0)
  for (const st of replies) {
    const offset = width - st.views_per_minute.length
    st.views_per_minute.forEach((v, i) => { vpm[offset + i] += v })
  }
  return {
    ...first,
    events: replies.reduce((a, st) => a + st.events, 0),
    active: replies.reduce((a, st) => a + st.active, 0),
    views_per_minute: vpm,
    trending_tracked: Math.max(...replies.map((st) => st.trending_tracked)),
    nodes: Object.fromEntries(named)
  }
}

/** How many items a cluster helper asks each primary for: max(2n, n + 10), at most 1000. */
function trendingPerNodeCount (count) {
  if (count > 1000) return count // refused by the server, as asked
  return Math.min(Math.max(count * 2, count + 10), 1000)
}

/**
 * Each primary's TRENDING WITHSCORES reply (flat arrays) as one: an item's scores summed over
 * the primaries, ordered by summed score (highest first), then id (bytewise); the first `count`.
 */
function mergeTrending (replies, count) {
  const totals = new Map() // binary id -> { id: Buffer, score }
  for (const reply of replies) {
    for (let i = 0; i + 1 < reply.length; i += 2) {
      const id = Buffer.isBuffer(reply[i]) ? reply[i] : Buffer.from(String(reply[i]))
      const k = id.toString('latin1')
      const t = totals.get(k)
      if (t) t.score += num(reply[i + 1])
      else totals.set(k, { id, score: num(reply[i + 1]) })
    }
  }
  return [...totals.values()]
    .sort((a, b) => (b.score - a.score) || Buffer.compare(a.id, b.id))
    .slice(0, count)
    .map(({ id, score }) => ({ item: text(id), score }))
}

function surfaceArgs (command, key, catalog, opts) {
  const args = [command, key, 'FROM', catalog]
  if (opts.count != null) args.push('COUNT', String(opts.count))
  if (opts.category != null) args.push('CATEGORY', String(opts.category))
  if (opts.explore != null) args.push('EXPLORE', String(opts.explore))
  if (opts.maxImpressions != null) args.push('MAXIMPRESSIONS', String(opts.maxImpressions))
  if (opts.boostTrending != null) args.push('BOOST', 'TRENDING', String(opts.boostTrending))
  if (opts.nomark) args.push('NOMARK')
  if (opts.withScores) args.push('WITHSCORES')
  return args
}

/** A TOUCH reply as a plain object; `fields` stays an array of Buffers (or null). */
function touchReply (reply) {
  if (reply == null) return null
  const out = {}
  for (const [name, value] of pairs(reply)) {
    out[name] = name === 'fields' ? value : num(value)
  }
  return out
}

// ---------------------------------------------------------------------------------------------

class SessionStore extends BaseStore {
  /**
   * @param {object} opts
   * @param {object} opts.client node-redis (4/5/6, client or cluster) or ioredis (Redis or Cluster)
   * @param {string} [opts.prefix='sess:']
   * @param {number|function} [opts.ttl=86400] seconds, or (sess) => seconds; the cookie's expiry wins
   * @param {number|function} [opts.absoluteTtl] seconds, or (sess) => seconds: the session's
   *   maximum age from its creation (MAXAGE); default: no cap beyond the cookie's (ten years)
   * @param {boolean} [opts.disableTouch=false]
   * @param {boolean} [opts.disableTTL=false] refused: native sessions always expire
   * @param {{parse: function, stringify: function, binary?: boolean}} [opts.serializer=JSON]
   * @param {number} [opts.scanCount=100]
   * @param {function} [opts.user] (sess) => principal or null: registers the session under it
   * @param {string} [opts.field='sess'] the session field holding the serialized session
   * @param {boolean} [opts.upgradeLegacy=true] upgrade connect-redis string sessions on first read
   */
  constructor (opts = {}) {
    super()
    if (!opts.client) throw new TypeError('session-store-redis: the `client` option is required')
    if (opts.disableTTL) {
      throw new Error('session-store-redis: disableTTL is not supported: sessions of the session ' +
        'module always expire (min(last seen + idle, created + max age)); use a long `ttl` ' +
        `(at most ${MAX_LIFETIME_S} seconds) instead`)
    }
    this.client = opts.client
    this.prefix = opts.prefix == null ? 'sess:' : opts.prefix
    this.scanCount = opts.scanCount || 100
    this.serializer = opts.serializer || JSON
    this.ttl = opts.ttl || 86400
    this.absoluteTtl = opts.absoluteTtl
    this.disableTouch = opts.disableTouch || false
    this.disableTTL = false
    this.field = opts.field || 'sess'
    this.upgradeLegacy = opts.upgradeLegacy !== false
    this._user = opts.user
    this._waiting = null
    this.send = makeSender(this.client)
  }

  key (sid) {
    return this.prefix + sid
  }

  /** The principal a session belongs to (the `user` option), or null. */
  user (sess) {
    if (typeof this._user !== 'function' || sess == null) return null
    const u = this._user(sess)
    return u == null || u === '' ? null : String(u)
  }

  /** Lifetime in milliseconds, as connect-redis computes it (the cookie's expiry first). */
  getTTLms (sess) {
    if (typeof this.ttl === 'function') return Math.ceil(Number(this.ttl(sess)) * 1000)
    if (sess && sess.cookie && sess.cookie.expires) {
      return Number(new Date(sess.cookie.expires)) - Date.now()
    }
    return Math.ceil(Number(this.ttl) * 1000)
  }

  /** connect-redis's `getTTL` (seconds, rounded up). */
  getTTL (sess) {
    return Math.ceil(this.getTTLms(sess) / 1000)
  }

  _maxAgeMs (sess) {
    const v = typeof this.absoluteTtl === 'function' ? this.absoluteTtl(sess) : this.absoluteTtl
    const s = v == null ? MAX_LIFETIME_S : Math.min(Math.max(Number(v), 0.001), MAX_LIFETIME_S)
    return Math.ceil(s * 1000)
  }

  _parse (value) {
    if (value == null) return null
    return this.serializer.binary ? this.serializer.parse(value) : this.serializer.parse(text(value))
  }

  /** Runs `args` on the session's key; a legacy string session there is upgraded first. */
  async _onKey (key, args) {
    try {
      return await this.send(args, key)
    } catch (err) {
      if (!isWrongType(err) || !this.upgradeLegacy) throw err
      await this.send(['SESSION.UPGRADE', key, 'FIELD', this.field], key)
      return this.send(args, key)
    }
  }

  async get (sid, cb) {
    const key = this.key(sid)
    const waiting = this._waiting
    let ctx
    if (waiting && waiting.sessionID === sid) {
      ctx = waiting[CTX]
      this._waiting = null
    } else {
      ctx = context.getStore()
    }
    try {
      let value
      if (ctx && !this.disableTouch) {
        // One command: load the session, record the page view, slide the expiry.
        const args = ['SESSION.TOUCH', key, 'XX', 'WITHFIELDS', '1', this.field]
        if (ctx.event && !ctx.recorded) args.push(...eventArgs(ctx.event))
        const reply = touchReply(await this._onKey(key, args))
        if (reply == null) return optionalCb(null, null, cb)
        if (ctx.event) ctx.recorded = true
        ctx.view = reply
        ctx.touched.set(sid, Date.now() + reply.ttl_ms)
        value = reply.fields && reply.fields[0]
      } else {
        const reply = await this._onKey(key, ['SESSION.GET', key, this.field])
        value = Array.isArray(reply) ? reply[0] : null
        if (reply == null) return optionalCb(null, null, cb)
      }
      if (value == null) return optionalCb(null, null, cb)
      return optionalCb(null, await this._parse(value), cb)
    } catch (err) {
      return optionalCb(err, null, cb)
    }
  }

  async set (sid, sess, cb) {
    const key = this.key(sid)
    const ttlMs = this.getTTLms(sess)
    try {
      if (!(ttlMs > 0)) return this.destroy(sid, cb)
      const idle = Math.min(Math.ceil(ttlMs), MAX_LIFETIME_S * 1000)
      const value = await this.serializer.stringify(sess)
      const args = ['SESSION.TOUCH', key, 'PIDLE', String(idle), 'PMAXAGE', String(this._maxAgeMs(sess)),
        'REPLACE', '1', this.field, value]
      const user = this.user(sess)
      if (user != null) args.push('USER', user)
      const ctx = ctxOf(sess)
      // A visitor's first view is recorded when its session is first saved (no orphan sessions).
      if (ctx && ctx.event && !ctx.recorded && ctx.sid === sid) {
        args.push(...eventArgs(ctx.event))
        ctx.recorded = true
      }
      if (context.getStore()) await this._carryOver(sid, key)
      const reply = touchReply(await this._onKey(key, args))
      if (ctx && ctx.sid === sid) {
        ctx.view = reply
        ctx.touched.set(sid, Date.now() + reply.ttl_ms)
      }
      return optionalCb(null, null, cb)
    } catch (err) {
      return optionalCb(err, null, cb)
    }
  }

  async touch (sid, sess, cb) {
    const key = this.key(sid)
    if (this.disableTouch) return optionalCb(null, null, cb)
    try {
      const ttlMs = this.getTTLms(sess)
      const ctx = ctxOf(sess)
      const done = ctx && ctx.touched.get(sid)
      // The load already slid the expiry with the stored idle timeout: skip the second command
      // unless this request changed the lifetime.
      if (done && Math.abs(Date.now() + ttlMs - done) <= 2000) return optionalCb(null, null, cb)
      if (!(ttlMs > 0)) return this.destroy(sid, cb)
      const idle = Math.min(Math.ceil(ttlMs), MAX_LIFETIME_S * 1000)
      await this._onKey(key, ['SESSION.TOUCH', key, 'XX', 'PIDLE', String(idle)])
      return optionalCb(null, null, cb)
    } catch (err) {
      return optionalCb(err, null, cb)
    }
  }

  async destroy (sid, cb) {
    const key = this.key(sid)
    try {
      const ctx = context.getStore()
      const request = ctx && ctx.fastifyRequest
      if (request && request.session && request.session.sessionId === sid) {
        // @fastify/session destroys the request's own session: logout, or the first half of its
        // regenerate (destroy old, then set new). Keep the session's saved form (one pipelined
        // round trip with the DEL) so that a set of a new id that follows in this request, as
        // regenerate's does, can carry the activity over; the old id is dead either way.
        const [dump, pttl] = await Promise.all([
          this.send(['DUMP', key], key),
          this.send(['PTTL', key], key),
          this.send(['DEL', key], key)
        ])
        ctx.carry = dump == null ? null : { sid, dump, pttl: num(pttl) }
      } else {
        await this.send(['DEL', key], key)
      }
      return optionalCb(null, null, cb)
    } catch (err) {
      return optionalCb(err, null, cb)
    }
  }

  /**
   * The set of @fastify/session's regenerate: the request's session is still the one destroyed
   * just before (regenerate swaps request.session only after this set), and `sid` is the new id.
   * Restores the old session's saved form at the new key (the set then replaces its fields).
   */
  async _carryOver (sid, key) {
    const ctx = context.getStore()
    const carry = ctx && ctx.carry
    if (!carry) return
    ctx.carry = null
    const request = ctx.fastifyRequest
    if (carry.sid === sid || !request || !request.session || request.session.sessionId !== carry.sid) return
    if (!(carry.pttl > 0)) return
    try {
      await this.send(['RESTORE', key, String(carry.pttl), carry.dump], key)
    } catch (err) {
      // BUSYKEY: the new id is taken (never by a fresh random id): keep what is there
      if (!(typeof err.message === 'string' && err.message.startsWith('BUSYKEY'))) throw err
    }
  }

  /**
   * express-session's regenerate (login, against session fixation), keeping the activity: the
   * old session moves to the new id with its fields cleared (`SESSION.ROTATE ... CLEARFIELDS`;
   * across cluster slots: `_moveAcrossSlots`).
   */
  regenerate (req, fn) {
    const oldKey = this.key(req.sessionID)
    this.generate(req)
    const newKey = this.key(req.sessionID)
    const ctx = req[CTX] || context.getStore()
    if (ctx) ctx.sid = req.sessionID
    this._rotate(oldKey, newKey).then(() => fn(), fn)
  }

  async _rotate (oldKey, newKey) {
    if (isCluster(this.client) && slotOf(oldKey) !== slotOf(newKey)) return this._moveAcrossSlots(oldKey, newKey)
    try {
      await this.send(['SESSION.ROTATE', oldKey, newKey, 'CLEARFIELDS'], oldKey)
    } catch (err) {
      if (typeof err.message === 'string' && err.message.startsWith('CROSSSLOT')) return this._moveAcrossSlots(oldKey, newKey)
      // a legacy string (WRONGTYPE) or a taken new id: connect-redis's destroy
      await this.send(['DEL', oldKey], oldKey)
    }
  }

  /**
   * ROTATE CLEARFIELDS where the two keys live in different slots (Redis Cluster): DUMP + PTTL +
   * DEL of the old key (pipelined: one round trip, in order on the old key's node), then RESTORE
   * at the new key with the remaining PTTL + TOUCH XX REPLACE 0 (pipelined on the new key's
   * node). Not atomic: see README "Redis Cluster". The old id dies first, so a failure in
   * between loses the activity, never the protection against session fixation.
   */
  async _moveAcrossSlots (oldKey, newKey) {
    const [dump, pttl] = await Promise.all([
      this.send(['DUMP', oldKey], oldKey),
      this.send(['PTTL', oldKey], oldKey),
      this.send(['DEL', oldKey], oldKey)
    ])
    const ms = num(pttl)
    if (dump == null || !(ms > 0)) return
    const clear = ['SESSION.TOUCH', newKey, 'XX', 'REPLACE', '0']
    const [restored, cleared] = await Promise.allSettled([
      this.send(['RESTORE', newKey, String(ms), dump], newKey),
      this.send(clear, newKey)
    ])
    if (restored.status === 'rejected') {
      const err = restored.reason
      if (typeof err.message === 'string' && err.message.startsWith('BUSYKEY')) return
      throw err
    }
    if (cleared.status === 'rejected') {
      // a legacy string moved to the new key: upgrade it, then clear its fields
      if (!isWrongType(cleared.reason)) throw cleared.reason
      await this._onKey(newKey, clear)
    }
  }

  async clear (cb) {
    try {
      const cluster = isCluster(this.client)
      for (const [node, list] of await this._allKeys()) {
        // in a cluster one DEL names keys of one slot only (else CROSSSLOT)
        const groups = new Map()
        for (const k of list) {
          const g = cluster ? slotOf(k) : 0
          if (!groups.has(g)) groups.set(g, [])
          groups.get(g).push(k)
        }
        for (const keys of groups.values()) {
          for (let i = 0; i < keys.length; i += 500) {
            await node(['DEL', ...keys.slice(i, i + 500)], keys[i])
          }
        }
      }
      return optionalCb(null, null, cb)
    } catch (err) {
      return optionalCb(err, null, cb)
    }
  }

  async length (cb) {
    try {
      let n = 0
      for (const [, list] of await this._allKeys()) n += list.length
      return optionalCb(null, n, cb)
    } catch (err) {
      return optionalCb(err, null, cb)
    }
  }

  async ids (cb) {
    try {
      const out = []
      for (const [, list] of await this._allKeys()) {
        for (const k of list) out.push(k.substring(this.prefix.length))
      }
      return optionalCb(null, out, cb)
    } catch (err) {
      return optionalCb(err, null, cb)
    }
  }

  async all (cb) {
    try {
      const out = []
      for (const [node, list] of await this._allKeys()) {
        // one pipelined batch of reads per node (legacy strings read with GET)
        const values = await Promise.all(list.map(async (k) => {
          try {
            const r = await node(['SESSION.GET', k, this.field], k)
            return Array.isArray(r) ? r[0] : null
          } catch (err) {
            if (!isWrongType(err)) throw err
            return node(['GET', k], k)
          }
        }))
        for (let i = 0; i < list.length; i++) {
          if (values[i] == null) continue
          const sess = await this._parse(values[i])
          if (sess == null) continue
          sess.id = list[i].substring(this.prefix.length)
          out.push(sess)
        }
      }
      return optionalCb(null, out, cb)
    } catch (err) {
      return optionalCb(err, null, cb)
    }
  }

  /** A sender per primary: the client itself, or each primary of a cluster. */
  async _primaries () {
    return (await this._namedPrimaries()).map(([, send]) => send)
  }

  /** [name, sender] per primary (`host:port`; `''` for a client that is not a cluster). */
  async _namedPrimaries () {
    const nodes = []
    if ('masters' in this.client) {
      for (const master of this.client.masters) {
        nodes.push([`${master.host}:${master.port}`, makeSender(await this.client.nodeClient(master))])
      }
    } else if (isIoCluster(this.client)) {
      for (const node of this.client.nodes('master')) nodes.push([`${node.options.host}:${node.options.port}`, makeSender(node)])
    } else {
      nodes.push(['', this.send])
    }
    return nodes
  }

  /**
   * A registry command (catalogs, groups): in a cluster to ONE primary (the first), which gives
   * the change to the others over the cluster bus; the client itself otherwise.
   */
  async _registry (args) {
    if (!isCluster(this.client)) return this.send(args)
    const [first] = await this._namedPrimaries()
    if (!first) throw new Error('session-store-redis: the cluster has no primary')
    return first[1](args)
  }

  /**
   * SESSION.TRENDING: the catalog's most trending items (ids, or [{ item, score }] with
   * withScores). In a cluster each primary counts the events of its own slots: every primary is
   * asked WITHSCORES for max(2n, n + 10) items (at most 1000) at one AT (`at`, else now), each
   * item's scores are summed and the first `count` by summed score, then id, returned. An item
   * just below the cut on every primary can still be missed (asking for more makes it unlikely).
   */
  async trending (catalog, opts = {}) {
    const count = opts.count == null ? 10 : Number(opts.count)
    const tail = opts.category != null ? ['CATEGORY', String(opts.category)] : []
    if (!isCluster(this.client)) {
      const args = ['SESSION.TRENDING', catalog]
      if (opts.count != null) args.push('COUNT', String(count))
      args.push(...tail)
      if (opts.withScores) args.push('WITHSCORES')
      if (opts.at != null) args.push('AT', String(opts.at))
      const reply = await this.send(args)
      return opts.withScores ? scored(reply) : reply.map(text)
    }
    const args = ['SESSION.TRENDING', catalog, 'COUNT', String(trendingPerNodeCount(count)), ...tail,
      'WITHSCORES', 'AT', String(opts.at != null ? opts.at : Date.now())]
    const replies = await Promise.all((await this._primaries()).map((send) => send(args)))
    const top = mergeTrending(replies, count)
    return opts.withScores ? top : top.map((x) => x.item)
  }

  /** SESSION.STATS as a plain object; in a cluster every primary's, merged (see mergeStats). */
  async stats (opts = {}) {
    if (!isCluster(this.client)) {
      const args = ['SESSION.STATS']
      if (opts.at != null) args.push('AT', String(opts.at))
      return { ...statsReply(await this.send(args)), nodes: {} }
    }
    const args = ['SESSION.STATS', 'AT', String(opts.at != null ? opts.at : Date.now())]
    const named = await Promise.all((await this._namedPrimaries()).map(async ([name, send]) => [name, statsReply(await send(args))]))
    return mergeStats(named)
  }

  /**
   * SESSION.CATALOG ADD: adds or replaces one item of a catalog (registry: one primary in a
   * cluster). opts: { score, categories, ttl (seconds), expireat (unix ms) }. True when new.
   */
  async catalogAdd (catalog, item, opts = {}) {
    const args = ['SESSION.CATALOG', 'ADD', String(catalog), String(item)]
    if (opts.score != null) args.push('SCORE', String(opts.score))
    if (opts.categories) args.push('CATEGORIES', String(opts.categories.length), ...opts.categories.map(String))
    if (opts.ttl != null && opts.expireat != null) throw new TypeError('give ttl or expireat, not both')
    if (opts.ttl != null) args.push('TTL', String(opts.ttl))
    if (opts.expireat != null) args.push('EXPIREAT', String(opts.expireat))
    return num(await this._registry(args)) === 1
  }

  /** SESSION.CATALOG DEL: removes items; resolves to how many were removed. */
  async catalogDel (catalog, ...items) {
    if (items.length === 0) throw new TypeError('name at least one item')
    return num(await this._registry(['SESSION.CATALOG', 'DEL', String(catalog), ...items.map(String)]))
  }

  /**
   * SESSION.NOTIFYGROUP: one notification to every member of `group` (registry: one primary in a
   * cluster). opts: { ttl (seconds), expireat (unix ms), maxlen, at, joinedBefore (unix ms or
   * 'now': only members who joined before it), joinedAfter (unix ms) }. True when stored, false
   * when the id is already live.
   */
  async notifyGroup (group, id, payload, opts = {}) {
    const args = ['SESSION.NOTIFYGROUP', String(group), String(id), Buffer.isBuffer(payload) ? payload : String(payload)]
    if (opts.ttl != null && opts.expireat != null) throw new TypeError('give ttl or expireat, not both')
    if (opts.ttl != null) args.push('TTL', String(opts.ttl))
    if (opts.expireat != null) args.push('EXPIREAT', String(opts.expireat))
    if (opts.maxlen != null) args.push('MAXLEN', String(opts.maxlen))
    if (opts.at != null) args.push('AT', String(opts.at))
    if (opts.joinedBefore != null) {
      const now = String(opts.joinedBefore).toLowerCase() === 'now'
      args.push('JOINEDBEFORE', now ? 'NOW' : String(opts.joinedBefore))
    }
    if (opts.joinedAfter != null) args.push('JOINEDAFTER', String(opts.joinedAfter))
    return num(await this._registry(args)) === 1
  }

  /** SESSION.GROUP LIST: the notification groups, sorted. */
  async groupList () {
    return (await this._registry(['SESSION.GROUP', 'LIST'])).map(text).sort()
  }

  /** SESSION.GROUP INFO: { notifications, memory, first_seq, last_seq }; rejects for a missing group. */
  async groupInfo (group) {
    const out = {}
    for (const [k, v] of pairs(await this._registry(['SESSION.GROUP', 'INFO', String(group)]))) out[k] = num(v)
    return out
  }

  /** SESSION.GROUP DROP: true when the group existed. */
  async groupDrop (group) {
    return num(await this._registry(['SESSION.GROUP', 'DROP', String(group)])) === 1
  }

  /** [send, keys] per primary: the client itself, or each primary of a cluster. */
  async _allKeys () {
    const match = this.prefix + '*'
    const out = []
    for (const node of await this._primaries()) {
      const seen = new Set()
      let cursor = '0'
      do {
        const reply = await node(['SCAN', cursor, 'MATCH', match, 'COUNT', String(this.scanCount)])
        cursor = text(reply[0])
        for (const k of reply[1]) seen.add(text(k))
      } while (cursor !== '0')
      out.push([node, [...seen]])
    }
    return out
  }
}

function eventArgs (event) {
  const args = ['EVENT', String(event.item)]
  const cats = event.categories || []
  if (cats.length) args.push('CATEGORIES', String(cats.length), ...cats.map(String))
  return args
}

/** `{ item, categories }` from what the `event` option returned. */
function normalizeEvent (e) {
  if (e == null || e === false) return null
  if (typeof e === 'string' || Buffer.isBuffer(e)) return { item: e, categories: [] }
  if (e.item == null) return null
  return { item: e.item, categories: e.categories || [] }
}

// ---------------------------------------------------------------------------------------------

class Intelligence {
  constructor (store, req, ctx) {
    this.store = store
    this.req = req
    this.ctx = ctx
  }

  get key () {
    return this.store.key(this.req.sessionID)
  }

  /** The reply of this request's TOUCH (events, unique, seen_before, idle_ms, ttl_ms, pending). */
  get view () {
    const v = this.ctx.view
    if (!v) return null
    const { fields, ...rest } = v
    return rest
  }

  _send (args, opts) {
    return this.store.send(args, this.key, opts)
  }

  /** Unseen content, best first: item ids (strings), or [{item, score}] with withScores. */
  async surface (catalog, opts = {}) {
    const reply = await this._send(surfaceArgs('SESSION.SURFACE', this.key, catalog, opts))
    return opts.withScores ? scored(reply) : reply.map(text)
  }

  /**
   * SESSION.SURFACE_RO: surface() that records nothing (no impression). In a cluster it goes to a
   * replica of the key's slot only when the client reads from replicas (node-redis `useReplicas:
   * true`, ioredis `scaleReads: 'slave' | 'all'`), else to the key's primary.
   */
  async surfaceRo (catalog, opts = {}) {
    const { nomark, ...rest } = opts
    const reply = await this._send(surfaceArgs('SESSION.SURFACE_RO', this.key, catalog, rest), { readonly: true })
    return opts.withScores ? scored(reply) : reply.map(text)
  }

  /** Per item: true = probably seen, false = certainly not. */
  async seen (items) {
    const list = Array.isArray(items) ? items : [items]
    if (!list.length) return []
    const reply = await this._send(['SESSION.SEEN', this.key, ...list.map(String)])
    return reply.map((v) => num(v) === 1)
  }

  /**
   * Notifications, oldest first: [{group, id, payload, published_ms}], the undelivered ones,
   * marked delivered. With `peek` (or its synonym `unread`): every live one not yet acknowledged,
   * delivered or not, each with `delivered` (a boolean); marks nothing.
   */
  async inbox (opts = {}) {
    const args = ['SESSION.INBOX', this.key]
    if (opts.count != null) args.push('COUNT', String(opts.count))
    if (opts.peek || opts.unread) args.push('PEEK')
    if (opts.at != null) args.push('AT', String(opts.at))
    return (await this._send(args)).map(notification)
  }

  /**
   * SESSION.ACK: marks delivered notifications of `group` read, `{ upto: id }` (every one up to
   * it) or `{ ids: [...] }`; resolves to how many were newly marked.
   */
  async ack (group, opts = {}) {
    const hasIds = opts.ids != null
    if ((opts.upto != null) === hasIds) throw new TypeError('session-store-redis: ack: give upto or ids')
    const args = ['SESSION.ACK', this.key, String(group)]
    if (hasIds) {
      if (!opts.ids.length) throw new TypeError('session-store-redis: ack: ids must not be empty')
      args.push('IDS', String(opts.ids.length), ...opts.ids.map(String))
    } else {
      args.push('UPTO', String(opts.upto))
    }
    if (opts.at != null) args.push('AT', String(opts.at))
    return num(await this._send(args))
  }

  /** ENRICH: the calculated data as a plain object; null when the session does not exist. */
  async enrich (opts = {}) {
    const args = ['SESSION.ENRICH', this.key]
    if (opts.attrs != null) args.push('ATTRS', typeof opts.attrs === 'string' ? opts.attrs : JSON.stringify(opts.attrs))
    if (opts.join && opts.join.length) args.push('JOIN', String(opts.join.length), ...opts.join)
    if (opts.leave && opts.leave.length) args.push('LEAVE', String(opts.leave.length), ...opts.leave)
    const reply = await this._send(args)
    return reply == null ? null : JSON.parse(text(reply))
  }

  _userOf (user) {
    return user != null ? String(user) : this.store.user(this.req.session)
  }

  /** The session ids of this session's user (or of `user`). */
  async sessions (user) {
    const u = this._userOf(user)
    if (u == null) return []
    // The per-user index is per node: every primary of a cluster, merged. Each is paged
    // (SESSIONS u CURSOR c COUNT n): a whole listing is refused past the server's
    // session.max-unpaged-sessions, and a page never holds the server for long.
    const p = this.store.prefix
    const out = []
    for (const node of await this.store._primaries()) {
      let cursor = '0'
      do {
        const [next, keys] = await node(['SESSION.SESSIONS', u, 'CURSOR', cursor, 'COUNT', '1000'])
        cursor = text(next)
        for (const k of keys.map(text)) if (k.startsWith(p)) out.push(k.substring(p.length))
      } while (cursor !== '0')
    }
    return out.sort()
  }

  /** Log out everywhere: deletes every session of the user (on every primary); resolves to the count. */
  async revokeAll (user) {
    const u = this._userOf(user)
    if (u == null) return 0
    // On every primary, in bounded steps (REVOKE u COUNT n until 0 remain), as the server asks
    // past session.max-unpaged-sessions.
    const counts = await Promise.all((await this.store._primaries()).map(async (node) => {
      let deleted = 0
      let before = Infinity
      for (;;) {
        const [gone, left] = await node(['SESSION.REVOKE', u, 'COUNT', '1000'])
        deleted += num(gone)
        const remaining = num(left)
        if (remaining === 0 || remaining >= before) return deleted
        before = remaining
      }
    }))
    return counts.reduce((a, n) => a + n, 0)
  }
}

/**
 * Express/connect middleware: mount it BEFORE the session middleware. It records each page view
 * (`event(req)` -> item string, {item, categories} or null) in the command that loads the session,
 * and sets `req.intelligence`.
 */
function intelligence (options = {}) {
  const { store } = options
  if (!store || !(store instanceof SessionStore)) {
    throw new TypeError('session-store-redis: intelligence({ store }) needs the SessionStore the session middleware uses')
  }
  const event = typeof options.event === 'function' ? options.event : () => null
  return function intelligenceMiddleware (req, res, next) {
    const ctx = { event: normalizeEvent(event(req)), recorded: false, view: null, touched: new Map(), sid: null }
    req.intelligence = new Intelligence(store, req, ctx)
    // express-session sets req.sessionID before it saves; remember it for set()
    Object.defineProperty(ctx, 'sid', {
      get: () => ctx._sid || req.sessionID,
      set: (v) => { ctx._sid = v },
      enumerable: true
    })
    req[CTX] = ctx
    // express-session's get runs synchronously inside next(); a later get falls back to a read
    store._waiting = req
    try {
      next()
    } finally {
      if (store._waiting === req) store._waiting = null
    }
  }
}

/** Runs `fn` inside a page-view context (for frameworks without connect middleware). */
function withPageView (store, req, ev, fn) {
  const ctx = { event: normalizeEvent(ev), recorded: false, view: null, touched: new Map(), sid: null }
  req.intelligence = new Intelligence(store, req, ctx)
  Object.defineProperty(ctx, 'sid', {
    get: () => ctx._sid || req.sessionID || (req.session && req.session.sessionId),
    set: (v) => { ctx._sid = v },
    enumerable: true
  })
  return context.run(ctx, fn)
}

/**
 * Fastify: an `onRequest` hook that opens the page-view context; add it before registering
 * @fastify/session (`fastify.addHook('onRequest', fastifyIntelligence({ store, event }))`).
 */
function fastifyIntelligence (options = {}) {
  const { store } = options
  if (!store || !(store instanceof SessionStore)) {
    throw new TypeError('session-store-redis: fastifyIntelligence({ store }) needs the SessionStore @fastify/session uses')
  }
  const event = typeof options.event === 'function' ? options.event : () => null
  return function onRequest (request, reply, done) {
    const ctx = { event: normalizeEvent(event(request)), recorded: false, view: null, touched: new Map(), fastifyRequest: request, carry: null }
    Object.defineProperty(ctx, 'sid', {
      get: () => ctx._sid || (request.session && request.session.sessionId),
      set: (v) => { ctx._sid = v },
      enumerable: true
    })
    request.intelligence = new Intelligence(store, {
      get sessionID () { return request.session && request.session.sessionId },
      get session () { return request.session }
    }, ctx)
    context.enterWith(ctx)
    done()
  }
}

module.exports = { SessionStore, intelligence, withPageView, fastifyIntelligence, Intelligence, SESSION_TYPE, MAX_LIFETIME_S, slotOf, mergeTrending, mergeStats, trendingPerNodeCount }
module.exports.default = SessionStore
