// Pod networking on the test cluster as a real cluster gives it: each pod its own loopback address (posted as
// status.podIP and given to the downward API), cluster DNS that answers from the apiserver, and each pod
// process resolving through its own /etc/resolv.conf with getaddrinfo, as a trainer resolves MASTER_ADDR.
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { Resolver } from 'node:dns/promises';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { CoreV1Api, type V1Container, type V1Pod, type V1Service } from '@kubernetes/client-node';
import { startCluster, type Cluster } from '../env/cluster.js';
import { decodeAnswer, encodeQuery, RCODE, TYPE } from '../env/dns-wire.js';
import { kubectl } from '../env/kubectl.js';
import { NodeAgent } from '../env/node-agent.js';
import { podHostsFile, podResolvConf } from '../env/pod-network.js';
import { sandboxArgv, UNSHARE_FAILED } from '../env/pod-sandbox.js';
import { isTerminal, waitForPod, waitForPodGone } from '../env/pod-waits.js';
import { spawnGroup } from '../env/processes.js';
import { waitFor } from '../env/wait.js';

const NS = 'default';
const PORT = 29500;
let cluster: Cluster;
let agent: NodeAgent;
let core: CoreV1Api;
let resolver: Resolver;
let scratch: string;

before(async () => {
  scratch = mkdtempSync(join(tmpdir(), 'captionrun-dns-test-'));
  cluster = await startCluster();
  agent = await NodeAgent.start({ cluster, nodes: [{ name: 'gpu-a', gpus: 4 }, { name: 'gpu-b', gpus: 4 }] });
  core = cluster.kubeConfig().makeApiClient(CoreV1Api);
  // The test asks cluster DNS directly too, as `dig @server` would; pods go through their resolv.conf.
  resolver = new Resolver({ timeout: 2000, tries: 2 });
  resolver.setServers([cluster.network.dnsAddress]);
});

after(async () => {
  await agent?.stop();
  await cluster?.stop();
  rmSync(scratch, { recursive: true, force: true });
});

const POD_IP_ENV = { name: 'POD_IP', valueFrom: { fieldRef: { fieldPath: 'status.podIP' } } };

/** A TCP server on the pod's own address (from the downward API) that greets with the pod's hostname. */
const SERVER = [
  "const net = require('net'); const os = require('os');",
  `net.createServer((s) => s.end('hello from ' + os.hostname())).listen(${PORT}, process.env.POD_IP, () => console.log('listening on ' + process.env.POD_IP));`,
].join('\n');

function nodePod(name: string, script: string, extra: Partial<V1Container> = {}, spec: Partial<NonNullable<V1Pod['spec']>> = {}, labels?: Record<string, string>): V1Pod {
  return {
    metadata: { name, namespace: NS, ...(labels ? { labels } : {}) },
    spec: {
      restartPolicy: 'Never',
      terminationGracePeriodSeconds: 2,
      containers: [{ name: 'main', image: 'local/node', command: [process.execPath, '-e', script], env: [POD_IP_ENV], ...extra }],
      ...spec,
    },
  };
}

function shellPod(name: string, script: string, env: V1Container['env'] = []): V1Pod {
  return {
    metadata: { name, namespace: NS },
    spec: { restartPolicy: 'Never', containers: [{ name: 'main', image: 'local/shell', command: ['sh', '-c', script], env }] },
  };
}

async function logs(name: string): Promise<string> {
  const res = await kubectl(cluster.kubeconfigPath, ['logs', name]);
  assert.equal(res.code, 0, res.stderr);
  return res.stdout;
}

async function listening(name: string): Promise<V1Pod> {
  const pod = await waitForPod(core, NS, name, 'to run', (p) => p.status?.containerStatuses?.[0]?.state?.running !== undefined && !!p.status.podIP);
  await waitFor(`${name} to listen`, async () => ((await logs(name)).includes('listening on') ? true : undefined), { timeoutMs: 30_000, intervalMs: 250 });
  return pod;
}

