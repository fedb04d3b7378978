'use strict'
// The demo shop in a real browser (Debian's chromium driven by puppeteer-core, never a downloaded
// browser): two visitors, page views of one category, "For you" filling with that category and
// never with a viewed item, assets not counted, a combo, a notification to interest:<category>
// delivered exactly once, login on two devices keeping the activity, log out everywhere.
// Asserts on the pages' text; saves screenshots of the main pages in target/demo-screenshots/.

const { describe, test, before, after } = require('node:test')
const assert = require('node:assert/strict')
const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')
const { startRedis, startSite, ROOT } = require('./harness')

const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium'
const SHOTS = path.join(ROOT, 'target', 'demo-screenshots')

let redis, site, browser, profile, client
const ctx = {}

before(async () => {
  const puppeteer = require('puppeteer-core')
  fs.mkdirSync(SHOTS, { recursive: true })
  redis = await startRedis()
  site = await startSite(redis.url)
  const { createClient } = require('redis')
  client = createClient({ url: redis.url })
  await client.connect()
  profile = fs.mkdtempSync(path.join(os.tmpdir(), 'session-demo-chromium-'))
  browser = await puppeteer.launch({
    executablePath: CHROMIUM,
    headless: true,
    userDataDir: profile,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
      '--disable-component-update', '--disable-sync'],
    defaultViewport: { width: 1280, height: 900 }
  })
})

after(async () => {
  // Each step on its own: a failure in one still stops the others.
  for (const step of [() => browser && browser.close(), () => client && client.quit(),
    () => site && site.stop(), () => redis && redis.stop()]) {
    try { await step() } catch (e) { console.error('cleanup:', e.message) }
  }
  if (profile) fs.rmSync(profile, { recursive: true, force: true })
})

/** A visitor: its own browser context (cookie jar) and page. */
async function visitor () {
  const context = await browser.createBrowserContext()
  const page = await context.newPage()
  return { context, page }
}

async function go (page, p) {
  const res = await page.goto(site.url.replace(/\/$/, '') + p, { waitUntil: 'load' })
  assert.ok(res.ok(), `GET ${p}: ${res.status()}`)
  return res
}

const textOf = (page, sel) => page.$eval(sel, (e) => e.textContent.trim())
const numberOf = async (page, sel) => Number(await textOf(page, sel))
const cardsOf = (page, sel) => page.$$eval(`${sel} .card`, (cs) => cs.map((c) => ({ item: c.dataset.item, category: c.dataset.category })))
const bannersOf = (page) => page.$$eval('.banner', (bs) => bs.map((b) => b.textContent.trim()))
const shot = (page, name) => page.screenshot({ path: path.join(SHOTS, `${name}.png`), fullPage: true })
const cookieOf = async (page) => ((await page.cookies()).find((c) => c.name === 'shop.sid') || {}).value

