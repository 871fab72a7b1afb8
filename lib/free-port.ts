// A TCP port that is free on loopback right now: for a local gang's rendezvous and for tests and benchmarks
// that start servers. Another process could take it before it is used; callers that cannot tolerate that
// listen on port 0 instead.
import { createServer } from 'node:net';

export function freePort(host = '127.0.0.1'): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, host, () => {
      const addr = srv.address();
      srv.close(() => (typeof addr === 'object' && addr ? resolve(addr.port) : reject(new Error('no port'))));
    });
  });
}
