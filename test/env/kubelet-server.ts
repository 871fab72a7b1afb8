// The kubelet's HTTPS endpoint, as far as `kubectl logs` needs it: the apiserver proxies
// /containerLogs/{namespace}/{pod}/{container} here, verifying our serving certificate against the cluster CA
// and authenticating with its kubelet client certificate, which we verify against the same CA.
import { closeSync, existsSync, openSync, readFileSync, readSync, statSync } from 'node:fs';
import { createServer, type Server } from 'node:https';
import type { ServerResponse } from 'node:http';

export interface LogSource {
  /** Host path of the container's log, or undefined when there is no such pod or container. */
  logPath(namespace: string, pod: string, container: string, previous: boolean): string | undefined;
  /** True while the container may still write (running or about to restart). */
  running(namespace: string, pod: string, container: string): boolean;
}

export interface KubeletServer {
  port: number;
  close(): Promise<void>;
}

export async function startKubeletServer(
  tls: { cert: string; key: string; ca: string },
  port: number,
  source: LogSource,
): Promise<KubeletServer> {
  const server: Server = createServer({ ...tls, requestCert: true, rejectUnauthorized: true }, (req, res) => {
    const url = new URL(req.url ?? '/', 'https://kubelet');
    if (url.pathname === '/healthz') {
      res.end('ok');
      return;
    }
    const match = /^\/containerLogs\/([^/]+)\/([^/]+)\/([^/]+)$/.exec(url.pathname);
    if (req.method !== 'GET' || !match) {
      res.writeHead(404).end('not found');
      return;
    }
    const [namespace, pod, container] = match.slice(1).map(decodeURIComponent) as [string, string, string];
    const q = url.searchParams;
    const path = source.logPath(namespace, pod, container, q.get('previous') === 'true');
    if (path === undefined) {
      res.writeHead(404).end(`container "${container}" in pod "${pod}" not found on this node`);
      return;
    }
    if (q.get('previous') === 'true' && !existsSync(path)) {
      res.writeHead(400).end(`previous terminated container "${container}" in pod "${pod}" not found`);
      return;
    }
    res.writeHead(200, { 'Content-Type': 'text/plain; charset=utf-8' });
    const tailLines = q.get('tailLines');
    const limitBytes = q.get('limitBytes');
    let offset = tailLines !== null && existsSync(path) ? tailOffset(readFileSync(path), Number(tailLines)) : 0;
    const budget = { left: limitBytes === null ? Infinity : Number(limitBytes) };
    offset = copyFrom(path, offset, res, budget);
    if (q.get('follow') !== 'true') {
      res.end();
      return;
    }
    const timer = setInterval(() => {
      offset = copyFrom(path, offset, res, budget);
      if (budget.left <= 0 || !source.running(namespace, pod, container)) {
        offset = copyFrom(path, offset, res, budget);
        clearInterval(timer);
        res.end();
      }
    }, 200);
    res.on('close', () => clearInterval(timer));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => resolve());
  });
  return {
    port,
    close: () => new Promise<void>((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    }),
  };
}

/** Writes the file's bytes from offset (at most budget.left of them) and returns the new offset. */
function copyFrom(path: string, offset: number, res: ServerResponse, budget: { left: number }): number {
  if (!existsSync(path) || budget.left <= 0) return offset;
  const size = statSync(path).size;
  const length = Math.min(size - offset, budget.left);
  if (length <= 0) return offset;
  const buf = Buffer.alloc(length);
  const fd = openSync(path, 'r');
  try {
    readSync(fd, buf, 0, length, offset);
  } finally {
    closeSync(fd);
  }
  budget.left -= length;
  res.write(buf);
  return offset + length;
}

/** Where the last `lines` lines of a log begin. */
export function tailOffset(content: Buffer, lines: number): number {
  let end = content.length;
  if (end > 0 && content[end - 1] === 0x0a) end -= 1;
  let seen = 0;
  for (let i = end - 1; i >= 0; i -= 1) {
    if (content[i] === 0x0a && ++seen === lines) return i + 1;
  }
  return lines <= 0 ? content.length : 0;
}
