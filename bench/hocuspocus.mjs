#!/usr/bin/env node
// Hocuspocus 4 from npm as an anchor server for the load benchmark (bench/README.md).
// Stock configuration (merging per event-loop turn is its default, flushDelay 0), no
// persistence and no auth hook (any token is accepted), except the idle timeout: the
// benchmark's readers send nothing after their handshake, and Hocuspocus closes a
// connection that has been silent for `timeout` ms (default 60 s).
//   PORT=3002 node hocuspocus.mjs
import { Server } from '@hocuspocus/server'

const port = Number(process.env.PORT || 3002)
const server = new Server({
  port,
  address: process.env.HOST || '127.0.0.1',
  quiet: true,
  timeout: 3_600_000,
})
await server.listen()
process.stderr.write(`hocuspocus listening on 127.0.0.1:${port}\n`)
