// A TCP proxy in front of the real MinIO that injects the failures S3 clients meet in production: it can
// answer 503, reset connections, or refuse everything (a store that is down). Nothing is simulated beyond
// the wire: every request that passes reaches MinIO.
import { createServer, connect, type Server, type Socket } from 'node:net';

const SLOW_DOWN = '<?xml version="1.0" encoding="UTF-8"?><Error><Code>SlowDown</Code><Message>try later</Message></Error>';

export type ProxyMode = 'pass' | 'reset' | 'unavailable';

export interface FaultyProxy {
  endpoint: string;
  mode: ProxyMode;
  /** Closes open connections; the next N new ones get `mode`'s fault, then the proxy passes again. */
  failNext(n: number, mode: Exclude<ProxyMode, 'pass'>): void;
  faultsInjected: number;
  close(): Promise<void>;
}

export async function startFaultyProxy(target: string): Promise<FaultyProxy> {
  const url = new URL(target);
  const sockets = new Set<Socket>();
  let pending = 0;
  let pendingMode: Exclude<ProxyMode, 'pass'> = 'reset';
  const proxy: FaultyProxy = {
    endpoint: '',
    mode: 'pass',
    faultsInjected: 0,
    failNext(n, mode) {
      pending = n;
      pendingMode = mode;
      // Clients keep connections alive: close them so that the next requests open the faulty ones.
      for (const s of sockets) s.destroy();
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
  const server: Server = createServer((client) => {
    sockets.add(client);
    client.on('close', () => sockets.delete(client));
    client.on('error', () => client.destroy());
    let mode = proxy.mode;
    if (pending > 0) {
      pending--;
      mode = pendingMode;
    }
    if (mode === 'reset') {
      proxy.faultsInjected++;
      client.resetAndDestroy();
      return;
    }
    if (mode === 'unavailable') {
      proxy.faultsInjected++;
      // Read the request head, then answer like an overloaded S3 front end.
      client.once('data', () => client.end(`HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/xml\r\nContent-Length: ${Buffer.byteLength(SLOW_DOWN)}\r\nConnection: close\r\n\r\n${SLOW_DOWN}`));
      return;
    }
    const upstream = connect(Number(url.port), url.hostname);
    sockets.add(upstream);
    upstream.on('close', () => sockets.delete(upstream));
    upstream.on('error', () => client.destroy());
    client.pipe(upstream).pipe(client);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const addr = server.address();
  if (typeof addr !== 'object' || !addr) throw new Error('proxy has no address');
  proxy.endpoint = `http://127.0.0.1:${addr.port}`;
  return proxy;
}
