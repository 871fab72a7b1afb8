// The real trainer serves /metrics while it trains: the health monitor's series (feature extraction's
// progress included) and the checkpoint library's, all labelled with the run, as the alert rules and the
// chart's PodMonitor expect.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from '../env/minio.js';
import { startCli, tinySpec } from './train-helpers.js';

test('a training trainer exports run-labelled step, checkpoint, disk and threshold metrics', async () => {
  const root = mkdtempSync(join(tmpdir(), 'captionrun-trainer-metrics-'));
  const file = join(root, 'run.yaml');
  // Enough epochs that training goes on for many scrapes after the first checkpoint commits.
  writeFileSync(file, tinySpec({ name: 'scraped', checkpointDir: join(root, 'checkpoints'), epochs: 20 }));
  const port = await freePort();
  const run = startCli(['trainer', '--output', join(root, 'outputs'), file], {
    CAPTIONRUN_METRICS_PORT: String(port),
    CAPTIONRUN_CACHE: join(root, 'work'),
  });
  const labels = 'namespace="default",run="scraped",rank="0"';
  let scraped = '';
  let seen = false;
  const exited = run.exit.then(() => true);
  // Scrape while it trains: after the first committed checkpoint every series the rules use is there.
  while (!seen) {
    const done = await Promise.race([exited, new Promise<false>((r) => setTimeout(() => r(false), 200))]);
    if (done) break;
    try {
      scraped = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
    } catch {
      continue;
    }
    seen = /^captionrun_checkpoint_last_commit_timestamp_seconds\{[^}]*run="scraped"[^}]*\} [1-9]/m.test(scraped);
  }
  const { code } = await run.exit;
  assert.equal(code, 0, run.stderrText().slice(-3000));
  assert.ok(seen, `a committed checkpoint showed on /metrics while training; last scrape:\n${scraped.slice(0, 3000)}`);
  const series = (name: string): string | undefined => scraped.split('\n').find((l) => l.startsWith(`${name}{`));
  assert.match(series('captionrun_train_steps_total') ?? '', new RegExp(`\\{${labels}\\} [1-9]`), 'steps are counted');
  assert.match(series('captionrun_threshold_checkpoint_stale_seconds') ?? '', new RegExp(`\\{${labels}\\} 1800$`), "the spec's default threshold");
  assert.match(series('captionrun_disk_free_bytes') ?? '', /volume="cache"/, 'the feature cache volume is watched');
  assert.ok(scraped.includes('captionrun_disk_free_bytes{') && /volume="checkpoint"/.test(scraped), 'the local checkpoint volume is watched');
  assert.match(series('captionrun_checkpoint_saves_total') ?? '', /run="scraped"/, "the checkpoint library's series carry the run too");
  // The feature pass before training (a fresh cache: every image encoded) left its final progress.
  const images = (state: string): number => Number(/ (\S+)$/.exec(scraped.split('\n').find((l) => l.startsWith(`captionrun_feature_extraction_images{${labels},state="${state}"}`)) ?? '')?.[1]);
  assert.ok(images('total') > 0, `extraction's image count is exported:\n${scraped.slice(0, 3000)}`);
  assert.equal(images('done'), images('total'), 'every image of the share is done');
  assert.match(series('captionrun_feature_extraction_images_per_second') ?? '', new RegExp(`\\{${labels}\\} [0-9.]*[1-9]`), 'a rate above 0');
  assert.match(series('captionrun_feature_extraction_eta_seconds') ?? '', new RegExp(`\\{${labels}\\} 0$`), 'nothing left once done');
});
