// A process of the allreduce benchmark: either one rank of a gang timing allReduceSum at each size, or the
// sending end of the loopback baseline. Results go to stdout as one JSON line.
import { connect } from 'node:net';
import { PassThrough } from 'node:stream';
import { createLogger } from '../../lib/telemetry/logger.js';
import { ProcessGroup } from '../../trainer-image/distributed/process-group.js';

const [mode, ...rest] = process.argv.slice(2);
if (mode === 'send') {
  // The baseline's sender: writes `total` bytes from one preallocated buffer through one socket.
  const [port, total] = rest.map(Number) as [number, number];
  const chunk = Buffer.alloc(4 << 20, 7);
  const socket = connect({ host: '127.0.0.1', port }, () => {
    let left = total;
    const pump = (): void => {
      while (left > 0) {
        const n = Math.min(chunk.byteLength, left);
        left -= n;
        if (!socket.write(n === chunk.byteLength ? chunk : chunk.subarray(0, n))) {
          socket.once('drain', pump);
          return;
        }
      }
      socket.end();
    };
    pump();
  });
} else {
  const [rank, worldSize, port, iterations] = rest.slice(0, 4).map(Number) as [number, number, number, number];
  const sizes = (rest[4] ?? '').split(',').map(Number);
  const group = await ProcessGroup.join({
    rank,
    worldSize,
    masterAddr: '127.0.0.1',
    masterPort: port,
    bindAddress: '127.0.0.1',
    runId: 'bench',
    attempt: 0,
    rendezvousTimeoutMs: 30_000,
    collectiveTimeoutMs: () => 120_000,
    compression: 'none',
    log: createLogger({}, new PassThrough()),
  });
  const results: { bytes: number; seconds: number[] }[] = [];
  for (const bytes of sizes) {
    const buf = new Float32Array(bytes / 4).fill(rank);
    const seconds: number[] = [];
    for (let i = 0; i < iterations + 2; i++) {
      await group.barrier();
      const started = performance.now();
      await group.allReduceSum(buf);
      if (i >= 2) seconds.push((performance.now() - started) / 1000);
    }
    results.push({ bytes, seconds });
  }
  await group.close();
  if (rank === 0) process.stdout.write(`${JSON.stringify(results)}\n`);
}
