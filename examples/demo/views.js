'use strict'
// Server-rendered pages: template literals, every dynamic value escaped, no front-end build.

const esc = (v) => String(v ?? '').replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' }[c]))

function duration (ms) {
  if (ms == null || !Number.isFinite(ms)) return '-'
  const s = Math.max(0, Math.round(ms / 1000))
  if (s < 60) return `${s} s`
  if (s < 3600) return `${Math.floor(s / 60)} min ${s % 60} s`
  if (s < 86400) return `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min`
  return `${Math.floor(s / 86400)} d ${Math.floor((s % 86400) / 3600)} h`
}

const pct = (x) => `${Math.round((Number(x) || 0) * 100)}%`

function layout ({ title, user, banners = [], flash, body, panel }) {
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>${esc(title)} · Session shop</title>
<link rel="icon" href="data:,"><link rel="stylesheet" href="/style.css"></head>
<body>
<header><a class="brand" href="/">☕ Session shop</a>
<nav><a href="/">Home</a> <a href="/session">Your session</a> <a href="/admin">Admin</a></nav>
<div class="who">${user
  ? `Signed in as <b id="user">${esc(user)}</b>
     <form method="post" action="/logout"><button>Log out</button></form>
     <form method="post" action="/logout-everywhere"><button>Log out everywhere</button></form>`
  : '<a id="login" href="/login">Sign in</a>'}</div></header>
${banners.map((n) => `<div class="banner" data-notification="${esc(n.id)}"><b>Notice for ${esc(n.group)}:</b> ${esc(n.payload)}</div>`).join('\n')}
${flash ? `<div class="flash">${esc(flash)}</div>` : ''}
<div class="page"><main>${body}</main>${panel ? `<aside>${panel}</aside>` : ''}</div>
<footer>Every page view is one <code>SESSION.TOUCH</code>: load, record, slide the expiry. Assets record nothing.</footer>
</body></html>`
}

function card (item, categories, extra = '') {
  if (!item) return ''
  return `<a class="card" href="/item/${esc(item.id)}" data-item="${esc(item.id)}" data-category="${esc(item.category)}">
<span class="cat">${esc(categories[item.category] || item.category)}</span>
<span class="title">${esc(item.title)}</span>${extra}</a>`
}

function cards (list, categories, empty = 'Nothing here yet.') {
  return list.length ? `<div class="cards">${list.map((i) => card(i, categories)).join('')}</div>` : `<p class="muted">${esc(empty)}</p>`
}

/** A small inline SVG: active minutes of the last hour (a gauge of 60) and events per UTC hour. */
function activityChart (activeMinutes, hours) {
  const m = Math.max(0, Math.min(60, Number(activeMinutes) || 0))
  const hs = Array.isArray(hours) && hours.length === 24 ? hours.map(Number) : new Array(24).fill(0)
  const max = Math.max(1, ...hs)
  const nowHour = new Date().getUTCHours()
  const bars = hs.map((v, h) => {
    const height = Math.round((v / max) * 40)
    return `<rect x="${h * 9}" y="${62 - height}" width="7" height="${height}" class="${h === nowHour ? 'now' : 'bar'}"><title>${h}:00 UTC: ${v} events</title></rect>`
  }).join('')
  return `<svg class="chart" viewBox="0 0 216 76" width="216" height="76" role="img" aria-label="${m} active minutes in the last hour">
<rect x="0" y="0" width="216" height="10" rx="3" class="track"/>
<rect x="0" y="0" width="${(m / 60 * 216).toFixed(1)}" height="10" rx="3" class="fill"/>
${bars}<line x1="0" y1="62.5" x2="216" y2="62.5" class="axis"/>
<text x="0" y="74">0h</text><text x="100" y="74">12h</text><text x="196" y="74">23h</text></svg>`
}

function sessionPanel ({ view, enrich, info, categories, now }) {
  if (!enrich) return '<h2>Your session</h2><p class="muted">No session yet.</p>'
  const interests = (enrich.interests || []).slice(0, 5)
  const expiresIn = info && info.expires_at_ms ? info.expires_at_ms - now : (view ? view.ttl_ms : null)
  return `<h2>Your session</h2>
<dl class="stats" id="panel">
<dt>Events</dt><dd id="events">${esc(enrich.events)}</dd>
<dt>Distinct items</dt><dd id="unique">${esc(enrich.unique_items)}</dd>
<dt>Engagement</dt><dd id="engagement">${pct(enrich.engagement)}</dd>
<dt>Idle time</dt><dd id="idle">${duration(view ? view.idle_ms : null)}</dd>
<dt>Expires in</dt><dd id="expires">${duration(expiresIn)}</dd>
</dl>
<h3>Interests</h3>
${interests.length
  ? `<ul class="interests" id="interests">${interests.map((i) => `<li data-interest="${esc(i.category)}"><span>${esc(categories[i.category] || i.category)}</span>
<span class="meter"><span style="width:${pct(i.weight)}"></span></span><span class="w">${pct(i.weight)}</span></li>`).join('')}</ul>`
  : '<p class="muted">None yet: view a few items.</p>'}
<h3>Segments</h3>
<p id="segments">${(enrich.segments || []).length ? enrich.segments.map((s) => `<span class="tag">${esc(s)}</span>`).join(' ') : '<span class="muted">none</span>'}</p>
<h3>Activity</h3>
<p class="small"><span id="active-minutes">${esc(enrich.active_minutes_last_hour)}</span> active minute(s) in the last hour; events per hour of the day (UTC):</p>
${activityChart(enrich.active_minutes_last_hour, info && info.activity ? info.activity.hours : null)}`
}

function section (title, id, inner) {
  return `<section id="${esc(id)}"><h2>${esc(title)}</h2>${inner}</section>`
}

function combos (list) {
  return list.map((c) => `<div class="combo" data-combo="${esc(c.id)}">You have looked at every item of <b>${esc(c.title)}</b>:
get all ${c.items.length} together for ${c.discount}% less.</div>`).join('')
}

module.exports = { esc, duration, layout, card, cards, sessionPanel, section, combos }
