'use strict'
// The demo shop: an Express site on session-store-redis (SessionStore + intelligence()).
//   REDIS_URL=redis://127.0.0.1:6379 PORT=3000 node server.js
// Every page view is one SESSION.TOUCH (load + record + slide the expiry); the pages then ask the
// module what it knows: ENRICH (interests, engagement, segments), INFO (lifecycle, hours),
// SURFACE (For you, Featured), SEEN (combos), INBOX (notifications), SESSIONS/REVOKE (devices).

const express = require('express')
const session = require('express-session')
const { createClient } = require('redis')
const { SessionStore, intelligence } = require('session-store-redis')
const seed = require('./catalog')
const v = require('./views')

const STYLE = `
*{box-sizing:border-box}body{margin:0;font:15px/1.45 system-ui,sans-serif;color:#1d232b;background:#f6f4ef}
header{display:flex;gap:1.5em;align-items:center;padding:.7em 1.5em;background:#2d3a3a;color:#fff}
header a{color:#fff;text-decoration:none;margin-right:1em}.brand{font-weight:700;font-size:1.15em}
.who{margin-left:auto;display:flex;gap:.6em;align-items:center}.who form{margin:0}
button{font:inherit;padding:.3em .8em;border-radius:6px;border:1px solid #99a;background:#fff;cursor:pointer}
.banner{background:#ffe28a;padding:.7em 1.5em;border-bottom:1px solid #e0c060}
.flash{background:#d9f0dc;padding:.6em 1.5em}.combo{background:#fde4e4;padding:.7em 1em;border-radius:8px;margin:.6em 0}
.page{display:flex;gap:1.5em;padding:1.2em 1.5em;align-items:flex-start}main{flex:1;min-width:0}
aside{width:290px;background:#fff;border-radius:10px;padding:1em 1.2em;box-shadow:0 1px 3px #0002}
aside h2{margin:0 0 .4em;font-size:1.15em}aside h3{margin:.9em 0 .3em;font-size:.95em;color:#566}
h1{margin:.2em 0 .5em}section h2{font-size:1.1em;margin:1em 0 .4em}
.cards{display:grid;grid-template-columns:repeat(auto-fill,minmax(150px,1fr));gap:.7em}
.card{display:flex;flex-direction:column;gap:.2em;background:#fff;border-radius:8px;padding:.7em;text-decoration:none;color:inherit;box-shadow:0 1px 3px #0002}
.card:hover{box-shadow:0 2px 8px #0003}.cat{font-size:.75em;text-transform:uppercase;color:#8a6d3b;letter-spacing:.04em}
.stats{display:grid;grid-template-columns:1fr auto;gap:.15em .8em;margin:0}.stats dt{color:#566}.stats dd{margin:0;font-weight:600;text-align:right}
.interests{list-style:none;padding:0;margin:0}.interests li{display:grid;grid-template-columns:7em 1fr 3em;gap:.4em;align-items:center;font-size:.9em}
.meter{background:#eee;border-radius:4px;height:8px;overflow:hidden}.meter span{display:block;height:100%;background:#c98a3c}.w{text-align:right}
.tag{display:inline-block;background:#e6eef0;border-radius:10px;padding:0 .6em;font-size:.85em;margin:.1em 0}
.chart .track{fill:#eee}.chart .fill{fill:#4f9a6b}.chart .bar{fill:#c98a3c}.chart .now{fill:#8a4f1c}.chart .axis{stroke:#999}.chart text{font-size:8px;fill:#666}
.muted{color:#889}.small{font-size:.85em}footer{padding:1em 1.5em;color:#889;font-size:.85em}
form.admin{background:#fff;padding:1em;border-radius:8px;margin-bottom:1em;display:grid;gap:.5em;max-width:480px}
input,select{font:inherit;padding:.3em}pre{background:#fff;padding:1em;overflow:auto;font-size:.8em;max-height:24em}
.hero{background:#fff;border-radius:10px;padding:1em 1.2em}.devices li.current{font-weight:700}
`

