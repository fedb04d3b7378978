'use strict'
// Starts a redis-server with the session module on a free loopback port (or a Redis Cluster of
// them: startCluster), for one test file, and stops it afterwards (also when a test fails: the caller registers stop() with after(), and the
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

function bindable (port) {
  return new Promise((resolve) => {
    const srv = net.createServer()
    srv.unref()
    srv.on('error', () => resolve(false))
    srv.listen(port, '127.0.0.1', () => srv.close(() => resolve(true)))
  })
}

/** A free port; for a cluster node, its bus port (+10000) is free too. */
async function freeNodePort (cluster) {
  for (let i = 0; i < 200; i++) {
    const port = await freePort()
    if (!cluster) return port
    if (port + 10000 < 65536 && await bindable(port + 10000)) return port
  }
  throw new Error('no free port pair for a cluster node')
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

/**
 * One redis-server with the module. `opts.cluster`: cluster-enabled, its nodes.conf in the
 * server's temp dir. Retries on another port when the one found free was taken meanwhile.
 */
async function start (moduleArgs = [], opts = {}) {
  if (!fs.existsSync(MODULE)) {
    throw new Error(`module not built: ${MODULE} (run cargo build --release -p session-store)`)
  }
  let last = ''
  for (let attempt = 0; attempt < 5; attempt++) {
    const port = await freeNodePort(opts.cluster)
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'session-node-'))
    const args = ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no',
      '--dir', dir]
    if (opts.cluster) args.push('--cluster-enabled', 'yes', '--cluster-config-file', path.join(dir, 'nodes.conf'))
    args.push('--loadmodule', MODULE, ...moduleArgs)
    const proc = spawn(SERVER, args, { stdio: ['ignore', 'pipe', 'pipe'] })
    running.add(proc)
    let log = ''
    proc.stdout.on('data', (d) => { log += d })
    proc.stderr.on('data', (d) => { log += d })
    const exited = new Promise((resolve) => proc.once('exit', resolve))
    const stop = async () => {
      running.delete(proc)
      if (proc.exitCode == null && proc.signalCode == null) {
        proc.kill('SIGKILL')
        await exited
      }
      fs.rmSync(dir, { recursive: true, force: true })
    }
    const deadline = Date.now() + 20000
    let up = false
    while (!(up = await ping(port))) {
      if (proc.exitCode != null || Date.now() > deadline) break
      await new Promise((resolve) => setTimeout(resolve, 20))
    }
    if (up) {
      return { port, url: `redis://127.0.0.1:${port}`, log: () => log, stop }
    }
    last = log
    await stop()
  }
  throw new Error(`redis-server did not start:\n${last}`)
}

/**
 * `n` primaries (no replicas) with the module in one Redis Cluster: slots split evenly with
 * CLUSTER ADDSLOTSRANGE, joined with CLUSTER MEET, then polled until every node reports
 * cluster_state:ok, all slots and all `n` nodes. Returns { nodes, rootNodes, stop }; stop()
 * stops every node (register it with after()); a failed start stops what it started.
 */
async function startCluster (n = 3, moduleArgs = []) {
  const { createClient } = require('redis')
  const nodes = []
  const admins = []
  const stop = async () => {
    await Promise.all(admins.splice(0).map((c) => c.disconnect().catch(() => {})))
    await Promise.all(nodes.splice(0).map((node) => node.stop()))
  }
  try {
    for (let i = 0; i < n; i++) nodes.push(await start(moduleArgs, { cluster: true }))
    for (const node of nodes) {
      const c = createClient({ url: node.url })
      c.on('error', () => {})
      await c.connect()
      admins.push(c)
    }
    const per = Math.ceil(16384 / n)
    for (let i = 0; i < n; i++) {
      const first = i * per
      const last = Math.min(16383, first + per - 1)
      await admins[i].sendCommand(['CLUSTER', 'ADDSLOTSRANGE', String(first), String(last)])
    }
    for (let i = 1; i < n; i++) {
      await admins[0].sendCommand(['CLUSTER', 'MEET', '127.0.0.1', String(nodes[i].port)])
    }
    const ready = async (c) => {
      const info = String(await c.sendCommand(['CLUSTER', 'INFO']))
      return info.includes('cluster_state:ok') && info.includes('cluster_slots_ok:16384') &&
        info.includes(`cluster_known_nodes:${n}`)
    }
    await waitFor(async () => (await Promise.all(admins.map(ready))).every(Boolean), 'cluster_state:ok on every node', 30000)
    await Promise.all(admins.splice(0).map((c) => c.quit()))
  } catch (err) {
    await stop()
    throw err
  }
  return {
    nodes,
    rootNodes: nodes.map((node) => ({ host: '127.0.0.1', port: node.port })),
    stop
  }
}

/**
 * Adds a replica of primary number `primary` to a cluster from startCluster (CLUSTER MEET, then
 * CLUSTER REPLICATE), resolved once its link is up and every node's CLUSTER SLOTS (what clients
 * read) lists it. The replica joins `cluster.nodes` (so `cluster.stop()` stops it) and is
 * returned.
 */
async function addReplica (cluster, primary = 0, moduleArgs = []) {
  const { createClient } = require('redis')
  const head = cluster.nodes[primary]
  const replica = await start(moduleArgs, { cluster: true })
  const members = [...cluster.nodes]
  cluster.nodes.push(replica)
  const admins = []
  try {
    for (const node of [...members, replica]) {
      const c = createClient({ url: node.url })
      c.on('error', () => {})
      await c.connect()
      admins.push(c)
    }
    const me = admins[admins.length - 1]
    const headId = String(await admins[primary].sendCommand(['CLUSTER', 'MYID']))
    await me.sendCommand(['CLUSTER', 'MEET', '127.0.0.1', String(head.port)])
    await waitFor(async () => String(await me.sendCommand(['CLUSTER', 'NODES'])).includes(headId), 'the replica meets its primary', 30000)
    await waitFor(async () => {
      try { return String(await me.sendCommand(['CLUSTER', 'REPLICATE', headId])) === 'OK' } catch { return false }
    }, 'CLUSTER REPLICATE', 30000)
    await waitFor(async () => String(await me.sendCommand(['INFO', 'replication'])).includes('master_link_status:up'), "the replica's link", 30000)
    const listed = async (c) => JSON.stringify(await c.sendCommand(['CLUSTER', 'SLOTS'])).includes(String(replica.port))
    await waitFor(async () => (await Promise.all(admins.map(listed))).every(Boolean), 'CLUSTER SLOTS lists the replica', 30000)
  } finally {
    await Promise.all(admins.map((c) => c.quit().catch(() => {})))
  }
  return replica
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

module.exports = { start, startCluster, addReplica, waitFor, execFileSync }
