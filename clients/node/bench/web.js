'use strict'
// make bench-web: the same small Express app three ways under autocannon, in one run, against one
// redis-server with the module that this script starts itself:
//   (1) express-session + connect-redis (no activity)
//   (2) (1) + the stock 8-command MULTI page view of SPEC section 6
//   (3) express-session + SessionStore + intelligence() (one command per page view)
// Prints the table and writes it into docs/BENCHMARKS-web.md. BENCH_DURATION (s, default 10),
// BENCH_CONNECTIONS (default 16), BENCH_SESSIONS (default 200), BENCH_ROUNDS (default 2: the
// variants alternate, and each one's best round counts).

const { spawn } = require('node:child_process')
const fs = require('node:fs')
const path = require('node:path')
const os = require('node:os')
const autocannon = require('autocannon')
const { start } = require('../test/server')

const DURATION = Number(process.env.BENCH_DURATION || 10)
const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS || 16)
const SESSIONS = Number(process.env.BENCH_SESSIONS || 200)
const ROUNDS = Number(process.env.BENCH_ROUNDS || 2)
const VARIANTS = [
  ['connect-redis', '(1) express-session + connect-redis, no activity'],
  ['multi', '(2) (1) + 8-command MULTI page view'],
  ['native', '(3) SessionStore + intelligence()']
]

function spawnApp (variant, url) {
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, [path.join(__dirname, 'app.js'), variant, url], { stdio: ['ignore', 'pipe', 'inherit'] })
    p.stdout.on('data', (d) => {
      const m = /listening (\d+)/.exec(String(d))
      if (m) resolve({ port: Number(m[1]), proc: p })
    })
    p.on('exit', (code) => reject(new Error(`${variant} app exited with ${code}`)))
  })
}

async function cookies (port, n) {
  const out = []
  for (let i = 0; i < n; i++) {
    const res = await fetch(`http://127.0.0.1:${port}/login`)
    out.push(res.headers.get('set-cookie').split(';')[0])
  }
  return out
}

function run (port, jar) {
  let i = 0
  return autocannon({
    url: `http://127.0.0.1:${port}`,
    connections: CONNECTIONS,
    duration: DURATION,
    requests: [{
      setupRequest: (req) => {
        const n = i++
        req.path = `/p/item${n % 500}`
        req.headers = { ...req.headers, cookie: jar[n % jar.length] }
        return req
      }
    }]
  })
}

async function main () {
  const server = await start()
  const results = {}
  const apps = {}
  try {
    for (const [variant] of VARIANTS) {
      apps[variant] = await spawnApp(variant, server.url)
      apps[variant].jar = await cookies(apps[variant].port, SESSIONS)
    }
    for (let round = 0; round < ROUNDS; round++) {
      for (const [variant] of VARIANTS) {
        const r = await run(apps[variant].port, apps[variant].jar)
        if (r.non2xx || r.errors) throw new Error(`${variant}: ${r.non2xx} non-2xx, ${r.errors} errors`)
        const row = { rps: r.requests.average, p99: r.latency.p99, p50: r.latency.p50 }
        console.log(`round ${round + 1} ${variant}: ${row.rps.toFixed(0)} req/s, p50 ${row.p50} ms, p99 ${row.p99} ms`)
        if (!results[variant] || row.rps > results[variant].rps) results[variant] = row
      }
    }
  } finally {
    for (const a of Object.values(apps)) a.proc.kill()
    await server.stop()
  }
  const one = results['connect-redis']
  const two = results.multi
  const three = results.native
  const lines = [
    '| app | req/s | p50 ms | p99 ms |',
    '| --- | ---: | ---: | ---: |',
    ...VARIANTS.map(([v, label]) => `| ${label} | ${results[v].rps.toFixed(0)} | ${results[v].p50} | ${results[v].p99} |`),
    '',
    `(3)/(1) req/s: **${(three.rps / one.rps).toFixed(2)}x** (p99 ${three.p99} vs ${one.p99} ms); ` +
      `(3)/(2) req/s: **${(three.rps / two.rps).toFixed(2)}x** (p99 ${three.p99} vs ${two.p99} ms).`
  ]
  const table = lines.join('\n')
  console.log('\n' + table)
  const doc = path.join(__dirname, '..', '..', '..', 'docs', 'BENCHMARKS-web.md')
  const header = `# Web benchmark: Express three ways (\`make bench-web\`)

The same small Express app (express-session, \`resave: false\`, \`saveUninitialized: false\`, a page
that reads the session) served three ways, one after the other in one run, against one
redis-server with the module, under autocannon: ${CONNECTIONS} connections, ${DURATION} s per round,
${ROUNDS} alternating rounds (each variant's best round), ${SESSIONS} logged-in sessions cycled, items
cycling over 500. Apps run in their own Node process (node-redis 6 client); the machine
(${os.cpus().length} cores, ${os.cpus()[0].model}) is shared, so compare the rows of one run, not runs.

- (1) connect-redis: a view is \`GET\` (load) + \`EXPIRE\` (express-session's touch): 2 commands, no activity.
- (2) (1) + the stock page view of SPEC section 6 (\`PFADD\`, \`INCR\`, \`BITFIELD\` x2, \`PFCOUNT\`,
  \`SADD\`, \`HSET\`, \`EXPIRE\` in a \`MULTI\`): 3 round trips.
- (3) \`SessionStore\` + \`intelligence()\`: \`SESSION.TOUCH key XX WITHFIELDS 1 sess EVENT item
  CATEGORIES 2 news golf\` loads the session, records the view and slides the expiry: 1 command;
  the store's touch is skipped.

Target (SPEC section 6): (3) >= (1) in req/s with p99 no worse, while recording every view.

`
  fs.writeFileSync(doc, header + `Last run (${new Date().toISOString().slice(0, 10)}):\n\n` + table + '\n')
  console.log(`written to ${path.relative(process.cwd(), doc)}`)
}

main().catch((e) => { console.error(e); process.exit(1) })
