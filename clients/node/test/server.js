'use strict'
// Starts a redis-server with the session module on a free loopback port, for one test file, and
// stops it afterwards (also when a test fails: the caller registers stop() with after(), and the
// process exit handler kills whatever is left).

const { spawn, execFileSync } = require('node:child_process')
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

async function start (moduleArgs = []) {
  if (!fs.existsSync(MODULE)) {
    throw new Error(`module not built: ${MODULE} (run cargo build --release -p session-store)`)
  }
  const port = await freePort()
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'session-node-'))
  const args = ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no',
    '--dir', dir, '--loadmodule', MODULE, ...moduleArgs]
  const proc = spawn(SERVER, args, { stdio: ['ignore', 'pipe', 'pipe'] })
  running.add(proc)
  let log = ''
  proc.stdout.on('data', (d) => { log += d })
  proc.stderr.on('data', (d) => { log += d })
  const deadline = Date.now() + 20000
  while (!(await ping(port))) {
    if (proc.exitCode != null || Date.now() > deadline) {
      proc.kill('SIGKILL')
      throw new Error(`redis-server did not start on port ${port}:\n${log}`)
    }
    await new Promise((resolve) => setTimeout(resolve, 20))
  }
  return {
    port,
    url: `redis://127.0.0.1:${port}`,
    log: () => log,
    async stop () {
      running.delete(proc)
      if (proc.exitCode == null) {
        const exited = new Promise((resolve) => proc.once('exit', resolve))
        proc.kill('SIGKILL')
        await exited
      }
      fs.rmSync(dir, { recursive: true, force: true })
    }
  }
}

/** Waits until `cond()` is truthy (polling), or fails after `ms`. */
async function waitFor (cond, what, ms = 5000) {
  const deadline = Date.now() + ms
  for (;;) {
    if (await cond()) return
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise((resolve) => setTimeout(resolve, 10))
  }
}

module.exports = { start, waitFor, execFileSync }
