'use strict'
// make bench-web: the same small Express app three ways under autocannon, in one run, against one
// redis-server with the module that this script starts itself:
//   (1) express-session + connect-redis (no activity)
//   (2) (1) + the stock 8-command MULTI page view of SPEC section 6
//   (3) express-session + SessionStore + intelligence() (one command per page view)
// Prints the table and writes it into docs/BENCHMARKS-web.md. BENCH_DURATION (s, default 8),
// BENCH_CONNECTIONS (default 16), BENCH_SESSIONS (default 200), BENCH_ROUNDS (default 4: the
// variants alternate, the order rotating each round so none always runs first, after one warm-up
// round each; each variant's median round counts).

const { spawn } = require('node:child_process')
const fs = require('node:fs')
const path = require('node:path')
const os = require('node:os')
const autocannon = require('autocannon')
const { start } = require('../test/server')

const DURATION = Number(process.env.BENCH_DURATION || 8)
const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS || 16)
const SESSIONS = Number(process.env.BENCH_SESSIONS || 200)
const ROUNDS = Number(process.env.BENCH_ROUNDS || 4)
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

/** CPU seconds (user + system) a process has used so far (Linux /proc; 0 elsewhere). */
function procCpu (pid) {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8')
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
    return (Number(f[11]) + Number(f[12])) / 100 // utime + stime, in clock ticks of 1/100 s
  } catch {
    return 0
  }
}

/** The Redis server's CPU seconds so far (INFO cpu). */
async function redisCpu (port) {
  const { createClient } = require('redis')
  const c = createClient({ url: `redis://127.0.0.1:${port}` })
  await c.connect()
  const info = await c.info('cpu')
  await c.quit()
  const get = (name) => Number((new RegExp(name + ':([0-9.]+)').exec(info) || [0, 0])[1])
  return get('used_cpu_user') + get('used_cpu_sys')
}

function run (port, jar, duration = DURATION) {
  let i = 0
  return autocannon({
    url: `http://127.0.0.1:${port}`,
    connections: CONNECTIONS,
    duration,
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

/** The median of each measure over the rounds (lower middle for an even count). */
function median (rows) {
  const mid = (xs) => xs.slice().sort((a, b) => a - b)[Math.floor((xs.length - 1) / 2)]
  const out = {}
  for (const k of ['rps', 'p50', 'p99', 'appUs', 'redisUs']) out[k] = mid(rows.map((r) => r[k]))
  return out
}

async function main () {
  const server = await start()
  const results = {}
  const rounds = {}
  const apps = {}
  try {
    for (const [variant] of VARIANTS) {
      apps[variant] = await spawnApp(variant, server.url)
      apps[variant].jar = await cookies(apps[variant].port, SESSIONS)
    }
    for (const [variant] of VARIANTS) await run(apps[variant].port, apps[variant].jar, 2) // warm-up (JIT)
    for (let round = 0; round < ROUNDS; round++) {
      for (let j = 0; j < VARIANTS.length; j++) {
        const [variant] = VARIANTS[(round + j) % VARIANTS.length]
        const app0 = procCpu(apps[variant].proc.pid)
        const redis0 = await redisCpu(server.port)
        const r = await run(apps[variant].port, apps[variant].jar)
        const appCpu = procCpu(apps[variant].proc.pid) - app0
        const redisCpuS = (await redisCpu(server.port)) - redis0
        if (r.non2xx || r.errors) throw new Error(`${variant}: ${r.non2xx} non-2xx, ${r.errors} errors`)
        const n = r.requests.total
        const row = {
          rps: r.requests.average,
          p99: r.latency.p99,
          p50: r.latency.p50,
          appUs: (appCpu * 1e6) / n,
          redisUs: (redisCpuS * 1e6) / n
        }
        console.log(`round ${round + 1} ${variant}: ${row.rps.toFixed(0)} req/s, p50 ${row.p50} ms, p99 ${row.p99} ms, ` +
          `CPU per request: app ${row.appUs.toFixed(0)} us, redis ${row.redisUs.toFixed(1)} us`)
        ;(rounds[variant] = rounds[variant] || []).push(row)
      }
    }
    for (const [variant] of VARIANTS) results[variant] = median(rounds[variant])
  } finally {
    for (const a of Object.values(apps)) a.proc.kill()
    await server.stop()
  }
  const one = results['connect-redis']
  const two = results.multi
  const three = results.native
  const lines = [
    '| app | req/s | p50 ms | p99 ms | app CPU us/req | redis CPU us/req |',
    '| --- | ---: | ---: | ---: | ---: | ---: |',
    ...VARIANTS.map(([v, label]) => `| ${label} | ${results[v].rps.toFixed(0)} | ${results[v].p50} | ${results[v].p99} | ` +
      `${results[v].appUs.toFixed(0)} | ${results[v].redisUs.toFixed(1)} |`),
    '',
    `(3)/(1) req/s: **${(three.rps / one.rps).toFixed(2)}x** (p99 ${three.p99} vs ${one.p99} ms); ` +
      `(3)/(2) req/s: **${(three.rps / two.rps).toFixed(2)}x** (p99 ${three.p99} vs ${two.p99} ms).`,
    `CPU per request, app + redis: (1) ${(one.appUs + one.redisUs).toFixed(0)} us, (2) ${(two.appUs + two.redisUs).toFixed(0)} us, ` +
      `(3) ${(three.appUs + three.redisUs).toFixed(0)} us: (3)/(1) **${((three.appUs + three.redisUs) / (one.appUs + one.redisUs)).toFixed(2)}x**.`,
    '',
    'Every round (variant: req/s, p99 ms, app CPU us/req):',
    '',
    ...Object.keys(rounds).map((v) => `- ${v}: ` + rounds[v].map((r) => `${r.rps.toFixed(0)}/${r.p99}/${r.appUs.toFixed(0)}`).join(', '))
  ]
  const table = lines.join('\n')
  console.log('\n' + table)
  const doc = path.join(__dirname, '..', '..', '..', 'docs', 'BENCHMARKS-web.md')
  const header = `# Web benchmark: Express three ways (\`make bench-web\`)

The same small Express app (express-session, \`resave: false\`, \`saveUninitialized: false\`, a page
that reads the session) served three ways, one after the other in one run, against one
redis-server with the module, under autocannon: ${CONNECTIONS} connections, ${DURATION} s per round,
${ROUNDS} rounds after a warm-up, the order rotating each round (each variant's median round), ${SESSIONS} logged-in sessions cycled, items
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