function greeting(address: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect(PORT, address);
    let data = '';
    socket.on('data', (d) => (data += String(d)));
    socket.on('end', () => resolve(data));
    socket.on('error', reject);
  });
}

function headless(name: string, selector: Record<string, string>, publishNotReadyAddresses: boolean): V1Service {
  return {
    metadata: { name, namespace: NS },
    spec: { clusterIP: 'None', selector, publishNotReadyAddresses, ports: [{ name: 'rendezvous', port: PORT, targetPort: PORT }] },
  };
}

function inBlock(address: string | undefined): boolean {
  const [prefix] = cluster.network.podCidr.split('.0.0/16');
  return !!address && address.startsWith(`${prefix}.`) && !address.startsWith(`${prefix}.0.`);
}

test('two pods get distinct addresses and each listens on its own address on the same port at once', async () => {
  await core.createNamespacedPod({ namespace: NS, body: nodePod('listener-a', SERVER) });
  await core.createNamespacedPod({ namespace: NS, body: nodePod('listener-b', SERVER) });
  const a = await listening('listener-a');
  const b = await listening('listener-b');
  const ipA = a.status?.podIP ?? '';
  const ipB = b.status?.podIP ?? '';
  assert.notEqual(ipA, ipB);
  for (const [pod, ip] of [[a, ipA], [b, ipB]] as const) {
    assert.ok(inBlock(ip), `${ip} in ${cluster.network.podCidr}`);
    assert.deepEqual(pod.status?.podIPs?.map((p) => p.ip), [ip]);
    assert.equal(pod.status?.hostIP, '127.0.0.1');
    // The downward API's status.podIP is the address the API shows.
    assert.match(await logs(pod.metadata?.name ?? ''), new RegExp(`^listening on ${ip.replaceAll('.', '\\.')}\n`));
  }
  // Each process's hostname is its pod's (its own UTS namespace), and each answers on its own address.
  assert.equal(await greeting(ipA), 'hello from listener-a');
  assert.equal(await greeting(ipB), 'hello from listener-b');

  const held = [...agent.nodes.values()].reduce((n, node) => n + node.addresses.inUse, 0);
  await core.deleteNamespacedPod({ name: 'listener-a', namespace: NS });
  await core.deleteNamespacedPod({ name: 'listener-b', namespace: NS });
  await waitForPodGone(core, NS, 'listener-a', 30_000);
  await waitForPodGone(core, NS, 'listener-b', 30_000);
  await waitFor('the addresses to be released', () =>
    ([...agent.nodes.values()].reduce((n, node) => n + node.addresses.inUse, 0) === held - 2 ? true : undefined), { timeoutMs: 10_000 });
});

