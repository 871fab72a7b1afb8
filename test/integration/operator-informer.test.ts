// The operator's informer against a real kube-apiserver behind a TCP proxy that can cut or freeze every
// connection: after a dropped watch, or a watch that silently stops delivering, it must come back by
// itself and catch up with every change made while it was blind.
import assert from 'node:assert/strict';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { after, before, test } from 'node:test';
import { KubeConfig } from '@kubernetes/client-node';
import { createLogger } from '../../lib/telemetry/logger.js';
import { Informer } from '../../operator/runtime/informer.js';
import { KubeApi } from '../../operator/runtime/kube-api.js';
import { startCluster, type Cluster } from '../env/cluster.js';
import { waitFor } from '../env/wait.js';

interface ConfigMap {
  metadata?: { name?: string; namespace?: string; resourceVersion?: string; labels?: Record<string, string> };
  data?: Record<string, string>;
}

let cluster: Cluster;
let proxy: { server: Server; port: number; sockets: Set<Socket>; frozen: boolean };
let admin: KubeApi;
let informer: Informer<ConfigMap> | undefined;

before(async () => {
  cluster = await startCluster();
  const upstream = new URL(cluster.server);
  const sockets = new Set<Socket>();
  const state = { server: createServer(), port: 0, sockets, frozen: false };
  state.server.on('connection', (client) => {
    const backend = connect(Number(upstream.port), upstream.hostname);
    for (const s of [client, backend]) {
      sockets.add(s);
      s.on('close', () => sockets.delete(s));
      s.on('error', () => s.destroy());
    }
    // Frozen: bytes are swallowed and the connection stays open, like a stalled proxy or a half-dead NAT entry.
    client.on('data', (d) => { if (!state.frozen) backend.write(d); });
    backend.on('data', (d) => { if (!state.frozen) client.write(d); });
    client.on('close', () => backend.destroy());
    backend.on('close', () => client.destroy());
  });
  await new Promise<void>((resolve) => state.server.listen(0, '127.0.0.1', resolve));
  const address = state.server.address();
  state.port = typeof address === 'object' && address ? address.port : 0;
  proxy = state;
  admin = new KubeApi(cluster.kubeConfig());
});

after(async () => {
  await informer?.stop();
  for (const s of proxy?.sockets ?? []) s.destroy();
  proxy?.server.close();
  await cluster?.stop();
});

function throughProxy(): KubeConfig {
  const direct = cluster.kubeConfig();
  const kc = new KubeConfig();
  kc.loadFromOptions({
    clusters: direct.getClusters().map((c) => ({ ...c, server: `https://127.0.0.1:${proxy.port}` })),
    users: direct.getUsers(),
    contexts: direct.getContexts(),
    currentContext: direct.getCurrentContext(),
  });
  return kc;
}

const path = '/api/v1/namespaces/default/configmaps';
const create = (name: string, value: string) => admin.post(path, { metadata: { name, labels: { informer: 'test' } }, data: { value } });

test('a watch cut by the network or frozen without a word is restarted and catches up', async () => {
  const watcher = new Informer<ConfigMap>(new KubeApi(throughProxy(), { requestTimeoutMs: 5000 }), {
    path,
    labelSelector: 'informer=test',
    logger: createLogger({ component: 'informer-test' }),
    idleTimeoutMs: 3000,
    minBackoffMs: 100,
    maxBackoffMs: 1000,
  });
  informer = watcher;
  const deleted: string[] = [];
  watcher.on((event, cm) => { if (event === 'delete') deleted.push(cm.metadata?.name ?? ''); });
  await create('before-start', '1');
  watcher.start();
  await watcher.waitForSync();
  assert.equal(watcher.get('default/before-start')?.data?.value, '1');

  await watching(watcher, 'live-1');

  // Cut: every connection reset; the changes made meanwhile arrive after the re-watch.
  for (const s of proxy.sockets) s.destroy();
  await create('while-cut', '2');
  await admin.delete(`${path}/before-start`);
  await waitFor('the informer to see the changes made while its watch was cut', () =>
    watcher.get('default/while-cut') && !watcher.get('default/before-start') ? true : undefined, { timeoutMs: 30_000 });
  assert.deepEqual(deleted, ['before-start']);
  assert.ok(watcher.restarts >= 1, 'the cut watch was restarted');

  await watching(watcher, 'live-2');
  const restartsBeforeFreeze = watcher.restarts;
  // Freeze: the TCP connection stays up but nothing flows; only the idle timeout can notice.
  proxy.frozen = true;
  await create('while-frozen', '3');
  await waitFor('the informer to give up on the frozen watch', () => (watcher.restarts > restartsBeforeFreeze ? true : undefined), { timeoutMs: 30_000 });
  proxy.frozen = false;
  for (const s of proxy.sockets) s.destroy();
  await waitFor('the informer to catch up after the freeze', () => (watcher.get('default/while-frozen')?.data?.value === '3' ? true : undefined), { timeoutMs: 30_000 });
});

/** Returns once the informer's watch is live: it delivered a change made after it started. */
async function watching(informer: Informer<ConfigMap>, name: string): Promise<void> {
  await create(name, 'probe');
  await waitFor(`the informer to see ${name}`, () => (informer.get(`default/${name}`) ? true : undefined), { timeoutMs: 30_000 });
}
