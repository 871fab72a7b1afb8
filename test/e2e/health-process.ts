// A trainer-side process for the alerting e2e: starts health monitoring exactly as the trainer does
// (startHealth from a run spec) on the volume it is given, prints its metrics port, and runs until SIGTERM.
import { readFileSync } from 'node:fs';
import { parse } from 'yaml';
import { validateRun } from '../../lib/api/validate.js';
import { createLogger } from '../../lib/telemetry/logger.js';
import { startHealth } from '../../trainer-image/health/start-health.js';

const [specPath, volumePath] = process.argv.slice(2);
if (!specPath || !volumePath) throw new Error('usage: health-process.ts SPEC VOLUME');
const result = validateRun(parse(readFileSync(specPath, 'utf8')));
if (!result.ok) throw new Error(JSON.stringify(result.issues));
const health = await startHealth(result.run, {
  rank: 0,
  worldSize: 1,
  volumes: [{ volume: 'cache', path: volumePath }],
  logger: createLogger({ component: 'health-process' }),
  metricsPort: 0,
  intervalMs: 300,
});
process.stdout.write(`${health.metricsPort}\n`);
process.once('SIGTERM', () => void health.stop().then(() => process.exit(0)));
