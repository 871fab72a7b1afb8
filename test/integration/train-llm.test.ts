// A run with spec.evaluation.llm, end to end on the Flickr8k-format fixture: after training, rank 0 captions
// the validation image through the LLM replay server, writes llm-captions.json into the outputs and puts the
// LLM beside the trained GRU in report.html. The API key given to the run reaches the endpoint and no log
// line of the supervisor or the trainer. Relaunched on the finished checkpoint, the end of the run is redone:
// with a wrong key (and no cache) it fails naming the endpoint and cause (exit 3); with the right one the
// answer comes from the response cache and the endpoint is asked nothing.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { LlmCaptionsFile } from '../../trainer-image/eval/llm/caption-images.js';
import { loadRecordings, startLlmReplayServer } from '../env/llm-replay-server.js';
import { startCli } from './train-helpers.js';

const root = mkdtempSync(join(tmpdir(), 'captionrun-train-llm-'));
const dataset = fileURLToPath(new URL('../fixtures/data-flickr8k-token', import.meta.url));
const recordings = loadRecordings(fileURLToPath(new URL('../fixtures/llm-replay/recordings.json', import.meta.url)));
const SECRET = 'sk-run-secret-9c41e7d2b8';

function spec(endpoint: string): string {
  return `apiVersion: captionrun.dev/v1alpha1
kind: CaptionTrainingRun
metadata:
  name: llm-compare
spec:
  dataset:
    format: flickr8k
    source: ${dataset}
  model:
    embeddingDim: 16
    hiddenDim: 16
    attentionDim: 16
  training:
    epochs: 2
    batchSize: 8
    learningRate: 0.01
    seed: 3
  checkpoint:
    store:
      local:
        path: ${join(root, 'checkpoints')}
    everySteps: 2
  restartPolicy:
    backoffLimit: 0
  evaluation:
    beamSize: 2
    llm:
      endpoint: ${endpoint}
      model: replay-vision-model
      apiKeySecret: { name: llm-key, key: token }
      concurrency: 2
      timeoutSeconds: 30
`;
}

test('the run captions its validation split with the LLM, reports it, and never logs the key', { timeout: 600_000 }, async () => {
  const server = await startLlmReplayServer(recordings, { requireAuthorization: `Bearer ${SECRET}` });
  try {
    const file = join(root, 'run.yaml');
    writeFileSync(file, spec(server.url));
    const output = join(root, 'outputs');
    const env = { CAPTIONRUN_CACHE: join(root, 'cache'), CAPTIONRUN_LLM_API_KEY: SECRET, CAPTIONRUN_LOG_LEVEL: 'debug' };
    const run = startCli(['train', '--output', output, file], env);
    const { code } = await run.exit;
    assert.equal(code, 0, run.stderrText().slice(-3000));
    const llm = JSON.parse(readFileSync(join(output, 'llm-captions.json'), 'utf8')) as LlmCaptionsFile;
    assert.deepEqual(llm.captions.map((c) => [c.id, c.caption]), [['1004_grey.jpg', 'A grey picture of a wet street.']]);
    assert.equal(llm.captions[0]?.references.length, 5);
    assert.equal(llm.captioner.stats.requests, 1);
    assert.deepEqual(server.log.map((l) => l.authorization), [`Bearer ${SECRET}`]);
    const report = readFileSync(join(output, 'report.html'), 'utf8');
    assert.match(report, /LLM replay-vision-model/);
    assert.match(report, /A grey picture of a wet street\./);
    assert.match(run.stdout(), /LLM captions: 1 of 1 images in llm-captions\.json/);
    assert.ok(run.lines.some((l) => l.msg === 'LLM captions: 1 of 1 images (0 cached, 0 failed)'), 'the trainer logged the LLM step');
    assert.ok(!run.stderrText().includes(SECRET) && !run.stdout().includes(SECRET), 'the key is in no log line');
    assert.ok(!readFileSync(join(output, 'llm-captions.json'), 'utf8').includes(SECRET));

    // The checkpoint is finished: a relaunch goes straight to the end of the run. With an empty response
    // cache, so that the wrong key is sent.
    const wrong = startCli(['trainer', '--output', output, file], { ...env, CAPTIONRUN_CACHE: join(root, 'empty-cache'), CAPTIONRUN_LLM_API_KEY: 'sk-wrong-key-31337' });
    assert.equal((await wrong.exit).code, 3, wrong.stderrText().slice(-3000));
    assert.match(wrong.stderrText(), new RegExp(`${server.url.replace(/[./]/g, '\\$&')}: unauthorized: HTTP 401`));
    assert.ok(!wrong.stderrText().includes('sk-wrong-key-31337'), 'a wrong key is not logged either');
    const requestsBefore = server.log.length;
    const again = startCli(['trainer', '--output', output, file], env);
    assert.equal((await again.exit).code, 0, again.stderrText().slice(-3000));
    assert.equal(server.log.length, requestsBefore, 'the answer came from the response cache');
    assert.ok(!again.stderrText().includes(SECRET));
  } finally {
    await server.close();
  }
});
