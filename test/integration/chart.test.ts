import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { binDir, monitoringCrd } from '../env/binaries.js';
import { startCluster, type Cluster } from '../env/cluster.js';

const repo = fileURLToPath(new URL('../..', import.meta.url));
const chart = 'charts/captionrun';
const allOn = 'test/fixtures/chart-values-all-on.yaml';
const kubeVersion = '1.32.9';
let cluster: Cluster;

function run(cmd: string, args: string[], input?: string): { status: number | null; out: string } {
  const r = spawnSync(cmd, args, {
    cwd: repo,
    input,
    encoding: 'utf8',
    env: { ...process.env, KUBECONFIG: cluster?.kubeconfigPath ?? '/nonexistent', PATH: `${binDir()}:${process.env.PATH}` },
  });
  return { status: r.status, out: `${r.stdout}${r.stderr}` };
}

function ok(cmd: string, ...args: string[]): string {
  const r = run(cmd, args);
  assert.equal(r.status, 0, `${cmd} ${args.join(' ')}\n${r.out}`);
  return r.out;
}

before(async () => {
  cluster = await startCluster();
  ok('kubectl', 'apply', '--server-side', '-f', monitoringCrd('servicemonitors'), '-f', monitoringCrd('podmonitors'), '-f', monitoringCrd('prometheusrules'));
  ok('kubectl', 'create', 'namespace', 'ml');
  ok('kubectl', 'create', 'namespace', 'captionrun-system');
});

after(async () => {
  await cluster?.stop();
});

test('helm lint passes with default values and with every option on', () => {
  ok('helm', 'lint', '--strict', chart);
  ok('helm', 'lint', '--strict', chart, '-f', allOn);
});

for (const [name, set, message] of [
  ['negative replicas', 'replicaCount=-1', /replicaCount: Must be greater than or equal to 1/],
  ['unknown log level', 'logLevel=loud', /logLevel must be one of the following: "trace"/],
  ['a string where an integer goes', 'metrics.port=metrics', /metrics.port: Invalid type. Expected: integer, given: string/],
  ['an unknown value', 'replicas=2', /Additional property replicas is not allowed/],
  ['two replicas without leader election', 'leaderElection.enabled=false', /replicaCount > 1 needs leaderElection.enabled/],
] as const) {
  test(`bad values fail at install with the schema's message: ${name}`, () => {
    const r = run('helm', ['template', 't', chart, '--kube-version', kubeVersion, '--set', set]);
    assert.notEqual(r.status, 0, 'rejected');
    assert.match(r.out, message);
  });
}

for (const [name, values] of [['default values', [] as string[]], ['every option on', ['-f', allOn]]] as const) {
  test(`helm template output passes the apiserver's dry run: ${name}`, () => {
    const rendered = ok('helm', 'template', 'cr', chart, '--include-crds', '-n', 'captionrun-system', '--kube-version', kubeVersion, ...values);
    const r = run('kubectl', ['apply', '--dry-run=server', '-f', '-'], rendered);
    assert.equal(r.status, 0, r.out);
    if (values.length > 0) {
      assert.match(r.out, /prometheusrule.monitoring.coreos.com\/cr-captionrun created \(server dry run\)/);
      assert.match(r.out, /podmonitor.monitoring.coreos.com\/cr-captionrun-trainers created \(server dry run\)/);
    }
  });
}

/** `kubectl auth can-i --list` rows for API resources: "resource verbs". */
function permissions(serviceAccount: string, namespace: string): string[] {
  const out = ok('kubectl', 'auth', 'can-i', '--list', `--as=system:serviceaccount:captionrun-system:${serviceAccount}`, '-n', namespace);
  return out
    .split('\n')
    .slice(1)
    .filter((line) => /^\S/.test(line))
    .map((line) => {
      const cols = line.trim().split(/\s{2,}/);
      const names = cols[2] !== undefined && cols[2] !== '[]' ? ` ${cols[2]}` : '';
      return `${cols[0]}${names} ${cols.at(-1)}`;
    })
    .sort();
}

