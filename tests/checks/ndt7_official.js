// Runs M-Lab's official ndt7 JavaScript client (@m-lab/ndt7, npm) under node against one server
// and prints the figures it reports as one JSON line. Used by test_ndt7_official_lab.py, which
// runs it inside a lab namespace against the lab's ndt7 server only.
//
// usage: node [--experimental-websocket] ndt7_official.js <@m-lab/ndt7/src dir> <host:port>
//
// The client runs each subtest in a Web Worker; node has none, so this file gives it one: the
// worker script is evaluated in its own context with `self`, `postMessage`, node's WebSocket and
// timers, and messages pass both ways asynchronously as between threads.
'use strict';
const fs = require('fs');
const path = require('path');
const vm = require('vm');

const [srcDir, server] = process.argv.slice(2);

class Worker {
  constructor(filename) {
    const code = fs.readFileSync(path.join(srcDir, filename), 'utf8');
    this.self = {};
    this.onmessage = null;
    const ctx = {
      self: this.self,
      WebSocket: globalThis.WebSocket,
      performance: globalThis.performance,
      setTimeout, clearTimeout, console, Uint8Array, JSON, Date,
      postMessage: (data) => setImmediate(() => this.onmessage && this.onmessage({data})),
    };
    vm.createContext(ctx);
    vm.runInContext(code, ctx, {filename});
  }
  postMessage(data) {
    setImmediate(() => this.self.onmessage({data}));
  }
  terminate() {}
}
globalThis.Worker = Worker;

const ndt7 = require(path.join(srcDir, 'ndt7.js'));
const out = {};
const mbps = (bytes, seconds) => (seconds > 0 ? (bytes * 8) / seconds / 1e6 : null);

ndt7.test(
    {
      server: server,
      protocol: 'ws',
      userAcceptedDataPolicy: true,
      metadata: {client_name: 'diag-lab-check'},
      downloadworkerfile: 'ndt7-download-worker.js',
      uploadworkerfile: 'ndt7-upload-worker.js',
    },
    {
      error: (err) => {
        out.error = String(err);
      },
      downloadComplete: (data) => {
        const c = data.LastClientMeasurement || {};
        const s = (data.LastServerMeasurement || {}).TCPInfo || {};
        out.download_client_mbps = c.MeanClientMbps;
        out.download_server_mbps = mbps(s.BytesAcked, s.ElapsedTime / 1e6);
        out.download_min_rtt_ms = s.MinRTT / 1000;
      },
      uploadComplete: (data) => {
        const c = data.LastClientMeasurement || {};
        const s = (data.LastServerMeasurement || {}).TCPInfo || {};
        out.upload_client_mbps = c.MeanClientMbps;
        // M-Lab's upload figure: what the server received over its elapsed time.
        out.upload_server_mbps = mbps(s.BytesReceived, s.ElapsedTime / 1e6);
      },
    },
).then((rc) => {
  out.rc = rc;
  process.stdout.write(JSON.stringify(out) + '\n');
  process.exit(0);
}, (err) => {
  out.error = String(err);
  process.stdout.write(JSON.stringify(out) + '\n');
  process.exit(1);
});