const SEGMENTS = ['new', 'engaged', 'returning', 'dormant']
const NEWSLETTER = 'newsletter'

/**
 * Builds the app (not listening). Options: redisUrl, catalog (module catalog name), prefix (session
 * key prefix), secret, idleMs (cookie / idle lifetime).
 */
async function createDemo (opts = {}) {
  const catalog = opts.catalog || 'shop'
  const prefix = opts.prefix || 'shop:sess:'
  const itemsKey = `${catalog}:items` // a plain hash: metadata of the items added on the admin page
  const client = createClient({ url: opts.redisUrl || 'redis://127.0.0.1:6379' })
  client.on('error', (err) => console.error('redis:', err.message))
  await client.connect()
  const cmd = (...args) => client.sendCommand(args.map(String))

  // The catalog: code seed + items added on the admin page (kept in a hash, re-added at start).
  const categories = { ...seed.CATEGORIES }
  const items = new Map(seed.ITEMS.map((i) => [i.id, { ...i }]))
  for (const json of Object.values(await client.hGetAll(itemsKey))) {
    try {
      const it = JSON.parse(json)
      if (it && typeof it.id === 'string') {
        items.set(it.id, it)
        if (!categories[it.category]) categories[it.category] = it.category
      }
    } catch {}
  }
  await Promise.all([...items.values()].map((it) =>
    cmd('SESSION.CATALOG', 'ADD', catalog, it.id, 'SCORE', it.score, 'CATEGORIES', 1, it.category)))

  const store = new SessionStore({ client, prefix, user: (sess) => sess.user })
  const app = express()
  app.disable('x-powered-by')

  // Assets first: they never load a session, so they are never counted as page views.
  app.get('/style.css', (req, res) => res.type('text/css').set('Cache-Control', 'max-age=3600').send(STYLE))
  app.get('/favicon.ico', (req, res) => res.status(204).end())

  // The page view: an item page records its item and category in the command that loads the session.
  app.use(intelligence({
    store,
    event: (req) => {
      if (req.method !== 'GET') return null
      const m = /^\/item\/([^/]+)\/?$/.exec(req.path)
      if (!m) return null
      let id
      try { id = decodeURIComponent(m[1]) } catch { return null }
      const it = items.get(id)
      return it ? { item: it.id, categories: [it.category] } : null
    }
  }))
  app.use(session({
    store,
    name: 'shop.sid',
    secret: opts.secret || 'session-shop-demo',
    resave: false,
    saveUninitialized: false,
    cookie: { maxAge: opts.idleMs || 30 * 60 * 1000, httpOnly: true, sameSite: 'lax' }
  }))
  app.use(express.urlencoded({ extended: false, limit: '16kb' }))

  const save = (req) => new Promise((resolve, reject) => req.session.save((e) => (e ? reject(e) : resolve())))

  // A visitor's session starts with its first page (assets excluded): saving it here records
  // this page's view in the same TOUCH (the package records a first view when it first saves).
  async function ensureSession (req) {
    if (req.intelligence.view) return
    if (!req.session.since) req.session.since = Date.now()
    await save(req)
  }

  /** What every page shows: the panel, the banner, For you, Featured, combos. */
  async function pageData (req, { forYou = 6 } = {}) {
    await ensureSession(req)
    const intel = req.intelligence
    const key = intel.key
    const comboItems = seed.COMBOS.flatMap((c) => c.items)
    const [enrich, info, surfaced, featured, seen] = await Promise.all([
      intel.enrich(),
      cmd('SESSION.INFO', key).then((r) => (r == null ? null : JSON.parse(String(r)))),
      forYou ? intel.surface(catalog, { count: forYou, explore: 0.34 }) : [],
      cmd('SESSION.SURFACE', key, 'ITEMS', seed.FEATURED.length, ...seed.FEATURED, 'COUNT', 4).then((r) => r.map(String)),
      intel.seen(comboItems)
    ])
    // After ENRICH: the derived segments (interest:<category>, new, engaged) are current.
    const banners = await intel.inbox()
    const seenSet = new Set(comboItems.filter((_, i) => seen[i]))
    return {
      user: req.session.user,
      banners,
      enrich,
      info,
      forYou: surfaced.map((id) => items.get(id) || { id, title: id, category: '' }),
      featured: featured.map((id) => items.get(id)).filter(Boolean),
      combos: seed.COMBOS.filter((c) => c.items.every((i) => seenSet.has(i))),
      panel: v.sessionPanel({ view: intel.view, enrich, info, categories, now: Date.now() })
    }
  }

  function render (res, d, title, body, flash) {
    res.type('html').send(v.layout({ title, user: d.user, banners: d.banners, flash, body, panel: d.panel }))
  }

  const recs = (d) => v.section('For you', 'for-you', v.cards(d.forYou, categories, 'Nothing left to suggest.')) +
    v.section('Featured', 'featured', v.cards(d.featured, categories, 'You have seen every featured item.'))

  app.get('/', async (req, res) => {
    const d = await pageData(req)
    const byCat = Object.keys(categories).map((c) => {
      const list = [...items.values()].filter((i) => i.category === c).sort((a, b) => b.score - a.score)
      return `<section><h2><a href="/category/${encodeURIComponent(c)}">${v.esc(categories[c])}</a> <span class="muted small">${list.length} items</span></h2>${v.cards(list.slice(0, 4), categories)}</section>`
    }).join('')
    const flash = req.query.revoked != null ? `Logged out everywhere: ${Number(req.query.revoked) || 0} session(s) ended.` : null
    render(res, d, 'Home', `<h1>Welcome to the session shop</h1>${v.combos(d.combos)}${recs(d)}${byCat}`, flash)
  })

  app.get('/category/:cat', async (req, res) => {
    const c = req.params.cat
    if (!categories[c]) return notFound(req, res)
    const d = await pageData(req)
    const list = [...items.values()].filter((i) => i.category === c).sort((a, b) => b.score - a.score)
    render(res, d, categories[c], `<h1>${v.esc(categories[c])}</h1>${v.cards(list, categories)}${recs(d)}`)
  })

  app.get('/item/:id', async (req, res) => {
    const it = items.get(req.params.id)
    if (!it) return notFound(req, res)
    const d = await pageData(req)
    const view = req.intelligence.view
    const again = view && view.seen_before ? '<p class="muted small">You have looked at this before.</p>' : ''
    render(res, d, it.title, `<div class="hero" id="item" data-item="${v.esc(it.id)}"><span class="cat">${v.esc(categories[it.category] || it.category)}</span>
<h1>${v.esc(it.title)}</h1>${again}<p><a href="/category/${encodeURIComponent(it.category)}">More ${v.esc(categories[it.category] || it.category)}</a></p></div>
${v.combos(d.combos)}${recs(d)}`)
  })

  app.get('/session', async (req, res) => {
    const d = await pageData(req, { forYou: 0 })
    const intel = req.intelligence
    const devices = d.user ? await intel.sessions() : []
    const groups = (d.enrich && d.enrich.groups) || []
    const inNewsletter = groups.includes(NEWSLETTER)
    const body = `<h1>Your session</h1>
<p>Session id <code id="sid">${v.esc(req.sessionID.slice(0, 8))}…</code> (a new one at each sign-in; what you did before stays).</p>
${d.user
  ? `<h2>Your devices</h2><p id="device-count">${devices.length} signed-in session(s)</p><ul class="devices">${devices.map((s) =>
    `<li class="${s === req.sessionID ? 'current' : ''}">${v.esc(s.slice(0, 8))}…${s === req.sessionID ? ' (this device)' : ''}</li>`).join('')}</ul>`
  : '<p id="device-count">Not signed in. <a href="/login">Sign in</a> to see your devices.</p>'}
<h2>Groups</h2>
<form method="post" action="/newsletter"><button name="join" value="${inNewsletter ? '0' : '1'}">${inNewsletter ? 'Leave' : 'Join'} the newsletter group</button>
<span class="muted small">explicit groups: ${groups.length ? groups.map(v.esc).join(', ') : 'none'}</span></form>
<h2>Everything the module keeps (SESSION.INFO)</h2><pre>${v.esc(JSON.stringify(d.info, null, 2).replace(/\[\s+([-\d.,\s]+?)\s+\]/g, (m, inner) => `[${inner.replace(/\s+/g, ' ')}]`))}</pre>`
    render(res, d, 'Your session', body, req.query.welcome ? `Welcome, ${d.user}!` : null)
  })

  app.post('/newsletter', async (req, res) => {
    await ensureSession(req)
    const join = req.body.join === '1'
    await req.intelligence.enrich(join ? { join: [NEWSLETTER] } : { leave: [NEWSLETTER] })
    res.redirect(303, '/session')
  })

  app.get('/login', async (req, res) => {
    const d = await pageData(req, { forYou: 0 })
    render(res, d, 'Sign in', loginForm())
  })

  const loginForm = (error) => `<h1>Sign in</h1>${error ? `<p class="flash">${v.esc(error)}</p>` : ''}
<form class="admin" method="post" action="/login"><label>User name <input name="user" id="username" required maxlength="32" pattern="[A-Za-z0-9_.\\-]+"></label>
<button id="signin">Sign in</button><p class="muted small">A demo: no password. Your session gets a new id; your activity stays.</p></form>`

  app.post('/login', async (req, res) => {
    const name = String(req.body.user || '').trim()
    if (!/^[A-Za-z0-9_.-]{1,32}$/.test(name)) {
      const d = await pageData(req, { forYou: 0 })
      return res.status(400).type('html').send(v.layout({ title: 'Sign in', user: d.user, banners: d.banners, body: loginForm('Letters, digits, "_", "." and "-" only (at most 32).'), panel: d.panel }))
    }
    const since = req.session.since
    // SESSION.ROTATE old new CLEARFIELDS: a new id against session fixation, the activity kept.
    await new Promise((resolve, reject) => req.session.regenerate((e) => (e ? reject(e) : resolve())))
    req.session.user = name
    req.session.since = since || Date.now()
    await save(req)
    res.redirect(303, '/session?welcome=1')
  })

  app.post('/logout', (req, res, next) => req.session.destroy((e) => (e ? next(e) : res.redirect(303, '/'))))

  app.post('/logout-everywhere', async (req, res) => {
    const n = req.session.user ? await req.intelligence.revokeAll() : 0
    await new Promise((resolve, reject) => req.session.destroy((e) => (e ? reject(e) : resolve())))
    res.redirect(303, `/?revoked=${n}`)
  })

  app.get('/admin', async (req, res) => {
    const d = await pageData(req, { forYou: 0 })
    const flash = req.query.published
      ? (req.query.fresh === '1' ? `Published to ${req.query.published}.` : `${req.query.published} already has a live notification with that id: nothing changed.`)
      : req.query.added ? `Added ${req.query.added} to the catalog.` : req.query.error ? String(req.query.error) : null
    const groups = [...Object.keys(categories).map((c) => `interest:${c}`), ...SEGMENTS, NEWSLETTER]
    const body = `<h1>Admin</h1>
<form class="admin" method="post" action="/admin/notify" id="notify"><h2>Publish a notification</h2>
<label>To <select name="group" id="group">${groups.map((g) => `<option>${v.esc(g)}</option>`).join('')}</select></label>
<label>or another group <input name="custom" id="custom" maxlength="64" placeholder="group name"></label>
<label>Message <input name="message" id="message" required maxlength="200"></label>
<label>Id <input name="id" id="nid" maxlength="64" placeholder="automatic"> <span class="muted small">the same id twice publishes once</span></label>
<button id="publish">Publish</button>
<p class="muted small">A segment reaches every session whose last ENRICH put it there, now or later while the notification lives (1 hour).</p></form>
<form class="admin" method="post" action="/admin/items" id="additem"><h2>Add a catalog item</h2>
<label>Id <input name="id" id="item-id" required maxlength="64" pattern="[A-Za-z0-9_\\-]+"></label>
<label>Title <input name="title" id="item-title" required maxlength="100"></label>
<label>Category <select name="category" id="item-category">${Object.keys(categories).map((c) => `<option value="${v.esc(c)}">${v.esc(categories[c])}</option>`).join('')}</select></label>
<label>Score <input name="score" id="item-score" type="number" value="50" min="0" max="1000"></label>
<button id="add">Add</button></form>
<p class="muted small">${items.size} items in catalog <code>${v.esc(catalog)}</code>.</p>`
    render(res, d, 'Admin', body, flash)
  })

  app.post('/admin/notify', async (req, res) => {
    const group = String(req.body.custom || '').trim() || String(req.body.group || '').trim()
    const message = String(req.body.message || '').trim()
    if (!group || group.length > 64 || !message || message.length > 200) {
      return res.redirect(303, '/admin?error=' + encodeURIComponent('A group and a message (at most 200 characters) are needed.'))
    }
    const id = String(req.body.id || '').trim().slice(0, 64) || `n-${Date.now().toString(36)}`
    const fresh = await cmd('SESSION.NOTIFYGROUP', group, id, message, 'TTL', 3600)
    res.redirect(303, `/admin?published=${encodeURIComponent(group)}&fresh=${Number(fresh) === 1 ? 1 : 0}`)
  })

  app.post('/admin/items', async (req, res) => {
    const id = String(req.body.id || '').trim()
    const title = String(req.body.title || '').trim()
    const category = String(req.body.category || '')
    const score = Number(req.body.score)
    if (!/^[A-Za-z0-9_-]{1,64}$/.test(id) || !title || title.length > 100 || !categories[category] ||
        !Number.isFinite(score) || score < 0 || score > 1000) {
      return res.redirect(303, '/admin?error=' + encodeURIComponent('Item: an id (letters, digits, "_", "-"), a title, a category and a score 0..1000.'))
    }
    const it = { id, title, category, score }
    await cmd('SESSION.CATALOG', 'ADD', catalog, id, 'SCORE', score, 'CATEGORIES', 1, category)
    await client.hSet(itemsKey, id, JSON.stringify(it))
    items.set(id, it)
    res.redirect(303, `/admin?added=${encodeURIComponent(id)}`)
  })

  async function notFound (req, res) {
    const d = await pageData(req, { forYou: 0 })
    res.status(404).type('html').send(v.layout({ title: 'Not found', user: d.user, banners: d.banners, body: '<h1>Not found</h1><p><a href="/">Back to the shop</a></p>', panel: d.panel }))
  }

  // eslint-disable-next-line no-unused-vars
  app.use((err, req, res, next) => {
    console.error(err)
    res.status(500).type('text').send('Something went wrong: ' + (err && err.message))
  })

  return { app, client, store, close: () => client.quit() }
}

/** Listens on `port` (0: any free port); a port in use falls back to a free one. */
function listen (app, port, host = '127.0.0.1') {
  return new Promise((resolve, reject) => {
    const srv = app.listen(port, host)
    srv.once('listening', () => resolve(srv))
    srv.once('error', (err) => {
      if (err.code === 'EADDRINUSE' && port !== 0) resolve(listen(app, 0, host))
      else reject(err)
    })
  })
}

async function main () {
  const demo = await createDemo({ redisUrl: process.env.REDIS_URL, catalog: process.env.DEMO_CATALOG })
  const srv = await listen(demo.app, Number(process.env.PORT ?? 3000))
  console.log(`Session shop: http://127.0.0.1:${srv.address().port}/`)
  const stop = () => srv.close(() => demo.close().finally(() => process.exit(0)))
  process.on('SIGINT', stop)
  process.on('SIGTERM', stop)
}

if (require.main === module) {
  main().catch((err) => {
    console.error('demo:', err.message)
    process.exit(1)
  })
}

module.exports = { createDemo, listen }
