// `captionrun outputs get URI DIR`: downloads a finished run's outputs (model, captions, metrics, report) from
// its store and verifies every file against the outputs manifest; a corrupt or missing file is named and not
// written, and the exit code says so.
import type { Command } from '../cli/command.js';
import { parseCommandArgs } from '../cli/command.js';
import { UsageError } from '../errors.js';
import { ExitCode } from '../exit-codes.js';
import { openStore } from './open-store.js';
import { fetchOutputs, OUTPUTS_DIR } from './outputs.js';

export const outputsCommand: Command = {
  name: 'outputs',
  usage: `Usage: captionrun outputs get [options] URI DIR

URI is a run's outputs, as status.outputURI shows it (s3://bucket/prefix/NAMESPACE/RUN/outputs or a
directory), or the run's store location without the /outputs. Every file is checked against the outputs'
MANIFEST.json (size and digest) while it is downloaded into DIR; DIR then holds the trained model
(\`captionrun caption --model DIR\`), captions, metrics and what the report draws. S3 settings and credentials
come from the options below or the AWS_* environment.

Options:
      --endpoint URL         S3 endpoint, e.g. http://minio:9000
      --region NAME          S3 region (default us-east-1)
      --credentials-dir DIR  a mounted Secret with AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY files
  -h, --help                 show this help

Exit codes: 0 every file verified, 2 usage, 3 no outputs there, or a file missing or corrupt (named; the
verified files are still written), 1 the store failed.
`,
  async run(argv) {
    const args = parseCommandArgs(this, argv, { endpoint: { type: 'string' }, region: { type: 'string' }, 'credentials-dir': { type: 'string' } });
    if (!args) return ExitCode.Ok;
    const [action, uri, dest, ...extra] = args.positionals;
    if (action !== 'get') throw new UsageError(`expected get, got ${action === undefined ? 'nothing' : `"${action}"`}`, { hint: 'see `captionrun outputs --help`' });
    if (!uri || !dest || extra.length > 0) throw new UsageError('get takes a URI and a directory', { hint: 'see `captionrun outputs --help`' });
    const runUri = uri.replace(/\/+$/, '').replace(new RegExp(`/${OUTPUTS_DIR}$`), '');
    const store = openStore(runUri, { s3: { endpoint: args.values.endpoint, region: args.values.region, credentialsDir: args.values['credentials-dir'] } });
    try {
      const manifest = await fetchOutputs(store, dest);
      process.stdout.write(`${manifest.files.length} files verified into ${dest}\n`);
      return ExitCode.Ok;
    } finally {
      await store.close();
    }
  },
};
