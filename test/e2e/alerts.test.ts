import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { stringify } from 'yaml';
import { freePort } from '../env/minio.js';
import { waitFor } from '../env/wait.js';

// Real Prometheus and Alertmanager (Debian packages), a real tmpfs volume that really fills, and the
// project's alert rules. The only change to the rules is a shorter `for:`, so the test waits seconds.
const repo = fileURLToPath(new URL('../..', import.meta.url));
const work = mkdtempSync(join(tmpdir(), 'captionrun-alerts-'));
const volume = join(work, 'volume');
const children: ChildProcess[] = [];
const received: { status: string; alerts: { status: string; labels: Record<string, string> }[] }[] = [];
let webhook: Server;
let alertmanagerPort: number;

function start(cmd: string, args: string[]): ChildProcess {
  const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  children.push(child);
  return child;
}

async function ready(url: string): Promise<true | undefined> {
  try {
    return (await fetch(url)).ok ? true : undefined;
  } catch {
    return undefined;
  }
}

/** Starts a health process on the volume; resolves with its metrics port. */
async function startHealthProcess(spec: object): Promise<{ port: number; child: ChildProcess }> {
  const specPath = join(work, `spec-${children.length}.yaml`);
  writeFileSync(specPath, stringify(spec));
  const child = start(process.execPath, ['--import', 'tsx', join(repo, 'test/e2e/health-process.ts'), specPath, volume]);
  const port = await new Promise<number>((resolve, reject) => {
    child.stdout?.once('data', (d: Buffer) => resolve(Number(d.toString().trim())));
    child.once('exit', (code) => reject(new Error(`health process exited with ${code}`)));
  });
  return { port, child };
}

function runSpec(name: string, monitoring: object): object {
  return {
    apiVersion: 'captionrun.dev/v1alpha1',
    kind: 'CaptionTrainingRun',
    metadata: { name, namespace: 'ml' },
    spec: { dataset: { format: 'synthetic' }, checkpoint: { store: { local: { path: work } } }, monitoring },
  };
}

/** Fills the volume until less than `percentFree` of it is free. */
function fill(percentFree: number): void {
  const df = spawnSync('df', ['-B1', '--output=size', volume], { encoding: 'utf8' }).stdout.split('\n')[1];
  const size = Number(df?.trim());
  writeFileSync(join(volume, 'filler'), Buffer.alloc(Math.ceil(size * (1 - percentFree / 100))));
}

function deliveries(alertname: string, run: string, status: 'firing' | 'resolved'): true | undefined {
  return received.some((n) => n.alerts.some((a) => a.status === status && a.labels.alertname === alertname && a.labels.run === run))
    ? true
    : undefined;
}

before(async () => {
  mkdirSync(volume);
  const mount = spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=8m', 'tmpfs', volume], { encoding: 'utf8' });
  assert.equal(mount.status, 0, `a tmpfs volume is needed to fill a real disk (run as root): ${mount.stderr}`);

  const webhookPort = await freePort();
  webhook = createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString()));
    req.on('end', () => {
      received.push(JSON.parse(body) as (typeof received)[number]);
      res.end();
    });
  });
  await new Promise<void>((r) => webhook.listen(webhookPort, '127.0.0.1', r));

  alertmanagerPort = await freePort();
  writeFileSync(
    join(work, 'alertmanager.yml'),
    stringify({
      route: { receiver: 'test', group_by: ['alertname', 'run'], group_wait: '1s', group_interval: '1s', repeat_interval: '1h' },
      receivers: [{ name: 'test', webhook_configs: [{ url: `http://127.0.0.1:${webhookPort}/`, send_resolved: true }] }],
    }),
  );
  start('prometheus-alertmanager', [
    `--config.file=${join(work, 'alertmanager.yml')}`,
    `--web.listen-address=127.0.0.1:${alertmanagerPort}`,
    `--storage.path=${join(work, 'am')}`,
    '--cluster.listen-address=',
  ]);
  await waitFor('alertmanager', () => ready(`http://127.0.0.1:${alertmanagerPort}/-/ready`), { timeoutMs: 60_000, intervalMs: 250 });
});

after(async () => {
  for (const c of children) c.kill('SIGKILL');
  webhook?.close();
  spawnSync('umount', [volume]);
  rmSync(work, { recursive: true, force: true });
});

test('Prometheus scrapes the trainer, the disk alert fires through Alertmanager and resolves when space is freed', async () => {
  const { port } = await startHealthProcess(runSpec('prom-run', { thresholds: { diskFreePercent: 40 } }));
  const rules = readFileSync(join(repo, 'manifests/monitoring/captionrun.rules.yaml'), 'utf8').replace(/for: \d+m/g, 'for: 2s');
  writeFileSync(join(work, 'rules.yaml'), rules);
  const promPort = await freePort();
  writeFileSync(
    join(work, 'prometheus.yml'),
    stringify({
      global: { scrape_interval: '1s', evaluation_interval: '1s' },
      rule_files: [join(work, 'rules.yaml')],
      alerting: { alertmanagers: [{ static_configs: [{ targets: [`127.0.0.1:${alertmanagerPort}`] }] }] },
      scrape_configs: [{ job_name: 'captionrun-trainer', static_configs: [{ targets: [`127.0.0.1:${port}`] }] }],
    }),
  );
  start('prometheus', [
    `--config.file=${join(work, 'prometheus.yml')}`,
    `--web.listen-address=127.0.0.1:${promPort}`,
    `--storage.tsdb.path=${join(work, 'tsdb')}`,
  ]);
  await waitFor('prometheus', () => ready(`http://127.0.0.1:${promPort}/-/ready`), { timeoutMs: 60_000, intervalMs: 250 });
  await waitFor('a scrape of the trainer', async () => {
    const res = await fetch(`http://127.0.0.1:${promPort}/api/v1/query?query=captionrun_disk_free_bytes{run="prom-run"}`);
    const body = (await res.json()) as { data: { result: unknown[] } };
    return body.data.result.length > 0 ? true : undefined;
  }, { timeoutMs: 60_000, intervalMs: 250 });
  assert.equal(deliveries('CaptionRunDiskSpaceLow', 'prom-run', 'firing'), undefined, 'quiet while the disk has room');

  fill(20);
  await waitFor('the disk alert delivered to the webhook', () => deliveries('CaptionRunDiskSpaceLow', 'prom-run', 'firing'), { timeoutMs: 60_000, intervalMs: 250 });
  rmSync(join(volume, 'filler'));
  await waitFor('the resolved notification', () => deliveries('CaptionRunDiskSpaceLow', 'prom-run', 'resolved'), { timeoutMs: 90_000, intervalMs: 250 });
});

test('local mode: the trainer posts the disk alert straight to Alertmanager and resolves it', async () => {
  await startHealthProcess(
    runSpec('local-run', { thresholds: { diskFreePercent: 40 }, alertmanagerURL: `http://127.0.0.1:${alertmanagerPort}` }),
  );
  fill(20);
  await waitFor('the direct alert delivered to the webhook', () => deliveries('CaptionRunDiskSpaceLow', 'local-run', 'firing'), { timeoutMs: 60_000, intervalMs: 250 });
  rmSync(join(volume, 'filler'));
  await waitFor('the resolved notification', () => deliveries('CaptionRunDiskSpaceLow', 'local-run', 'resolved'), { timeoutMs: 60_000, intervalMs: 250 });
});
