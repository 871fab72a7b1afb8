// One rank of a test gang in its own process (distributed-collectives.test.ts SIGKILLs one of them):
//   node --import tsx distributed-rank.ts RANK WORLD_SIZE MASTER_PORT FLOATS
// joins, then runs allReduceSum on FLOATS floats until something fails, printing "joined", then
// "reduced N" after each collective (with a check that the sum is right), and on failure one line
// "failed {json}" with the error's class, peer, failure kind (cause) and message, then exits 1.
import { PassThrough } from 'node:stream';
import { createLogger } from '../../lib/telemetry/logger.js';
import { PeerFailedError } from '../../trainer-image/distributed/errors.js';
import { ProcessGroup } from '../../trainer-image/distributed/process-group.js';

const [rank, worldSize, masterPort, floats] = process.argv.slice(2).map(Number) as [number, number, number, number];
const group = await ProcessGroup.join({
  rank,
  worldSize,
  masterAddr: '127.0.0.1',
  masterPort,
  bindAddress: '127.0.0.1',
  runId: 'child-gang',
  attempt: 1,
  rendezvousTimeoutMs: 20_000,
  collectiveTimeoutMs: () => 20_000,
  compression: 'none',
  segmentBytes: 256 << 10,
  log: createLogger({}, new PassThrough()),
});
process.stdout.write('joined\n');
const buf = new Float32Array(floats);
const expected = (worldSize * (worldSize + 1)) / 2;
try {
  for (let i = 1; ; i++) {
    buf.fill(rank + 1);
    await group.allReduceSum(buf);
    if (buf[0] !== expected || buf[floats - 1] !== expected) throw new Error(`wrong sum ${buf[0]}, expected ${expected}`);
    process.stdout.write(`reduced ${i}\n`);
  }
} catch (err) {
  const e = err as Error;
  process.stdout.write(`failed ${JSON.stringify({ name: e.name, peer: e instanceof PeerFailedError ? e.peer : null, cause: e instanceof PeerFailedError ? e.cause : null, message: e.message })}\n`);
  await group.close();
  process.exit(1);
}
