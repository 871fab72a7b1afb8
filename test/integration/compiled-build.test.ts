// The images run the compiled tree (npm run build -> dist/), not the TypeScript sources: build it into a
// scratch directory inside the repo and run the CLI from there, so a path that only resolves from the sources
// (package.json, bin/, the checkpoint worker) fails here rather than in a pod.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const repo = fileURLToPath(new URL('../..', import.meta.url));

test('the compiled CLI runs: version, validate, and a checkpoint written and verified by the compiled worker', () => {
  const out = join(repo, '.cache', 'compiled-build-test');
  rmSync(out, { recursive: true, force: true });
  try {
    const build = spawnSync('npx', ['tsc', '-p', 'tsconfig.build.json', '--outDir', out], { cwd: repo, encoding: 'utf8' });
    assert.equal(build.status, 0, `${build.stdout}${build.stderr}`);
    const cli = (...args: string[]) => spawnSync(process.execPath, [join(out, 'bin/captionrun.js'), ...args], { cwd: repo, encoding: 'utf8' });

    const version = cli('--version');
    assert.equal(version.status, 0, version.stderr);
    assert.match(version.stdout, /^\d+\.\d+\.\d+\n$/);
    assert.equal(cli('validate', 'manifests/examples/run.yaml').status, 0);

    const store = mkdtempSync(join(out, 'store-'));
    const script = `
      import { CheckpointWriter, openStore } from '${join(out, 'lib/checkpoint/index.js')}';
      const writer = new CheckpointWriter({ store: openStore(${JSON.stringify(store)}), whenBusy: 'wait', resumedFrom: null });
      const saved = await writer.save({ step: 1, epoch: 0, files: [{ name: 'w.bin', data: new Uint8Array([1, 2, 3]) }], state: {} });
      if (!saved.accepted) throw new Error('not accepted');
      await saved.committed;
      await writer.close();`;
    // A file, not -e: worker threads inherit the parent's execArgv, and --input-type breaks them.
    const scriptFile = join(out, 'write-checkpoint.mjs');
    writeFileSync(scriptFile, script);
    const write = spawnSync(process.execPath, [scriptFile], { cwd: repo, encoding: 'utf8' });
    assert.equal(write.status, 0, write.stderr);
    const verify = cli('checkpoints', 'verify', store);
    assert.equal(verify.status, 0, `${verify.stdout}${verify.stderr}`);
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
});
