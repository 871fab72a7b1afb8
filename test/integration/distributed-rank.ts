// One rank of a test gang in its own process: joins, then runs allReduceSum on a buffer of the given size
// forever (until killed), printing "joined" once and "reduced" after each collective.
import { PassThrough } from 'node:stream';
import { createLogger } from '../../lib/telemetry/logger.js';
import { ProcessGroup } from '../../trainer-image/distributed/process-group.js';

const [rank, worldSize, masterPort, floats] = process.argv.slice(2).map(Number) as [number, number, number, number];
const group = await ProcessGroup.join({
  rank,
  worldSize,
  masterAddr: '127.0.0.1',
  masterPort,
  bindAddress: '127.0.0.1',
  runId: 'child-gang',
  attempt: 0,
  rendezvousTimeoutMs: 20_000,
  collectiveTimeoutMs: () => 20_000,
  compression: 'none',
  log: createLogger({}, new PassThrough()),
});
process.stdout.write('joined\n');
const buf = new Float32Array(floats);
for (;;) {
  buf.fill(rank + 1);
  await group.allReduceSum(buf);
  process.stdout.write('reduced\n');
}