// Everything the operator may do in a run's namespace, and nothing else. Adding a verb to the chart means
// adding it here, on purpose. The self*reviews rows come from the built-in system:basic-user role.
const operatorPermissions = [
  'captiontrainingruns.captionrun.dev [get list watch]',
  'captiontrainingruns.captionrun.dev/status [update]',
  'configmaps [create update]',
  'events [create]',
  'nodes [get]',
  'pods [list watch create delete]',
  'secrets [captionrun-s3] [get]',
  'selfsubjectaccessreviews.authorization.k8s.io [create]',
  'selfsubjectreviews.authentication.k8s.io [create]',
  'selfsubjectrulesreviews.authorization.k8s.io [create]',
  'services [list watch create]',
].sort();

test('helm install: the operator gets exactly its least-privilege RBAC, trainers get none', () => {
  ok('helm', 'install', 'cr', chart, '-n', 'captionrun-system');
  assert.deepEqual(permissions('cr-captionrun', 'ml'), operatorPermissions);
  // Leader election adds the Lease, only in the operator's own namespace.
  assert.deepEqual(
    permissions('cr-captionrun', 'captionrun-system'),
    [...operatorPermissions, 'leases.coordination.k8s.io [get create update]'].sort(),
  );
  // Of all Secrets, only the checkpoint credentials the chart names.
  assert.equal(run('kubectl', ['auth', 'can-i', 'get', 'secrets/captionrun-s3', '--as=system:serviceaccount:captionrun-system:cr-captionrun', '-n', 'ml']).out.trim(), 'yes');
  assert.equal(run('kubectl', ['auth', 'can-i', 'get', 'secrets/db-password', '--as=system:serviceaccount:captionrun-system:cr-captionrun', '-n', 'ml']).out.trim(), 'no');
  for (const verb of ['get', 'list']) {
    const r = run('kubectl', ['auth', 'can-i', verb, 'secrets', '--as=system:serviceaccount:captionrun-system:captionrun-trainer', '-n', 'captionrun-system']);
    assert.equal(r.out.trim(), 'no', `trainer pods cannot ${verb} Secrets`);
  }
  const sa = JSON.parse(ok('kubectl', 'get', 'serviceaccount', 'captionrun-trainer', '-n', 'captionrun-system', '-o', 'json')) as {
    automountServiceAccountToken?: boolean;
  };
  assert.equal(sa.automountServiceAccountToken, false, 'trainer pods get no API token');
});

test('helm uninstall removes everything but the CRD', () => {
  ok('helm', 'uninstall', 'cr', '-n', 'captionrun-system', '--wait');
  const left = ok('kubectl', 'get', 'deployments,services,serviceaccounts,roles,rolebindings', '-n', 'captionrun-system', '-l', 'app.kubernetes.io/instance=cr', '-o', 'name');
  assert.equal(left.trim(), '');
  assert.equal(run('kubectl', ['get', 'clusterrole', 'cr-captionrun']).status, 1, 'the ClusterRole is gone');
  ok('kubectl', 'get', 'crd', 'captiontrainingruns.captionrun.dev');
});

for (const dir of ['manifests', 'manifests/monitoring']) {
  test(`kubectl apply -k ${dir} passes the apiserver's dry run`, () => {
    const r = run('kubectl', ['apply', '-k', dir, '--dry-run=server']);
    assert.equal(r.status, 0, r.out);
    assert.match(r.out, /deployment.apps\/captionrun (created|configured|unchanged) \(server dry run\)/);
    if (dir.endsWith('monitoring')) {
      assert.match(r.out, /prometheusrule.monitoring.coreos.com\/captionrun created/);
      assert.match(r.out, /podmonitor.monitoring.coreos.com\/captionrun-trainers created/);
    }
  });
}
