'use strict'
// The client matrix: node-redis 6 (RESP2, RESP3), node-redis 5 (RESP2, RESP3), node-redis 4 (RESP2),
// ioredis (RESP2, RESP3).

const clients = [
  {
    name: 'node-redis 6 RESP2',
    async connect (url) {
      const c = require('redis').createClient({ url, RESP: 2 })
      await c.connect()
      return { client: c, close: () => c.quit(), raw: (args) => c.sendCommand(args) }
    }
  },
  {
    name: 'node-redis 6 RESP3',
    async connect (url) {
      const c = require('redis').createClient({ url, RESP: 3 })
      await c.connect()
      return { client: c, close: () => c.quit(), raw: (args) => c.sendCommand(args) }
    }
  },
  {
    name: 'node-redis 5 RESP2',
    async connect (url) {
      const c = require('redis5').createClient({ url, RESP: 2 })
      await c.connect()
      return { client: c, close: () => c.quit(), raw: (args) => c.sendCommand(args) }
    }
  },
  {
    name: 'node-redis 5 RESP3',
    async connect (url) {
      const c = require('redis5').createClient({ url, RESP: 3 })
      await c.connect()
      return { client: c, close: () => c.quit(), raw: (args) => c.sendCommand(args) }
    }
  },
  {
    name: 'node-redis 4 RESP2',
    async connect (url) {
      const c = require('redis4').createClient({ url })
      await c.connect()
      return { client: c, close: () => c.quit(), raw: (args) => c.sendCommand(args) }
    }
  },
  {
    name: 'ioredis RESP2',
    async connect (url) {
      const Redis = require('ioredis')
      const c = new Redis(url)
      return { client: c, close: () => c.quit(), raw: (args) => c.call(args[0], ...args.slice(1)) }
    }
  },
  {
    name: 'ioredis RESP3',
    async connect (url) {
      const Redis = require('ioredis')
      const c = new Redis(url, { protocol: 3 })
      return { client: c, close: () => c.quit(), raw: (args) => c.call(args[0], ...args.slice(1)) }
    }
  }
]

module.exports = { clients }