test('a pod resolves another pod\'s hostname.subdomain with getaddrinfo and connects to it', async () => {
  await core.createNamespacedService({ namespace: NS, body: headless('rdzv', { app: 'rdzv' }, true) });
  await core.createNamespacedPod({
    namespace: NS,
    body: nodePod('rdzv-master', SERVER, {}, { hostname: 'master-0', subdomain: 'rdzv' }, { app: 'rdzv' }),
  });
  const master = await listening('rdzv-master');
  const masterIP = master.status?.podIP ?? '';
  const name = `master-0.rdzv.${NS}.svc.cluster.local`;

  const client = [
    "const dns = require('dns'); const net = require('net');",
    'const name = process.env.MASTER_ADDR;',
    'dns.lookup(name, { family: 4 }, (err, address) => {',
    "  if (err) { console.log('lookup failed ' + err.code); process.exit(2); }",
    "  console.log('resolved ' + address);",
    `  const s = net.connect(${PORT}, name);`,
    "  let got = ''; s.on('data', (d) => (got += d)); s.on('end', () => console.log('got ' + got));",
    "  s.on('error', (e) => { console.log('connect failed ' + e.message); process.exit(3); });",
    '});',
  ].join('\n');
  // MASTER_ADDR reaches the process as written: no rewriting, the pod's resolver does the work.
  await core.createNamespacedPod({
    namespace: NS,
    body: nodePod('rdzv-client', client, { env: [POD_IP_ENV, { name: 'MASTER_ADDR', value: name }] }),
  });
  const done = await waitForPod(core, NS, 'rdzv-client', 'to finish', isTerminal);
  const out = await logs('rdzv-client');
  assert.equal(done.status?.phase, 'Succeeded', out);
  assert.equal(out, `resolved ${masterIP}\ngot hello from master-0\n`);

  // glibc through the pod's files: the resolv.conf a kubelet writes, the short name through the search path,
  // the pod's own name from its hosts file, and getent's exit code 2 for a name that does not exist.
  await core.createNamespacedPod({
    namespace: NS,
    body: shellPod('rdzv-getent', [
      'cat /etc/resolv.conf',
      `getent hosts ${name}`,
      'getent hosts master-0.rdzv',
      'getent hosts "$(hostname)"',
      `getent hosts nope.rdzv.${NS}.svc.cluster.local; echo "missing=$?"`,
      'getent hosts nothing.example.com; echo "outside=$?"',
      'getent hosts localhost | head -1',
    ].join('\n')),
  });
  const getent = await waitForPod(core, NS, 'rdzv-getent', 'to finish', isTerminal);
  const lines = (await logs('rdzv-getent')).split('\n');
  assert.equal(getent.status?.phase, 'Succeeded', lines.join('\n'));
  // getent prints the address padded to 15 columns, a space, then the canonical name.
  const entry = (ip: string, host: string) => `${ip.padEnd(15)} ${host}`;
  assert.deepEqual(lines, [
    `nameserver ${cluster.network.dnsAddress}`,
    `search ${NS}.svc.cluster.local svc.cluster.local cluster.local`,
    'options ndots:5',
    entry(masterIP, name),
    entry(masterIP, name),
    entry(getent.status?.podIP ?? '', 'rdzv-getent'),
    'missing=2',
    'outside=2',
    entry('127.0.0.1', 'localhost'),
    '',
  ]);
});

