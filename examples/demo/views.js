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
// Two small inline SVG charts: which of the last 60 minutes had a page view (SESSION.INFO's
// activity.active_minutes_ago, 0 = this minute), and the events per UTC hour of the day.
function activityChart (minutesAgo, hours) {
  const ago = new Set((Array.isArray(minutesAgo) ? minutesAgo : []).map(Number).filter((a) => a >= 0 && a < 60))
  const cells = []
  for (let a = 59; a >= 0; a--) {
    const x = ((59 - a) * 3.6).toFixed(1)
    const on = ago.has(a)
    cells.push(`<rect x="${x}" y="0" width="3" height="12" class="${on ? 'fill' : 'track'}"${on ? ` data-minute-ago="${a}"` : ''}><title>${a === 0 ? 'this minute' : a + ' min ago'}: ${on ? 'active' : 'no page view'}</title></rect>`)
  }
  const hs = Array.isArray(hours) && hours.length === 24 ? hours.map(Number) : new Array(24).fill(0)
  const max = Math.max(1, ...hs)
  const nowHour = new Date().getUTCHours()
  const bars = hs.map((v, h) => {
    const height = Math.round((v / max) * 34)
    return `<rect x="${h * 9}" y="${76 - height}" width="7" height="${height}" class="${h === nowHour ? 'now' : 'bar'}"><title>${h}:00 UTC: ${v} events</title></rect>`
  }).join('')
  return `<svg class="chart" id="minutes-chart" viewBox="0 0 216 22" width="216" height="22" role="img" aria-label="${ago.size} active minutes in the last hour">
${cells.join('')}<text x="0" y="21">-60 min</text><text x="198" y="21">now</text></svg>
<svg class="chart" id="hours-chart" viewBox="0 0 216 90" width="216" height="90" role="img" aria-label="events per hour of the day (UTC)">
${bars}<line x1="0" y1="76.5" x2="216" y2="76.5" class="axis"/>
<text x="0" y="88">0h</text><text x="100" y="88">12h</text><text x="196" y="88">23h</text></svg>`
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
<p class="small"><span id="active-minutes">${esc(enrich.active_minutes_last_hour)}</span> active minute(s) in the last hour (each cell a minute, newest right); events per hour of the day (UTC) below:</p>
${activityChart(info && info.activity ? info.activity.active_minutes_ago : null, info && info.activity ? info.activity.hours : null)}`
}

function section (title, id, inner) {
  return `<section id="${esc(id)}"><h2>${esc(title)}</h2>${inner}</section>`
}

function combos (list) {
  return list.map((c) => `<div class="combo" data-combo="${esc(c.id)}">You have looked at every item of <b>${esc(c.title)}</b>:
get all ${c.items.length} together for ${c.discount}% less.</div>`).join('')
}

module.exports = { esc, duration, layout, card, cards, sessionPanel, section, combos }
