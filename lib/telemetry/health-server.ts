// The HTTP endpoint of every long-running captionrun process: /metrics for Prometheus, /healthz for the
// liveness probe (the process answers), /readyz for readiness (what "ready" means is the caller's: the
// operator's is a synced leader or a campaigning standby; a trainer is ready while it runs), and any JSON
// documents the caller adds (a trainer's /progress).
import { createServer, type Server } from 'node:http';
import type { Registry } from 'prom-client';

export interface HealthServer {
  port: number;
  close(): Promise<void>;
}

/** Extra GET paths answered with the JSON of what their function returns at the time of the request. */
export type JsonRoutes = Record<string, () => unknown>;

export async function startHealthServer(address: string, registry: Registry, ready: () => boolean, routes: JsonRoutes = {}): Promise<HealthServer> {
  const { host, port } = parseAddress(address);
  const server: Server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0] ?? '/';
    const route = Object.hasOwn(routes, path) ? routes[path] : undefined;
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405).end();
      return;
    }
    if (path === '/metrics') {
      registry.metrics().then(
        (text) => res.writeHead(200, { 'Content-Type': registry.contentType }).end(text),
        (err: Error) => res.writeHead(500, { 'Content-Type': 'text/plain' }).end(err.message),
      );
    } else if (path === '/healthz') {
      res.writeHead(200, { 'Content-Type': 'text/plain' }).end('ok');
    } else if (path === '/readyz') {
      const ok = ready();
      res.writeHead(ok ? 200 : 503, { 'Content-Type': 'text/plain' }).end(ok ? 'ok' : 'not ready');
    } else if (route !== undefined) {
      res.writeHead(200, { 'Content-Type': 'application/json' }).end(JSON.stringify(route()));
    } else {
      res.writeHead(404).end();
    }
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, resolve);
  });
  const bound = server.address();
  return {
    port: typeof bound === 'object' && bound ? bound.port : port,
    close: () => new Promise((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
    }),
  };
}

/** ":8080", "0.0.0.0:8080" or "127.0.0.1:0". */
export function parseAddress(address: string): { host: string | undefined; port: number } {
  const i = address.lastIndexOf(':');
  const port = Number(address.slice(i + 1));
  if (i < 0 || !Number.isInteger(port) || port < 0 || port > 65535) throw new Error(`"${address}" is not HOST:PORT or :PORT`);
  const host = address.slice(0, i).replace(/^\[|\]$/g, '');
  return { host: host === '' ? undefined : host, port };
}
