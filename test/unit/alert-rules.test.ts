import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parse } from 'yaml';
import { OPERATOR_JOB, OperatorMetrics, TrainerMetrics } from '../../lib/telemetry/metric-names.js';

const repo = fileURLToPath(new URL('../..', import.meta.url));
const rulesFile = 'manifests/monitoring/captionrun.rules.yaml';

function promtool(...args: string[]): { status: number | null; output: string } {
  const r = spawnSync('promtool', args, { cwd: repo, encoding: 'utf8' });
  if (r.error) assert.fail(`promtool is needed (Debian package "prometheus", installed by .ci/run): ${r.error.message}`);
  return { status: r.status, output: `${r.stdout}${r.stderr}` };
}

test('the rule file is valid for Prometheus', () => {
  const r = promtool('check', 'rules', rulesFile);
  assert.equal(r.status, 0, r.output);
});

test('every alert fires and stays quiet as test/alerts/captionrun.test.yaml expects', () => {
  const r = promtool('test', 'rules', 'test/alerts/captionrun.test.yaml');
  assert.equal(r.status, 0, r.output);
});

interface Rule {
  alert: string;
  expr: string;
  labels?: { severity?: string };
  annotations?: Record<string, string>;
}

const rules = (parse(readFileSync(`${repo}/${rulesFile}`, 'utf8')) as { groups: { rules: Rule[] }[] }).groups.flatMap((g) => g.rules);

test('alerts only use metrics that captionrun exports', () => {
  const known = new Set<string>([...Object.values(TrainerMetrics), ...Object.values(OperatorMetrics)]);
  for (const rule of rules) {
    for (const name of rule.expr.match(/captionrun_[a-z_]+/g) ?? []) {
      assert.ok(known.has(name), `${rule.alert} uses ${name}, which is not in lib/telemetry/metric-names.ts`);
    }
  }
  assert.ok(rules.some((r) => r.expr.includes(`job="${OPERATOR_JOB}"`)), 'the operator-down rule watches the operator job');
});

test('every alert has a severity, a summary, a description naming the run, and a runbook section', () => {
  const runbook = readFileSync(`${repo}/docs/runbook.md`, 'utf8');
  for (const rule of rules) {
    assert.match(rule.labels?.severity ?? '', /^(warning|critical)$/, `${rule.alert} severity`);
    assert.ok(rule.annotations?.summary, `${rule.alert} summary`);
    if (rule.alert !== 'CaptionRunOperatorDown') assert.match(rule.annotations?.description ?? '', /\$labels\.run/, `${rule.alert} names the run`);
    const anchor = rule.annotations?.runbook_url?.split('#')[1];
    assert.equal(anchor, rule.alert.toLowerCase(), `${rule.alert} runbook_url points at its section`);
    assert.match(runbook, new RegExp(`^## ${rule.alert}$`, 'm'), `docs/runbook.md has a section for ${rule.alert}`);
  }
});
