// `captionrun checkpoints list|verify URI`: what a run's checkpoint store holds and whether each checkpoint
// would be resumed from. Both fully verify (every file's size and digest), so VALID means exactly what the
// trainer and operator mean by it.
import type { Command } from '../cli/command.js';
import { parseCommandArgs } from '../cli/command.js';
import { ExitCode } from '../exit-codes.js';
import { UsageError } from '../errors.js';
import { openStore } from './open-store.js';
import { CheckpointReader, type CheckpointInfo } from './reader.js';

interface Row {
  name: string;
  step: number;
  epoch: number | null;
  bytes: number | null;
  createdAt: string | null;
  valid: boolean;
  reason: string | null;
  detail: string | null;
}

export const checkpointsCommand: Command = {
  name: 'checkpoints',
  usage: `Usage: captionrun checkpoints list|verify [options] URI

URI is one run's checkpoint location: s3://bucket/prefix/NAMESPACE/RUN or a directory.
  list    every checkpoint, newest first: name, step, epoch, size, age, VALID or INVALID and why
  verify  the same checks; exit 0 when every checkpoint is valid, 1 when any is invalid

Every file is downloaded once and checked against MANIFEST.json (size and digest), so this reads the
whole store. S3 settings and credentials come from the options below or the AWS_* environment
(AWS_ENDPOINT_URL, AWS_REGION, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY) or CAPTIONRUN_S3_CREDENTIALS_DIR.

Options:
  -o, --output text|json     table (default) or a JSON list on stdout
      --endpoint URL         S3 endpoint, e.g. http://minio:9000 (path-style addressing is then used)
      --region NAME          S3 region (default us-east-1)
      --credentials-dir DIR  a mounted Secret with AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY files
  -h, --help                 show this help

Exit codes: 0 all valid, 1 some checkpoint is invalid (verify) or the store failed, 2 usage error.
`,
  async run(argv) {
    const args = parseCommandArgs(this, argv, {
      output: { type: 'string', short: 'o', default: 'text' },
      endpoint: { type: 'string' },
      region: { type: 'string' },
      'credentials-dir': { type: 'string' },
    });
    if (!args) return ExitCode.Ok;
    const [action, uri, ...extra] = args.positionals;
    const output = args.values.output;
    if (action !== 'list' && action !== 'verify') throw new UsageError(`expected list or verify, got ${action === undefined ? 'nothing' : `"${action}"`}`, { hint: 'see `captionrun checkpoints --help`' });
    if (!uri || extra.length > 0) throw new UsageError(`${action} takes exactly one URI`, { hint: 'see `captionrun checkpoints --help`' });
    if (output !== 'text' && output !== 'json') throw new UsageError(`--output must be text or json, got "${output}"`);
    const store = openStore(uri, {
      s3: { endpoint: args.values.endpoint, region: args.values.region, credentialsDir: args.values['credentials-dir'] },
    });
    try {
      const rows = (await new CheckpointReader(store, { logger: null }).list()).map(toRow);
      if (output === 'json') process.stdout.write(`${JSON.stringify(rows, null, 2)}\n`);
      else if (rows.length === 0) process.stderr.write(`no checkpoints under ${store.uri}\n`);
      else process.stdout.write(table(rows, Date.now()));
      if (action === 'verify') return rows.every((r) => r.valid) ? ExitCode.Ok : ExitCode.Failure;
      return ExitCode.Ok;
    } finally {
      await store.close();
    }
  },
};

function toRow(c: CheckpointInfo): Row {
  const m = c.manifest;
  return {
    name: c.name,
    step: c.step,
    epoch: m?.epoch ?? null,
    bytes: m ? m.files.reduce((n, f) => n + f.bytes, 0) : null,
    createdAt: m?.createdAt ?? null,
    valid: c.valid,
    reason: c.reason ?? null,
    detail: c.detail ?? null,
  };
}

function table(rows: Row[], now: number): string {
  const cells = rows.map((r) => [
    r.name,
    String(r.step),
    r.epoch === null ? '-' : String(r.epoch),
    r.bytes === null ? '-' : humanBytes(r.bytes),
    r.createdAt === null ? '-' : humanAge(now - Date.parse(r.createdAt)),
    r.valid ? 'VALID' : `INVALID ${r.reason}: ${r.detail}`,
  ]);
  const header = ['NAME', 'STEP', 'EPOCH', 'SIZE', 'AGE', 'STATUS'];
  const widths = header.map((h, i) => Math.max(h.length, ...cells.map((c) => (c[i] ?? '').length)));
  const line = (c: string[]): string => c.map((x, i) => (i === c.length - 1 ? x : x.padEnd(widths[i] ?? 0))).join('  ');
  return `${[header, ...cells].map(line).join('\n')}\n`;
}

function humanBytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let v = n;
  let u = 0;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  return u === 0 ? `${n} B` : `${v.toFixed(1)} ${units[u]}`;
}

/** kubectl-style ages: 45s, 12m, 3h, 2d. */
function humanAge(ms: number): string {
  const s = Math.max(0, Math.floor(ms / 1000));
  if (s < 120) return `${s}s`;
  if (s < 7200) return `${Math.floor(s / 60)}m`;
  if (s < 172800) return `${Math.floor(s / 3600)}h`;
  return `${Math.floor(s / 86400)}d`;
}
