'use strict'
// One variant of the benchmark app, in its own process: node bench/app.js <variant> <redis-url>.
// Prints "listening <port>" when ready. Variants:
//   connect-redis  express-session + connect-redis, no activity
//   multi          the same + the stock 8-command MULTI page view (SPEC section 6)
//   native         express-session + SessionStore + intelligence()

const express = require('express')
const session = require('express-session')
const { createClient } = require('redis')

const [variant, url] = process.argv.slice(2)

async function main () {
  const client = createClient({ url })
  await client.connect()
  let store
  const app = express()
  if (variant === 'native') {
    const { SessionStore, intelligence } = require('..')
    store = new SessionStore({ client })
    app.use(intelligence({ store, event: (req) => req.path.startsWith('/p/') ? { item: req.path.slice(3), categories: ['news', 'golf'] } : null }))
  } else {
    const { RedisStore } = require('connect-redis')
    store = new RedisStore({ client, prefix: 'legacy:' })
  }
  app.use(session({ store, secret: 'bench', resave: false, saveUninitialized: false, cookie: { maxAge: 3600000 } }))
  app.get('/login', (req, res) => { req.session.user = 'u' + Math.floor(Math.random() * 1e6); res.end('ok') })
  app.get('/p/:item', async (req, res, next) => {
    try {
      if (variant === 'multi') {
        // the published pattern: 8 commands per page view in one MULTI
        const k = 'act:' + req.sessionID
        const item = req.params.item
        const minute = Math.floor(Date.now() / 60000) % 60
        const hour = new Date().getUTCHours()
        await client.multi()
          .pfAdd(k + ':hll', item)
          .incr(k + ':events')
          .sendCommand(['BITFIELD', k + ':min', 'SET', 'u1', String(minute), '1'])
          .sendCommand(['BITFIELD', k + ':hour', 'INCRBY', 'u16', String(hour * 16), '1'])
          .pfCount(k + ':hll')
          .sAdd(k + ':seen', item)
          .hSet(k + ':interests', 'news', '1')
          .expire(k + ':events', 3600)
          .exec()
      }
      res.json({ user: req.session.user || null })
    } catch (e) { next(e) }
  })
  const srv = app.listen(0, '127.0.0.1', () => console.log('listening ' + srv.address().port))
}

main().catch((e) => { console.error(e); process.exit(1) })
