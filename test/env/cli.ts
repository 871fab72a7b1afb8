// `npm run cluster -- up|down|status|kill-pod|oom-kill-pod|stop-node|start-node|fill-disk`: the test
// environment for hand use. `up` starts a detached supervisor (`serve`) that owns every process and answers
// fault-injection requests on a loopback port; the state file tells the other commands where it all is.
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, openSync, readFileSync, rmSync, writeFileSync, closeSync } from 'node:fs';
import { createServer, type IncomingMessage } from 'node:http';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { createLogger } from '../../lib/telemetry/logger.js';
import { startTestEnvironment, type TestEnvironment } from './environment.js';
import { REPO_ROOT } from './images.js';
import { KUBECTL } from './kubectl.js';
import { QUICKSTART_BUCKET, quickstartClusterSpec } from './quickstart-spec.js';
import { freePort } from './minio.js';
import { signalGroup } from './processes.js';
import { sleep, waitFor } from './wait.js';

interface ClusterState {
  pid: number;
  kubeconfig: string;
  server: string;
  /** Cluster DNS address and the loopback block pods get addresses from; absent in a state file from before them. */
  network?: { dns: string; podCidr: string };
  s3: { endpoint: string; region: string; accessKeyId: string; secretAccessKey: string; secret: string };
  nodes: string[];
  control: string;
  processes: { name: string; pid: number }[];
  dirs: string[];
  log: string;
  /** The cluster quickstart with this cluster's S3 endpoint filled in; absent in a state file from before it. */
  quickstart?: string;
}

const STATE_DIR = join(process.env.CAPTIONRUN_CACHE ?? join(homedir(), '.cache', 'captionrun'), 'cluster');
const STATE_FILE = join(STATE_DIR, 'state.json');
const LOG_FILE = join(STATE_DIR, 'cluster.log');
const QUICKSTART_FILE = join(STATE_DIR, 'quickstart-cluster.yaml');
const UP_TIMEOUT_MS = Number(process.env.CAPTIONRUN_CLUSTER_UP_TIMEOUT_MS ?? 45 * 60_000);

const USAGE = `usage: npm run cluster -- <command>
  up                                   start control plane, MinIO and 2 GPU nodes in the background
  down                                 stop everything and remove its files
  status                               show endpoints, nodes and pods
  kill-pod NAME [-n NS] [-c CONTAINER] SIGKILL a pod's processes (exit 137, reason Error)
  oom-kill-pod NAME [-n NS] [-c C]     kill a pod's processes as OOMKilled
  stop-node NAME                       stop a node's heartbeat (the controller marks it NotReady, evicts)
  start-node NAME                      resume a stopped node's heartbeat
  fill-disk POD VOLUME BYTES [-n NS]   write BYTES into a pod's volume (past an emptyDir sizeLimit: eviction)`;

