// A real Kubernetes control plane on loopback for tests and `npm run cluster`: etcd, kube-apiserver (TLS,
// Node+RBAC authorization, default admission plugins plus NodeRestriction), kube-controller-manager (all
// controllers, a short node-monitor grace period so node loss is noticed in seconds) and kube-scheduler,
// each in its own process group with logs and state in one temp dir, and cluster DNS (cluster-dns.ts) on the
// loopback block the cluster claims for its pods. No kubelet: node-agent.ts plays it.
import { generateKeyPairSync } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { KubeConfig } from '@kubernetes/client-node';
import { createLogger, type Logger } from '../../lib/telemetry/logger.js';
import { binary } from './binaries.js';
import { createCertificateAuthority, type KeyPair } from './certificates.js';
import { startClusterDns, type ClusterDns } from './cluster-dns.js';
import { writeKubeconfig } from './kubeconfig.js';
import { freePort } from './minio.js';
import type { ClusterNetwork } from './pod-network.js';
import { onProcessExit, signalGroup, spawnGroup, stopGroup, type GroupProcess } from './processes.js';
import { waitFor } from './wait.js';

export interface ClusterOptions {
  /** Seconds without a node heartbeat before the node-lifecycle controller marks the node NotReady. */
  nodeMonitorGracePeriodSeconds?: number;
  /** Keep the data dir (logs, etcd) after stop(), e.g. to read component logs after a failure. */
  keepDataDir?: boolean;
  logger?: Logger;
}

export interface NodeCredentials extends KeyPair {
  kubeconfigPath: string;
}

export interface Cluster {
  dataDir: string;
  server: string;
  caPath: string;
  /** Admin kubeconfig (client certificate in system:masters), for kubectl, helm and tests. */
  kubeconfigPath: string;
  /** Serving certificate for node agents' kubelet endpoints (127.0.0.1), trusted by the apiserver. */
  kubeletServing: KeyPair;
  serviceClusterIpRange: string;
  /** Cluster DNS and the pod addresses of this cluster (pod-network.ts). */
  network: ClusterNetwork;
  processes: { name: string; pid: number }[];
  kubeConfig(): KubeConfig;
  /** A kubeconfig authenticating as system:node:<name> in system:nodes, as a kubelet would. */
  nodeCredentials(nodeName: string): NodeCredentials;
  /** The last lines of a component's log (etcd, kube-apiserver, ...), for failure messages. */
  logTail(component: string, lines?: number): string;
  stop(): Promise<void>;
}

const SERVICE_CIDR = '10.96.0.0/16';
const KUBERNETES_SERVICE_IP = '10.96.0.1';