test('cluster DNS answers for Services and pods by the endpoint rules, and NXDOMAIN for the rest', async () => {
  const suffix = `${NS}.svc.cluster.local`;
  // A headless Service without publishNotReadyAddresses lists its pods while they are Ready and not deleting.
  await core.createNamespacedService({ namespace: NS, body: headless('ready-only', { app: 'ready-only' }, false) });
  await core.createNamespacedPod({
    namespace: NS,
    body: nodePod('ready-only-0', `process.on('SIGTERM', () => {}); ${SERVER}`, {}, { hostname: 'ready-only-0', subdomain: 'ready-only', terminationGracePeriodSeconds: 5 }, { app: 'ready-only' }),
  });
  const pod = await listening('ready-only-0');
  const ip = pod.status?.podIP ?? '';
  assert.deepEqual(await resolver.resolve4(`ready-only.${suffix}`), [ip]);
  assert.deepEqual(await resolver.resolve4(`ready-only-0.ready-only.${suffix}`), [ip]);
  assert.deepEqual(await resolver.resolve4(`${ip.replaceAll('.', '-')}.ready-only.${suffix}`), [ip]);
  assert.deepEqual(await resolver.resolve4(`${ip.replaceAll('.', '-')}.${NS}.pod.cluster.local`), [ip]);
  // The name exists without an AAAA record: NODATA, so a getaddrinfo asking for both takes the A answer.
  await assert.rejects(resolver.resolve6(`ready-only.${suffix}`), { code: 'ENODATA' });
  // The rendezvous Service of the previous test still selects its master: a pod that exists is found.
  assert.equal((await resolver.resolve4(`rdzv.${suffix}`)).length, 1);

  // A ClusterIP Service answers with its clusterIP (nothing routes it here: there is no kube-proxy).
  const created = await core.createNamespacedService({
    namespace: NS,
    body: { metadata: { name: 'web', namespace: NS }, spec: { selector: { app: 'web' }, ports: [{ port: 80 }] } },
  });
  // The server learns Services from its watch, a moment after the create returns.
  const web = await waitFor('web in DNS', () => resolver.resolve4(`web.${suffix}`).catch(() => undefined), { timeoutMs: 5000, intervalMs: 50 });
  assert.deepEqual(web, [created.spec?.clusterIP]);

  for (const missing of [`nope.${suffix}`, `nope.ready-only.${suffix}`, `a.b.c.${suffix}`, 'nothing.cluster.local', 'example.com']) {
    await assert.rejects(resolver.resolve4(missing), { code: 'ENOTFOUND' }, missing);
  }

  // Over TCP as over UDP (a resolver switches to TCP for a truncated answer).
  const tcp = await tcpQuery(cluster.network.dnsAddress, encodeQuery(7, `ready-only-0.ready-only.${suffix}`, TYPE.A));
  assert.deepEqual(tcp, { id: 7, rcode: RCODE.NOERROR, truncated: false, addresses: [ip] });
  const tcpMissing = await tcpQuery(cluster.network.dnsAddress, encodeQuery(8, `nope.${suffix}`, TYPE.A));
  assert.equal(tcpMissing.rcode, RCODE.NXDOMAIN);

  // Deleting: the pod ignores SIGTERM and keeps running for its grace period, but leaves DNS at once.
  await core.deleteNamespacedPod({ name: 'ready-only-0', namespace: NS });
  await waitFor('the terminating pod to leave DNS', () =>
    resolver.resolve4(`ready-only.${suffix}`).then(() => undefined, (err: { code?: string }) => (err.code === 'ENOTFOUND' ? true : undefined)), { timeoutMs: 5000, intervalMs: 100 });
  await assert.rejects(resolver.resolve4(`ready-only-0.ready-only.${suffix}`), { code: 'ENOTFOUND' });
  assert.equal((await core.readNamespacedPod({ name: 'ready-only-0', namespace: NS })).status?.phase, 'Running', 'still terminating');
});

test('a new pod is in DNS within a second of its address being posted', async () => {
  await core.createNamespacedService({ namespace: NS, body: headless('fresh', { app: 'fresh' }, true) });
  await core.createNamespacedPod({
    namespace: NS,
    body: nodePod('fresh-0', 'setInterval(() => {}, 1000)', {}, { hostname: 'fresh-0', subdomain: 'fresh' }, { app: 'fresh' }),
  });
  const pod = await waitFor('fresh-0 to have an address', async () => {
    const p = await core.readNamespacedPod({ name: 'fresh-0', namespace: NS });
    return p.status?.podIP ? p : undefined;
  }, { timeoutMs: 60_000, intervalMs: 50 });
  // From the moment the test sees the address (which is after it was posted), DNS has a second to answer.
  const answered = await waitFor('fresh-0 in DNS', () => resolver.resolve4(`fresh-0.fresh.${NS}.svc.cluster.local`).catch(() => undefined), { timeoutMs: 1000, intervalMs: 50 });
  assert.deepEqual(answered, [pod.status?.podIP]);
  assert.deepEqual(await resolver.resolve4(`fresh.${NS}.svc.cluster.local`), [pod.status?.podIP]);
  await core.deleteNamespacedPod({ name: 'fresh-0', namespace: NS });
});

