'use strict'
// For the end-to-end test: a redis-server with the module on a free loopback port, the demo site
// (node server.js) on a free port, both stopped by stop() (the caller registers it with after())
// and killed on process exit whatever happened.

const { spawn } = require('node:child_process')
const net = require('node:net')
const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')

const ROOT = path.resolve(__dirname, '..', '..', '..')
const MODULE = process.env.SESSION_MODULE || path.join(ROOT, 'target', 'release', 'libsession_store.so')
const SERVER = process.env.REDIS_SERVER || 'redis-server'

const running = new Set()
process.on('exit', () => { for (const p of running) { try { p.kill('SIGKILL') } catch {} } })

function freePort () {
  return new Promise((resolve, reject) => {
    const srv = net.createServer()
    srv.unref()
    srv.on('error', reject)
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address()
      srv.close(() => resolve(port))
    })
  })
}

function ping (port) {
  return new Promise((resolve) => {
    const sock = net.connect(port, '127.0.0.1')
    let buf = ''
    sock.on('data', (d) => { buf += d; if (buf.includes('\r\n')) { sock.destroy(); resolve(buf.startsWith('+PONG')) } })
    sock.on('error', () => resolve(false))
    sock.write('PING\r\n')
  })
}

function stopper (proc) {
  return async () => {
    running.delete(proc)
    if (proc.exitCode != null || proc.signalCode != null) return
    const exited = new Promise((resolve) => proc.once('exit', resolve))
    proc.kill('SIGKILL')
    await exited
  }
}

async function startRedis () {
  if (!fs.existsSync(MODULE)) throw new Error(`module not built: ${MODULE} (cargo build --release -p session-store)`)
  const port = await freePort()
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'session-demo-redis-'))
  const proc = spawn(SERVER, ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no',
    '--dir', dir, '--loadmodule', MODULE], { stdio: ['ignore', 'pipe', 'pipe'] })
  running.add(proc)
  let log = ''
  proc.stdout.on('data', (d) => { log += d })
  proc.stderr.on('data', (d) => { log += d })
  const deadline = Date.now() + 20000
  while (!(await ping(port))) {
    if (proc.exitCode != null || Date.now() > deadline) {
      await stopper(proc)()
      throw new Error(`redis-server did not start on port ${port}:\n${log}`)
    }
    await new Promise((resolve) => setTimeout(resolve, 20))
  }
  const stop = stopper(proc)
  return { url: `redis://127.0.0.1:${port}`, log: () => log, stop: async () => { await stop(); fs.rmSync(dir, { recursive: true, force: true }) } }
}

/** Starts `node server.js` (PORT=0: a free port) and resolves once it printed its URL. */
function startSite (redisUrl) {
  const proc = spawn(process.execPath, [path.join(__dirname, '..', 'server.js')], {
    cwd: path.join(__dirname, '..'),
    env: { ...process.env, REDIS_URL: redisUrl, PORT: '0' },
    stdio: ['ignore', 'pipe', 'pipe']
  })
  running.add(proc)
  let log = ''
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => { stopper(proc)(); reject(new Error(`the site did not start:\n${log}`)) }, 20000)
    proc.stderr.on('data', (d) => { log += d })
    proc.stdout.on('data', (d) => {
      log += d
      const m = /Session shop: (http:\/\/\S+)/.exec(log)
      if (m) { clearTimeout(timer); resolve({ url: m[1], log: () => log, stop: stopper(proc) }) }
    })
    proc.once('exit', (code) => { clearTimeout(timer); reject(new Error(`the site exited (${code}):\n${log}`)) })
  })
}

module.exports = { startRedis, startSite, ROOT }