export async function startCluster(options: ClusterOptions = {}): Promise<Cluster> {
  const log = options.logger ?? createLogger({ component: 'test-cluster' });
  const dataDir = mkdtempSync(join(tmpdir(), 'captionrun-cluster-'));
  const logDir = join(dataDir, 'logs');
  const pkiDir = join(dataDir, 'pki');
  mkdirSync(logDir);
  mkdirSync(pkiDir);
  const procs: GroupProcess[] = [];
  let dns: ClusterDns | undefined;
  let stopped = false;
  const removeHook = onProcessExit(() => {
    for (const p of procs) signalGroup(p.pid, 'SIGKILL');
    if (!options.keepDataDir) rmSync(dataDir, { recursive: true, force: true });
  });
  const logTail = (component: string, lines = 30): string => {
    const path = join(logDir, `${component}.log`);
    return existsSync(path) ? readFileSync(path, 'utf8').split('\n').slice(-lines).join('\n') : '';
  };
  const start = (name: string, args: string[]): GroupProcess => {
    const proc = spawnGroup(name, binary(name as Parameters<typeof binary>[0]), args, { logPath: join(logDir, `${name}.log`) });
    procs.push(proc);
    void proc.exited.then((code) => {
      if (!stopped) log.error({ component: name, code, tail: logTail(name, 10) }, 'control-plane component exited');
    });
    return proc;
  };
  const stop = async (): Promise<void> => {
    if (stopped) return;
    stopped = true;
    // DNS first: its watches would otherwise spend the shutdown reconnecting to a stopped apiserver.
    await dns?.stop();
    // Reverse start order: the apiserver goes before etcd so it does not spend its grace retrying.
    for (const p of [...procs].reverse()) await stopGroup(p, 5000);
    removeHook();
    if (!options.keepDataDir) rmSync(dataDir, { recursive: true, force: true });
  };

  try {
    const started = Date.now();
    const ca = createCertificateAuthority(pkiDir);
    const [etcdPort, etcdPeerPort, apiPort, kcmPort, schedPort] = await Promise.all([
      freePort(), freePort(), freePort(), freePort(), freePort(),
    ]);
    const server = `https://127.0.0.1:${apiPort}`;
    const admin = ca.client('admin', 'captionrun-admin', ['system:masters']);
    const kubeconfigPath = join(dataDir, 'admin.kubeconfig');
    writeKubeconfig(kubeconfigPath, server, ca.certPath, 'admin', admin);

    const etcdUrl = `http://127.0.0.1:${etcdPort}`;
    const peerUrl = `http://127.0.0.1:${etcdPeerPort}`;
    const etcd = start('etcd', [
      '--name=captionrun', `--data-dir=${join(dataDir, 'etcd')}`,
      `--listen-client-urls=${etcdUrl}`, `--advertise-client-urls=${etcdUrl}`,
      `--listen-peer-urls=${peerUrl}`, `--initial-advertise-peer-urls=${peerUrl}`,
      `--initial-cluster=captionrun=${peerUrl}`,
      // Test data is disposable; fsync on a shared disk is what makes etcd slow here.
      '--unsafe-no-fsync',
      '--log-level=warn',
    ]);
    await waitFor('etcd /health', async () => ((await fetch(`${etcdUrl}/health`)).ok ? true : undefined), {
      timeoutMs: 30_000,
      detail: () => logTail('etcd'),
    });
    if (etcd.child.exitCode !== null) throw new Error(`etcd exited: ${logTail('etcd')}`);

    const apiserverCert = ca.server('kube-apiserver', 'kube-apiserver', ['127.0.0.1', KUBERNETES_SERVICE_IP],
      ['localhost', 'kubernetes', 'kubernetes.default', 'kubernetes.default.svc', 'kubernetes.default.svc.cluster.local']);
    const kubeletClient = ca.client('kube-apiserver-kubelet-client', 'kube-apiserver-kubelet-client', ['system:masters']);
    const kubeletServing = ca.server('kubelet-serving', 'captionrun-kubelet', ['127.0.0.1'], ['localhost']);
    const saKey = join(pkiDir, 'service-account.key');
    const saPub = join(pkiDir, 'service-account.pub');
    createServiceAccountKeys(saKey, saPub);

    start('kube-apiserver', [
      `--etcd-servers=${etcdUrl}`,
      '--bind-address=127.0.0.1', '--advertise-address=127.0.0.1', `--secure-port=${apiPort}`,
      `--tls-cert-file=${apiserverCert.certPath}`, `--tls-private-key-file=${apiserverCert.keyPath}`,
      `--client-ca-file=${ca.certPath}`,
      '--authorization-mode=Node,RBAC',
      '--enable-admission-plugins=NodeRestriction',
      `--service-cluster-ip-range=${SERVICE_CIDR}`,
      `--service-account-key-file=${saPub}`, `--service-account-signing-key-file=${saKey}`,
      '--service-account-issuer=https://kubernetes.default.svc.cluster.local',
      // kubectl logs/exec: the apiserver dials the node's InternalIP at the kubelet port the node advertises,
      // verifies the node agent's serving certificate against our CA and presents a client certificate.
      `--kubelet-certificate-authority=${ca.certPath}`,
      `--kubelet-client-certificate=${kubeletClient.certPath}`, `--kubelet-client-key=${kubeletClient.keyPath}`,
      '--kubelet-preferred-address-types=InternalIP,Hostname',
      '--allow-privileged=true',
      // The `kubernetes` Service cannot point at a loopback address (Endpoints validation refuses it, every
      // 10 s), and with no kube-proxy nothing could use it: pods reach the apiserver by its kubeconfig address.
      '--endpoint-reconciler-type=none',
      '--profiling=false',
      `--cert-dir=${pkiDir}`,
    ]);
    const pki = { ca: ca.certPath, admin };
    await waitFor('kube-apiserver /readyz', () => adminGet(server, pki, '/readyz').then((b) => (b === 'ok' ? true : undefined)), {
      timeoutMs: 90_000,
      intervalMs: 500,
      detail: () => logTail('kube-apiserver'),
    });

    const kcmCreds = ca.client('kube-controller-manager', 'system:kube-controller-manager');
    const kcmConfig = join(dataDir, 'kube-controller-manager.kubeconfig');
    writeKubeconfig(kcmConfig, server, ca.certPath, 'kube-controller-manager', kcmCreds);
    const grace = options.nodeMonitorGracePeriodSeconds ?? 8;
    start('kube-controller-manager', [
      `--kubeconfig=${kcmConfig}`, `--authentication-kubeconfig=${kcmConfig}`, `--authorization-kubeconfig=${kcmConfig}`,
      '--bind-address=127.0.0.1', `--secure-port=${kcmPort}`,
      '--controllers=*',
      '--leader-elect=false',
      '--use-service-account-credentials=true',
      `--service-account-private-key-file=${saKey}`, `--root-ca-file=${ca.certPath}`,
      `--cluster-signing-cert-file=${ca.certPath}`, `--cluster-signing-key-file=${ca.keyPath}`,
      `--service-cluster-ip-range=${SERVICE_CIDR}`,
      '--allocate-node-cidrs=false',
      `--node-monitor-grace-period=${grace}s`, '--node-monitor-period=1s',
      // Terminated pods are kept for inspection; the default threshold (12500) is never reached in tests anyway.
      '--terminated-pod-gc-threshold=1000',
      '--profiling=false',
    ]);

    const schedCreds = ca.client('kube-scheduler', 'system:kube-scheduler');
    const schedConfig = join(dataDir, 'kube-scheduler.kubeconfig');
    writeKubeconfig(schedConfig, server, ca.certPath, 'kube-scheduler', schedCreds);
    start('kube-scheduler', [
      `--kubeconfig=${schedConfig}`, `--authentication-kubeconfig=${schedConfig}`, `--authorization-kubeconfig=${schedConfig}`,
      '--bind-address=127.0.0.1', `--secure-port=${schedPort}`,
      '--leader-elect=false',
      '--profiling=false',
    ]);
    for (const [name, port] of [['kube-controller-manager', kcmPort], ['kube-scheduler', schedPort]] as const) {
      await waitFor(`${name} /healthz`, () => componentHealthy(port), { timeoutMs: 60_000, intervalMs: 500, detail: () => logTail(name) });
    }
    // Pod admission needs the namespace's default ServiceAccount, which the controller-manager creates.
    await waitFor('default/default ServiceAccount', () =>
      adminGet(server, pki, '/api/v1/namespaces/default/serviceaccounts/default').then(() => true), {
      timeoutMs: 60_000,
      intervalMs: 500,
      detail: () => logTail('kube-controller-manager'),
    });
    dns = await startClusterDns({ kubeConfig: loadKubeConfig(kubeconfigPath), logger: log.child({ component: 'cluster-dns' }) });
    const network = dns.network;
    log.info({ server, dataDir, dns: network.dnsAddress, podCidr: network.podCidr, ms: Date.now() - started }, 'test cluster control plane ready');

    return {
      dataDir,
      server,
      caPath: ca.certPath,
      kubeconfigPath,
      kubeletServing,
      serviceClusterIpRange: SERVICE_CIDR,
      network,
      processes: procs.map((p) => ({ name: p.name, pid: p.pid })),
      kubeConfig: () => loadKubeConfig(kubeconfigPath),
      nodeCredentials(nodeName) {
        const file = `node-${nodeName}`;
        const pair = ca.client(file, `system:node:${nodeName}`, ['system:nodes']);
        const path = join(dataDir, `${file}.kubeconfig`);
        writeKubeconfig(path, server, ca.certPath, `system:node:${nodeName}`, pair);
        return { ...pair, kubeconfigPath: path };
      },
      logTail,
      stop,
    };
  } catch (err) {
    await stop();
    throw err;
  }
}

