import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { createLogger } from '../../lib/telemetry/logger.js';
import { relaunchDelaySeconds } from '../../lib/restart-policy.js';
import { judgeExit, supervise } from '../../trainer-image/local/supervisor.js';
import type { RestartPolicySpec } from '../../lib/api/types.js';

const policy: RestartPolicySpec = { backoffLimit: 3, backoffSeconds: 0, maxBackoffSeconds: 60 };

test('restart policy: success ends, permanent codes end, signals and other codes relaunch, 75 relaunches for free', () => {
  assert.deepEqual(judgeExit({ code: 0, signal: null }, policy), { action: 'done', exitCode: 0 });
  assert.deepEqual(judgeExit({ code: 2, signal: null }, policy), { action: 'done', exitCode: 2 });
  assert.deepEqual(judgeExit({ code: 3, signal: null }, policy), { action: 'done', exitCode: 3 });
  assert.deepEqual(judgeExit({ code: 1, signal: null }, policy), { action: 'relaunch', countsAsFailure: true });
  assert.deepEqual(judgeExit({ code: null, signal: 'SIGKILL' }, policy), { action: 'relaunch', countsAsFailure: true });
  assert.deepEqual(judgeExit({ code: 75, signal: null }, policy), { action: 'relaunch', countsAsFailure: false });
  const only137 = { ...policy, retryableExitCodes: [137] };
  assert.deepEqual(judgeExit({ code: 1, signal: null }, only137), { action: 'done', exitCode: 1 });
  assert.deepEqual(judgeExit({ code: 3, signal: null }, { ...policy, retryableExitCodes: [3] }), { action: 'relaunch', countsAsFailure: true });
  assert.deepEqual(judgeExit({ code: null, signal: 'SIGKILL' }, only137), { action: 'relaunch', countsAsFailure: true }, 'signals always retry');
});

test('backoff doubles from backoffSeconds up to maxBackoffSeconds', () => {
  const p = { backoffLimit: 10, backoffSeconds: 10, maxBackoffSeconds: 60 };
  assert.deepEqual([1, 2, 3, 4, 5].map((n) => relaunchDelaySeconds(n, p)), [10, 20, 40, 60, 60]);
});

/** A child that appends its launch number to a file, then exits with codes[launch - 1]. */
function flaky(codes: number[]): { args: string[]; launches: () => number[] } {
  const file = join(mkdtempSync(join(tmpdir(), 'captionrun-supervisor-')), 'launches');
  const script = `const fs=require('fs');fs.appendFileSync(${JSON.stringify(file)},process.env.CAPTIONRUN_LAUNCH+'\\n');process.exit(${JSON.stringify(codes)}[Number(process.env.CAPTIONRUN_LAUNCH)-1]??0)`;
  return { args: ['-e', script], launches: () => readFileSync(file, 'utf8').trim().split('\n').map(Number) };
}

const quiet = createLogger({}, new PassThrough());

test('a crashing child is relaunched until it succeeds', async () => {
  const child = flaky([1, 137, 0]);
  const code = await supervise({ command: process.execPath, args: child.args, restartPolicy: policy, log: quiet });
  assert.equal(code, 0);
  assert.deepEqual(child.launches(), [1, 2, 3]);
});

test('an invalid-input exit is not retried: the supervisor does not spin', async () => {
  const child = flaky([3, 0]);
  const code = await supervise({ command: process.execPath, args: child.args, restartPolicy: policy, log: quiet });
  assert.equal(code, 3);
  assert.deepEqual(child.launches(), [1]);
});

test('backoffLimit bounds the relaunches; checkpointed stops (75) do not count', async () => {
  const child = flaky([75, 1, 75, 1, 1, 1, 1, 1]);
  const code = await supervise({ command: process.execPath, args: child.args, restartPolicy: { ...policy, backoffLimit: 2 }, log: quiet });
  assert.equal(code, 1);
  assert.deepEqual(child.launches(), [1, 2, 3, 4, 5], '2 relaunches after failures, 2 free ones after 75, then give up');
});

test('resumeArgs are appended per launch', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'captionrun-supervisor-'));
  const file = join(dir, 'argv');
  const script = join(dir, 'child.cjs');
  writeFileSync(script, `require('fs').appendFileSync(${JSON.stringify(file)},process.argv.slice(2).join(' ')+'\\n');process.exit(process.env.CAPTIONRUN_LAUNCH==='1'?1:0)`);
  let first = true;
  const code = await supervise({
    command: process.execPath,
    args: [script],
    restartPolicy: policy,
    log: quiet,
    resumeArgs: () => {
      const r = ['--resume', first ? 'never' : 'auto'];
      first = false;
      return r;
    },
  });
  assert.equal(code, 0);
  assert.deepEqual(readFileSync(file, 'utf8').trim().split('\n'), ['--resume never', '--resume auto']);
});