describe('the demo shop in a browser', () => {
  test('a first visitor: the home page, an empty session', async () => {
    ctx.a = await visitor()
    const { page } = ctx.a
    await go(page, '/')
    assert.match(await textOf(page, 'h1'), /session shop/i)
    assert.equal(await numberOf(page, '#events'), 0)
    assert.equal((await cardsOf(page, '#featured')).length, 4)
    await shot(page, 'home')
  })

  test('item pages record one view each; assets and the favicon record nothing', async () => {
    const { page } = ctx.a
    await go(page, '/category/tea')
    const tea = await cardsOf(page, 'main > .cards')
    assert.equal(tea.length, 10)
    assert.ok(tea.every((c) => c.category === 'tea'))
    ctx.viewed = tea.slice(0, 3).map((c) => c.item)
    for (const [i, id] of ctx.viewed.entries()) {
      await go(page, `/item/${id}`)
      assert.equal(await page.$eval('#item', (e) => e.dataset.item), id)
      assert.equal(await numberOf(page, '#events'), i + 1)
      assert.equal(await numberOf(page, '#unique'), i + 1)
    }
    // The browser fetches the stylesheet with every page; fetch it and the favicon more often.
    const statuses = await page.evaluate(async () => {
      const out = []
      for (let i = 0; i < 3; i++) {
        for (const u of ['/style.css', '/favicon.ico']) out.push((await fetch(u, { cache: 'no-store' })).status)
      }
      return out
    })
    assert.deepEqual(statuses, [200, 204, 200, 204, 200, 204])
    await go(page, '/session')
    assert.equal(await numberOf(page, '#events'), 3, 'only the three item pages count')
    assert.match(await textOf(page, '#interests'), /Tea\s+100%/)
    assert.match(await textOf(page, '#segments'), /interest:tea/)
    assert.match(await textOf(page, '#active-minutes'), /^[1-9]/)
    // the minute chart marks the minutes that had a view: this one (or the one before, if the
    // minute turned while the test browsed), as many cells as the count says
    const marked = await page.$$eval('#minutes-chart rect[data-minute-ago]', (rs) => rs.map((r) => Number(r.dataset.minuteAgo)))
    assert.equal(marked.length, await numberOf(page, '#active-minutes'))
    assert.ok(marked.every((a) => a >= 0 && a <= 2), `recent minutes only: ${marked}`)
  })

  test('"For you" fills with the viewed category and never shows a viewed item', async () => {
    const { page } = ctx.a
    for (const p of ['/', `/item/${ctx.viewed[2]}`]) {
      await go(page, p)
      const forYou = await cardsOf(page, '#for-you')
      assert.equal(forYou.length, 6, p)
      for (const c of forYou) assert.ok(!ctx.viewed.includes(c.item), `${p}: ${c.item} was viewed`)
      // The ranked slots come first (EXPLORE 0.34 of 6: two, rarely three, random ones after them).
      assert.deepEqual(forYou.slice(0, 3).map((c) => c.category), ['tea', 'tea', 'tea'], p)
      const featured = await cardsOf(page, '#featured')
      for (const c of featured) assert.ok(!ctx.viewed.includes(c.item))
    }
    await shot(page, 'item')
  })

  test('a second visitor gets its own interests', async () => {
    ctx.b = await visitor()
    const { page } = ctx.b
    await go(page, '/category/books')
    const books = await cardsOf(page, 'main > .cards')
    for (const c of books.slice(0, 2)) await go(page, `/item/${c.item}`)
    await go(page, '/')
    assert.equal(await numberOf(page, '#events'), 2)
    assert.match(await textOf(page, '#segments'), /interest:books/)
    assert.doesNotMatch(await textOf(page, '#segments'), /interest:tea/)
    assert.deepEqual((await cardsOf(page, '#for-you')).slice(0, 3).map((c) => c.category), ['books', 'books', 'books'])
  })

  test('a notification to interest:tea reaches the tea visitor exactly once, and only them', async () => {
    const { page } = ctx.b
    await go(page, '/admin')
    await page.select('#group', 'interest:tea')
    await page.type('#message', 'Tea tasting on Friday at five')
    await page.type('#nid', 'tasting-1')
    await Promise.all([page.waitForNavigation(), page.click('#publish')])
    assert.match(await textOf(page, '.flash'), /Published to interest:tea/)
    await shot(page, 'admin')
    // The same id again publishes nothing.
    await page.select('#group', 'interest:tea')
    await page.type('#message', 'Tea tasting on Friday at five')
    await page.type('#nid', 'tasting-1')
    await Promise.all([page.waitForNavigation(), page.click('#publish')])
    assert.match(await textOf(page, '.flash'), /already has a live notification/)

    await go(ctx.a.page, '/')
    assert.deepEqual(await bannersOf(ctx.a.page), ['Notice for interest:tea: Tea tasting on Friday at five'])
    await shot(ctx.a.page, 'notification')
    await go(ctx.a.page, '/category/tea')
    assert.deepEqual(await bannersOf(ctx.a.page), [], 'delivered once')
    await go(page, '/')
    assert.deepEqual(await bannersOf(page), [], 'not a tea visitor')
  })

  test('a combo is offered once every item of its set was seen', async () => {
    const { page } = ctx.a
    const set = ['gear-dripper', 'gear-filters', 'gear-kettle']
    for (const id of set.slice(0, 2)) {
      await go(page, `/item/${id}`)
      assert.equal(await page.$('[data-combo="pour-over"]'), null)
    }
    await go(page, `/item/${set[2]}`)
    assert.match(await textOf(page, '[data-combo="pour-over"]'), /every item of The pour-over set/)
    assert.equal(await page.$('[data-combo="matcha"]'), null)
    await shot(page, 'combo')
  })

  test('login rotates the session id and keeps the activity; two devices; log out everywhere', async () => {
    const { page } = ctx.a
    await go(page, '/session')
    const events = await numberOf(page, '#events')
    const before = await cookieOf(page)
    assert.ok(before)
    await go(page, '/login')
    await page.type('#username', 'ada')
    await Promise.all([page.waitForNavigation(), page.click('#signin')])
    assert.equal(await textOf(page, '#user'), 'ada')
    const after = await cookieOf(page)
    assert.ok(after && after !== before, 'a new session id at login')
    assert.equal(await numberOf(page, '#events'), events, 'the activity stays')
    assert.match(await textOf(page, '#interests'), /Tea/)
    assert.equal(await textOf(page, '#device-count'), '1 signed-in session(s)')

    ctx.d = await visitor()
    const d = ctx.d.page
    await go(d, '/login')
    await d.type('#username', 'ada')
    await Promise.all([d.waitForNavigation(), d.click('#signin')])
    assert.equal(await textOf(d, '#device-count'), '2 signed-in session(s)')
    await go(page, '/session')
    assert.equal(await textOf(page, '#device-count'), '2 signed-in session(s)')
    await shot(page, 'session')
    assert.equal((await client.sendCommand(['SESSION.SESSIONS', 'ada'])).length, 2)

    await Promise.all([d.waitForNavigation(), d.click('form[action="/logout-everywhere"] button')])
    assert.match(await textOf(d, '.flash'), /Logged out everywhere: 2 session\(s\) ended/)
    assert.equal(await d.$('#user'), null)
    await go(page, '/session')
    assert.equal(await page.$('#user'), null, 'the other device is signed out too')
    assert.match(await textOf(page, '#device-count'), /Not signed in/)
    assert.deepEqual(await client.sendCommand(['SESSION.SESSIONS', 'ada']), [])
  })
})