function createServiceAccountKeys(keyPath: string, pubPath: string): void {
  const { privateKey, publicKey } = generateKeyPairSync('ec', {
    namedCurve: 'P-256',
    privateKeyEncoding: { type: 'pkcs8', format: 'pem' },
    publicKeyEncoding: { type: 'spki', format: 'pem' },
  });
  writeFileSync(keyPath, privateKey, { mode: 0o600 });
  writeFileSync(pubPath, publicKey);
}

function loadKubeConfig(path: string): KubeConfig {
  const kc = new KubeConfig();
  kc.loadFromFile(path);
  return kc;
}

interface TlsFiles {
  ca?: string;
  cert?: string;
  key?: string;
}

function httpsGet(url: string, tls: TlsFiles): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { ...tls, rejectUnauthorized: tls.ca !== undefined, timeout: 5000 }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('timeout', () => req.destroy(new Error(`GET ${url} timed out`)));
    req.on('error', reject);
    req.end();
  });
}

/** GET on the apiserver as admin; throws on a non-2xx answer. */
async function adminGet(server: string, pki: { ca: string; admin: KeyPair }, path: string): Promise<string> {
  const res = await httpsGet(`${server}${path}`, {
    ca: readFileSync(pki.ca, 'utf8'),
    cert: readFileSync(pki.admin.certPath, 'utf8'),
    key: readFileSync(pki.admin.keyPath, 'utf8'),
  });
  if (res.status < 200 || res.status > 299) throw new Error(`GET ${path}: ${res.status} ${res.body.slice(0, 300)}`);
  return res.body;
}

/** The controller-manager and scheduler serve /healthz to anyone, with self-signed certificates. */
async function componentHealthy(port: number): Promise<true | undefined> {
  const res = await httpsGet(`https://127.0.0.1:${port}/healthz`, {});
  return res.status === 200 && res.body === 'ok' ? true : undefined;
}