test('a missing program is a StartError, and so is a sandbox that cannot be made', async () => {
  await core.createNamespacedPod({
    namespace: NS,
    body: { metadata: { name: 'no-program' }, spec: { restartPolicy: 'Never', containers: [{ name: 'main', image: 'local/shell', command: ['no-such-program-here'] }] } },
  });
  const done = await waitForPod(core, NS, 'no-program', 'to fail', isTerminal);
  const terminated = done.status?.containerStatuses?.[0]?.state?.terminated;
  assert.equal(terminated?.reason, 'StartError');
  assert.equal(terminated?.exitCode, 128);
  assert.equal(terminated?.message, 'exec: "no-such-program-here": executable file not found in $PATH');

  // The sandbox script on its own: a resolv.conf that cannot be mounted leaves its reason in the status file.
  const status = join(scratch, 'status');
  writeFileSync(status, UNSHARE_FAILED);
  const [program = '', ...args] = sandboxArgv({ resolvConf: join(scratch, 'missing'), statusFile: status }, ['/bin/true']);
  const code = await spawnGroup('sandbox', program, args, { logPath: join(scratch, 'log') }).exited;
  assert.equal(code, 128);
  assert.match(readFileSync(status, 'utf8'), /^cannot bind-mount the pod's resolv\.conf over \/etc\/resolv\.conf: /);
});

test('resolv.conf and hosts follow dnsPolicy, dnsConfig and hostAliases as the kubelet writes them', () => {
  const network = { dnsAddress: '127.100.0.10', clusterDomain: 'cluster.local' };
  const pod = (spec: Partial<NonNullable<V1Pod['spec']>>): V1Pod => ({ metadata: { name: 'p', namespace: 'ml' }, spec: { containers: [], ...spec } });
  const host = 'nameserver 10.0.0.2\nsearch corp.example\noptions timeout:2\n';
  assert.equal(podResolvConf(pod({}), network, host), 'nameserver 127.100.0.10\nsearch ml.svc.cluster.local svc.cluster.local cluster.local\noptions ndots:5\n');
  assert.equal(podResolvConf(pod({ dnsPolicy: 'Default' }), network, host), 'nameserver 10.0.0.2\nsearch corp.example\noptions timeout:2\n');
  assert.equal(podResolvConf(pod({ hostNetwork: true }), network, host), 'nameserver 10.0.0.2\nsearch corp.example\noptions timeout:2\n');
  assert.equal(podResolvConf(pod({ hostNetwork: true, dnsPolicy: 'ClusterFirstWithHostNet' }), network, host).split('\n')[0], 'nameserver 127.100.0.10');
  assert.equal(
    podResolvConf(pod({ dnsPolicy: 'None', dnsConfig: { nameservers: ['1.2.3.4'], searches: ['a.example'], options: [{ name: 'ndots', value: '2' }, { name: 'edns0' }] } }), network, host),
    'nameserver 1.2.3.4\nsearch a.example\noptions ndots:2 edns0\n',
  );
  assert.equal(podResolvConf(pod({ dnsConfig: { options: [{ name: 'ndots', value: '1' }] } }), network, host).split('\n')[2], 'options ndots:1');
  assert.equal(
    podHostsFile(pod({ hostname: 'w-0', subdomain: 'run', hostAliases: [{ ip: '10.1.1.1', hostnames: ['a', 'b'] }] }), '127.100.1.7', 'cluster.local', '::1 localhost\n'),
    '# Kubernetes-managed hosts file.\n127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n127.100.1.7\tw-0.run.ml.svc.cluster.local\tw-0\n\n# Entries added by HostAliases.\n10.1.1.1\ta\tb\n',
  );
  assert.equal(podHostsFile(pod({}), '127.100.1.8', 'cluster.local', ''), '# Kubernetes-managed hosts file.\n127.0.0.1\tlocalhost\n127.100.1.8\tp\n');
});

function tcpQuery(server: string, query: Buffer): Promise<ReturnType<typeof decodeAnswer>> {
  return new Promise((resolve, reject) => {
    const socket = connect(53, server);
    const prefix = Buffer.alloc(2);
    prefix.writeUInt16BE(query.length);
    socket.write(Buffer.concat([prefix, query]));
    let buffered = Buffer.alloc(0);
    socket.on('data', (chunk: Buffer) => {
      buffered = Buffer.concat([buffered, chunk]);
      if (buffered.length >= 2 && buffered.length >= 2 + buffered.readUInt16BE(0)) {
        socket.end();
        resolve(decodeAnswer(buffered.subarray(2, 2 + buffered.readUInt16BE(0))));
      }
    });
    socket.on('error', reject);
  });
}