function readState(): ClusterState | undefined {
  return existsSync(STATE_FILE) ? (JSON.parse(readFileSync(STATE_FILE, 'utf8')) as ClusterState) : undefined;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

function printSummary(state: ClusterState): void {
  console.log(`kubeconfig:  ${state.kubeconfig}
apiserver:   ${state.server}
nodes:       ${state.nodes.join(', ')}${state.network ? `
cluster DNS: ${state.network.dns}:53 (the pods' resolver; the machine's own /etc/resolv.conf is untouched)
pod IPs:     ${state.network.podCidr}, one /24 per node` : ''}
S3 endpoint: ${state.s3.endpoint} (region ${state.s3.region}, path-style)
S3 keys:     AWS_ACCESS_KEY_ID=${state.s3.accessKeyId} AWS_SECRET_ACCESS_KEY=${state.s3.secretAccessKey}
S3 secret:   default/${state.s3.secret} (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY)
logs:        ${state.log}

export KUBECONFIG=${state.kubeconfig}${state.quickstart ? `

The quickstart, ready to apply (S3 endpoint filled in, bucket ${QUICKSTART_BUCKET} created):
  kubectl apply -f crds/
  npx captionrun operator --kubeconfig ${state.kubeconfig} --trainer-image captionrun/trainer:0.1.0 &
  kubectl apply -f ${state.quickstart}
  kubectl get captionruns -w` : ''}`);
}

async function up(): Promise<number> {
  const existing = readState();
  if (existing && alive(existing.pid)) {
    console.log('already running');
    printSummary(existing);
    return 0;
  }
  if (existing) removeLeftovers(existing);
  mkdirSync(STATE_DIR, { recursive: true });
  rmSync(STATE_FILE, { force: true });
  const fd = openSync(LOG_FILE, 'w');
  const child = spawn(process.execPath, ['--import', 'tsx', fileURLToPath(import.meta.url), 'serve'], {
    cwd: REPO_ROOT,
    detached: true,
    stdio: ['ignore', fd, fd],
  });
  closeSync(fd);
  child.unref();
  console.error(`starting (log: ${LOG_FILE}; the first start builds the binaries, which takes a while)`);
  try {
    const state = await waitFor('the cluster to come up', () => {
      if (child.exitCode !== null) throw new Error(`supervisor exited with ${child.exitCode}`);
      const s = readState();
      return s?.pid === child.pid ? s : undefined;
    }, { timeoutMs: UP_TIMEOUT_MS, intervalMs: 500 });
    printSummary(state);
    return 0;
  } catch (err) {
    console.error(`${err instanceof Error ? err.message : String(err)}\n--- ${LOG_FILE} ---\n${tail(LOG_FILE)}`);
    if (child.pid && alive(child.pid)) process.kill(child.pid, 'SIGTERM');
    return 1;
  }
}

function tail(path: string): string {
  return existsSync(path) ? readFileSync(path, 'utf8').split('\n').slice(-30).join('\n') : '';
}

async function down(): Promise<number> {
  const state = readState();
  if (!state) {
    console.log('no cluster is running');
    return 0;
  }
  if (alive(state.pid)) {
    process.kill(state.pid, 'SIGTERM');
    const deadline = Date.now() + 60_000;
    while (alive(state.pid) && Date.now() < deadline) await sleep(200);
  }
  removeLeftovers(state);
  console.log('cluster stopped');
  return 0;
}

/** What a supervisor that died without cleaning up (SIGKILL, OOM) left behind. */
function removeLeftovers(state: ClusterState): void {
  for (const p of state.processes) signalGroup(p.pid, 'SIGKILL');
  for (const dir of state.dirs) rmSync(dir, { recursive: true, force: true });
  rmSync(STATE_FILE, { force: true });
}

function status(): number {
  const state = readState();
  if (!state || !alive(state.pid)) {
    console.log(state ? `not running (stale state in ${STATE_FILE}; run down to clean up)` : 'no cluster is running');
    return state ? 1 : 0;
  }
  printSummary(state);
  console.log('');
  const res = spawnSync(KUBECTL, ['--kubeconfig', state.kubeconfig, 'get', 'nodes,pods', '-A', '-o', 'wide'], { stdio: 'inherit' });
  return res.status ?? 1;
}

async function fault(path: string, body: Record<string, unknown>): Promise<number> {
  const state = readState();
  if (!state || !alive(state.pid)) {
    console.error('no cluster is running; start one with: npm run cluster -- up');
    return 1;
  }
  const res = await fetch(`${state.control}${path}`, { method: 'POST', body: JSON.stringify(body) });
  const text = await res.text();
  (res.ok ? console.log : console.error)(text);
  return res.ok ? 0 : 1;
}

async function readBody(req: IncomingMessage): Promise<Record<string, unknown>> {
  let raw = '';
  for await (const chunk of req) raw += String(chunk);
  return raw ? (JSON.parse(raw) as Record<string, unknown>) : {};
}

/** The supervisor: owns the environment until SIGTERM, serving fault injection on loopback. */
async function serve(): Promise<number> {
  const log = createLogger({ component: 'cluster-supervisor' });
  const owned: { env?: TestEnvironment } = {};
  let stopping = false;
  const shutdown = async (): Promise<void> => {
    if (stopping) return;
    stopping = true;
    log.info('stopping the test environment');
    await owned.env?.stop();
    rmSync(STATE_FILE, { force: true });
    process.exit(0);
  };
  // Registered before any child starts, so these (graceful) handlers replace processes.ts's exit-at-once ones.
  for (const sig of ['SIGTERM', 'SIGINT', 'SIGHUP'] as const) process.on(sig, () => void shutdown());

  const env = await startTestEnvironment({ logger: log });
  owned.env = env;
  const running = env;
  await env.minio.createBucket(QUICKSTART_BUCKET);
  writeFileSync(QUICKSTART_FILE, quickstartClusterSpec({ endpoint: env.minio.endpoint, secret: env.s3Secret.name }));
  const port = await freePort();
  const faults: Record<string, (b: Record<string, unknown>) => Promise<string> | string> = {
    '/kill-pod': (b) => {
      running.agent.killPod(String(b.namespace ?? 'default'), String(b.name), b.container ? String(b.container) : undefined);
      return `killed pod ${String(b.name)}`;
    },
    '/oom-kill-pod': (b) => {
      running.agent.oomKillPod(String(b.namespace ?? 'default'), String(b.name), b.container ? String(b.container) : undefined);
      return `OOM-killed pod ${String(b.name)}`;
    },
    '/stop-node': (b) => {
      running.agent.stopHeartbeat(String(b.name));
      return `stopped the heartbeat of node ${String(b.name)}`;
    },
    '/start-node': async (b) => {
      await running.agent.resumeHeartbeat(String(b.name));
      return `resumed the heartbeat of node ${String(b.name)}`;
    },
    '/fill-disk': (b) =>
      `wrote ${String(b.bytes)} bytes to ${running.agent.fillDisk(String(b.namespace ?? 'default'), String(b.name), String(b.volume), Number(b.bytes))}`,
  };
  const server = createServer((req, res) => {
    const handler = faults[req.url ?? ''];
    if (req.method !== 'POST' || !handler) {
      res.writeHead(404).end('unknown fault');
      return;
    }
    readBody(req)
      .then(handler)
      .then((msg) => res.end(msg))
      .catch((err: unknown) => res.writeHead(400).end(err instanceof Error ? err.message : String(err)));
  });
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));

  const state: ClusterState = {
    pid: process.pid,
    kubeconfig: env.cluster.kubeconfigPath,
    server: env.cluster.server,
    network: { dns: env.cluster.network.dnsAddress, podCidr: env.cluster.network.podCidr },
    s3: {
      endpoint: env.minio.endpoint,
      region: env.minio.region,
      accessKeyId: env.minio.accessKeyId,
      secretAccessKey: env.minio.secretAccessKey,
      secret: env.s3Secret.name,
    },
    nodes: [...env.agent.nodes.keys()],
    control: `http://127.0.0.1:${port}`,
    processes: [...env.cluster.processes, { name: 'minio', pid: env.minio.pid }],
    dirs: [env.cluster.dataDir, env.minio.dataDir, env.agent.workDir],
    log: LOG_FILE,
    quickstart: QUICKSTART_FILE,
  };
  writeFileSync(STATE_FILE, JSON.stringify(state, null, 2), { mode: 0o600 });
  log.info({ kubeconfig: state.kubeconfig, s3: state.s3.endpoint }, 'test environment up');
  return new Promise<number>(() => undefined);
}

async function main(argv: string[]): Promise<number> {
  const { positionals, values } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: { namespace: { type: 'string', short: 'n', default: 'default' }, container: { type: 'string', short: 'c' } },
  });
  const [command, ...rest] = positionals;
  const need = (count: number): boolean => {
    if (rest.length >= count) return true;
    console.error(USAGE);
    return false;
  };
  switch (command) {
    case 'up': return up();
    case 'down': return down();
    case 'status': return status();
    case 'serve': return serve();
    case 'kill-pod':
    case 'oom-kill-pod':
      return need(1) ? fault(`/${command}`, { name: rest[0], namespace: values.namespace, container: values.container }) : 2;
    case 'stop-node':
    case 'start-node':
      return need(1) ? fault(`/${command}`, { name: rest[0] }) : 2;
    case 'fill-disk':
      return need(3) ? fault('/fill-disk', { name: rest[0], volume: rest[1], bytes: Number(rest[2]), namespace: values.namespace }) : 2;
    default:
      console.error(USAGE);
      return 2;
  }
}

process.exitCode = await main(process.argv.slice(2));
