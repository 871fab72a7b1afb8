// The generated CRD against a real kube-apiserver: it is accepted, kubectl shows its printer columns and
// explains its fields, and bad specs are refused at admission by the OpenAPI schema and by the CEL rules.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, before, test } from 'node:test';
import { parse } from 'yaml';
import { startCluster, type Cluster } from '../env/cluster.js';
import { kubectl, waitForCrdEstablished } from '../env/kubectl.js';

const repo = new URL('../../', import.meta.url);
const crdPath = new URL('crds/captiontrainingruns.captionrun.dev.yaml', repo).pathname;
const quickstart = readFileSync(new URL('manifests/examples/quickstart.yaml', repo), 'utf8');

let cluster: Cluster;

before(async () => {
  cluster = await startCluster();
  const applied = await kubectl(cluster.kubeconfigPath, ['apply', '-f', crdPath]);
  assert.equal(applied.code, 0, `the apiserver rejected the CRD:\n${applied.stderr}`);
  await waitForCrdEstablished(cluster.kubeconfigPath, 'captiontrainingruns.captionrun.dev');
});

after(async () => {
  await cluster?.stop();
});

function withName(manifest: string, name: string): string {
  return manifest.replace(/^ {2}name: .*$/m, `  name: ${name}`);
}

test('kubectl get captionruns prints every printer column of the CRD', async () => {
  const created = await kubectl(cluster.kubeconfigPath, ['apply', '-f', '-'], quickstart);
  assert.equal(created.code, 0, created.stderr);
  const crd = parse(readFileSync(crdPath, 'utf8')) as {
    spec: { versions: { additionalPrinterColumns?: { name: string; priority?: number }[] }[] };
  };
  const all = crd.spec.versions[0]?.additionalPrinterColumns ?? [];
  // Priority 0 columns show by default; the others (the report's URI) only with -o wide.
  const columns = all.filter((c) => !c.priority).map((c) => c.name.toUpperCase());
  const wide = all.filter((c) => c.priority).map((c) => c.name.toUpperCase());
  assert.ok(columns.length >= 8, `expected the printer columns of the design, got ${columns.join(', ')}`);

  const header = async (args: string[]): Promise<{ columns: string[]; rows: string[] }> => {
    const listed = await kubectl(cluster.kubeconfigPath, ['get', 'captionruns', ...args]);
    assert.equal(listed.code, 0, listed.stderr);
    const [first = '', ...rows] = listed.stdout.trim().split('\n');
    return { columns: first.trim().split(/\s+/), rows };
  };
  const plain = await header([]);
  assert.deepEqual(plain.columns, ['NAME', ...columns]);
  assert.ok(plain.rows.some((r) => r.startsWith('quickstart ')), plain.rows.join('\n'));
  assert.deepEqual((await header(['-o', 'wide'])).columns, ['NAME', ...columns, ...wide]);
});

test('kubectl explain shows the schema descriptions', async () => {
  const explained = await kubectl(cluster.kubeconfigPath, ['explain', 'captiontrainingruns.spec.model.decoder']);
  assert.equal(explained.code, 0, explained.stderr);
  assert.match(explained.stdout, /Recurrent cell of the decoder/);
});

test('an enum violation is rejected by the schema with the field named', async () => {
  const bad = withName(quickstart, 'bad-decoder').replace('decoder: gru', 'decoder: lstn');
  const res = await kubectl(cluster.kubeconfigPath, ['apply', '-f', '-'], bad);
  assert.notEqual(res.code, 0);
  assert.match(res.stderr, /spec\.model\.decoder: Unsupported value: "lstn"/);
  const get = await kubectl(cluster.kubeconfigPath, ['get', 'captionrun', 'bad-decoder']);
  assert.match(get.stderr, /NotFound/);
});

test('a CEL rule violation is rejected with the rule message', async () => {
  const bad = withName(quickstart, 'bad-dataset').replace('format: synthetic', 'format: flickr8k');
  const res = await kubectl(cluster.kubeconfigPath, ['apply', '-f', '-'], bad);
  assert.notEqual(res.code, 0);
  assert.match(res.stderr, /spec\.dataset\.source: Required value: spec\.dataset\.source is required for format flickr8k/);
});

test('the apiserver refuses a teacher-forcing schedule the trainer could not follow, as validate does', async () => {
  const schedule = (name: string, teacherForcing: string): string => withName(quickstart, name).replace('    seed: 42\n', `    seed: 42\n    teacherForcing: ${teacherForcing}\n`);
  const good = await kubectl(cluster.kubeconfigPath, ['apply', '--dry-run=server', '-f', '-'], schedule('tf-linear', '{schedule: linear, end: 0.5, decaySteps: 200}'));
  assert.equal(good.code, 0, good.stderr);
  const missing = await kubectl(cluster.kubeconfigPath, ['apply', '--dry-run=server', '-f', '-'], schedule('tf-no-steps', '{schedule: linear, end: 0.5}'));
  assert.notEqual(missing.code, 0);
  assert.match(missing.stderr, /spec\.training\.teacherForcing\.decaySteps: Invalid value: .*belongs to schedule linear/);
  const rising = await kubectl(cluster.kubeconfigPath, ['apply', '--dry-run=server', '-f', '-'], schedule('tf-rising', '{schedule: inverseSigmoid, start: 0.5, end: 0.9, k: 100}'));
  assert.notEqual(rising.code, 0);
  assert.match(rising.stderr, /spec\.training\.teacherForcing\.end: Invalid value: .*must not exceed start/);
});

test('defaults fill in the parts of the spec a user leaves out', async () => {
  const res = await kubectl(cluster.kubeconfigPath, ['get', 'captionrun', 'quickstart', '-o', 'json']);
  assert.equal(res.code, 0, res.stderr);
  const run = JSON.parse(res.stdout) as { spec: { resources: { terminationGracePeriodSeconds?: number }; evaluation?: unknown } };
  assert.equal(typeof run.spec.resources.terminationGracePeriodSeconds, 'number');
  assert.ok(run.spec.evaluation, 'evaluation is defaulted when omitted');
});
