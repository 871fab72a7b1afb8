// A trainer stand-in for the crash test: saves one checkpoint of deterministic bytes and reports progress on
// stdout ("saving", then "committed"), so the parent can SIGKILL it at a random point of the save.
import { CheckpointWriter, openStore } from '../../lib/checkpoint/index.js';
import { crashSnapshot } from './checkpoint-crash-data.js';

const [uri, stepArg] = process.argv.slice(2);
if (!uri || !stepArg) throw new Error('usage: checkpoint-crash-child.ts URI STEP');
const { CRASH_S3_ENDPOINT: endpoint } = process.env;
const store = openStore(uri, { s3: { endpoint, partSizeBytes: 5 << 20 } });
const writer = new CheckpointWriter({ store, whenBusy: 'wait' });
const step = Number(stepArg);
process.stdout.write('saving\n');
const r = await writer.save(crashSnapshot(step));
if (r.accepted) await r.committed;
process.stdout.write('committed\n');
await writer.close();
await store.close();
