// `captionrun validate FILE...`: checks CaptionTrainingRun YAML exactly as admission would (schema + CEL).
import { readFile } from 'node:fs/promises';
import { parseAllDocuments } from 'yaml';
import type { Command } from '../cli/command.js';
import { parseCommandArgs } from '../cli/command.js';
import { ExitCode } from '../exit-codes.js';
import { KIND } from './schema.js';
import { validateRun, type ValidationIssue } from './validate.js';

interface FileReport {
  file: string;
  document: number;
  name?: string;
  valid: boolean;
  issues: ValidationIssue[];
}

export const validateCommand: Command = {
  name: 'validate',
  usage: `Usage: captionrun validate [--output text|json] FILE...

Checks every CaptionTrainingRun document in each FILE (multi-document YAML; other kinds are skipped)
against the same schema and CEL rules the apiserver applies at admission. Each problem is printed with
its field path and a fix. Use "-" to read standard input.

Options:
  -o, --output text|json  text (default) or one JSON report on stdout
  -h, --help              show this help

Exit codes: 0 all valid, 1 some document is invalid, 2 usage error or unreadable file.
`,
  async run(argv) {
    const args = parseCommandArgs(this, argv, { output: { type: 'string', short: 'o', default: 'text' } });
    if (!args) return ExitCode.Ok;
    const output = args.values.output;
    if (output !== 'text' && output !== 'json') {
      process.stderr.write(`captionrun validate: --output must be text or json, got "${output}"\n`);
      return ExitCode.Usage;
    }
    if (args.positionals.length === 0) {
      process.stderr.write('captionrun validate: no FILE given (see --help)\n');
      return ExitCode.Usage;
    }
    const reports: FileReport[] = [];
    let unreadable = false;
    for (const file of args.positionals) {
      try {
        reports.push(...(await validateFile(file)));
      } catch (err) {
        unreadable = true;
        process.stderr.write(`${file}: cannot read: ${(err as Error).message}\n`);
      }
    }
    if (output === 'json') process.stdout.write(`${JSON.stringify(reports, null, 2)}\n`);
    else for (const r of reports) printReport(r);
    if (unreadable) return ExitCode.Usage;
    return reports.every((r) => r.valid) ? ExitCode.Ok : ExitCode.Failure;
  },
};

async function validateFile(file: string): Promise<FileReport[]> {
  const text = file === '-' ? await readStdin() : await readFile(file, 'utf8');
  const reports: FileReport[] = [];
  parseAllDocuments(text).forEach((doc, i) => {
    const document = i + 1;
    if ('errors' in doc && doc.errors.length > 0) {
      const issues = doc.errors.map((e) => ({ path: `line ${(e.linePos?.[0].line ?? 0).toString()}`, message: e.message.split('\n')[0] ?? e.message }));
      reports.push({ file, document, valid: false, issues });
      return;
    }
    const value: unknown = doc.toJS();
    if (value === null || value === undefined) return;
    const kind = typeof value === 'object' ? (value as { kind?: unknown }).kind : undefined;
    if (kind !== KIND) {
      if (kind === undefined) {
        reports.push({ file, document, valid: false, issues: [{ path: 'kind', message: 'is required', hint: `set kind: ${KIND}` }] });
      }
      return;
    }
    const name = (value as { metadata?: { name?: string } }).metadata?.name;
    const result = validateRun(value);
    reports.push({ file, document, name, valid: result.ok, issues: result.issues });
  });
  return reports;
}

function printReport(r: FileReport): void {
  const label = `${r.file}${r.name ? ` (${r.name})` : ` (document ${r.document})`}`;
  if (r.valid) {
    process.stdout.write(`${label}: valid\n`);
    return;
  }
  process.stdout.write(`${label}: ${r.issues.length} error${r.issues.length === 1 ? '' : 's'}\n`);
  for (const issue of r.issues) {
    process.stdout.write(`  ${issue.path || '(document)'}: ${issue.message}${issue.hint ? ` — ${issue.hint}` : ''}\n`);
  }
}

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}
