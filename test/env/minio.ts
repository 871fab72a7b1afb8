// Starts a real MinIO server (built by build-binaries.sh) on a free loopback port with a temp data dir and
// generated credentials, for integration tests and `npm run cluster`. stop() kills it and removes the data.
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { freePort } from '../../lib/free-port.js';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CreateBucketCommand, S3Client } from '@aws-sdk/client-s3';
import { binary } from './binaries.js';
import { onProcessExit, signalGroup } from './processes.js';

export interface MinioServer {
  endpoint: string;
  accessKeyId: string;
  secretAccessKey: string;
  region: string;
  dataDir: string;
  pid: number;
  client(): S3Client;
  createBucket(name: string): Promise<void>;
  stop(): Promise<void>;
}

export { freePort };

export async function startMinio(options: { dataDir?: string } = {}): Promise<MinioServer> {
  const dataDir = options.dataDir ?? mkdtempSync(join(tmpdir(), 'captionrun-minio-'));
  const [port, consolePort] = [await freePort(), await freePort()];
  const accessKeyId = `test${randomBytes(6).toString('hex')}`;
  const secretAccessKey = randomBytes(20).toString('hex');
  const endpoint = `http://127.0.0.1:${port}`;
  const proc: ChildProcess = spawn(
    binary('minio'),
    ['server', dataDir, '--address', `127.0.0.1:${port}`, '--console-address', `127.0.0.1:${consolePort}`, '--quiet'],
    {
      env: { ...process.env, MINIO_ROOT_USER: accessKeyId, MINIO_ROOT_PASSWORD: secretAccessKey, MINIO_BROWSER: 'off' },
      stdio: ['ignore', 'ignore', 'pipe'],
      // Its own process group, so the exit hook below can kill it without touching ours.
      detached: true,
    },
  );
  // A test that crashes, or a Ctrl-C, must not leave MinIO running and its data on disk.
  const removeExitHook = onProcessExit(() => {
    if (proc.pid) signalGroup(proc.pid, 'SIGKILL');
    if (!options.dataDir) rmSync(dataDir, { recursive: true, force: true });
  });
  let stderr = '';
  proc.stderr?.on('data', (d: Buffer) => (stderr = (stderr + d.toString()).slice(-4000)));
  const exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()));

  const deadline = Date.now() + 30_000;
  for (;;) {
    if (proc.exitCode !== null) throw new Error(`minio exited with ${proc.exitCode}: ${stderr}`);
    try {
      const res = await fetch(`${endpoint}/minio/health/ready`);
      if (res.ok) break;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) {
      proc.kill('SIGKILL');
      removeExitHook();
      throw new Error(`minio not ready within 30 s: ${stderr}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }

  const region = 'us-east-1';
  const client = (): S3Client =>
    new S3Client({ endpoint, region, forcePathStyle: true, credentials: { accessKeyId, secretAccessKey } });
  return {
    endpoint,
    accessKeyId,
    secretAccessKey,
    region,
    dataDir,
    pid: proc.pid ?? -1,
    client,
    async createBucket(name) {
      const c = client();
      await c.send(new CreateBucketCommand({ Bucket: name }));
      c.destroy();
    },
    async stop() {
      if (proc.exitCode === null) {
        proc.kill('SIGTERM');
        const timer = setTimeout(() => proc.kill('SIGKILL'), 5000);
        await exited;
        clearTimeout(timer);
      }
      removeExitHook();
      if (!options.dataDir) rmSync(dataDir, { recursive: true, force: true });
    },
  };
}
