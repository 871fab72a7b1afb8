// The contract every `captionrun` subcommand follows: a name, a usage text that `--help` prints, and a run
// function returning an exit code (lib/exit-codes.ts). The one-line summaries live in bin/captionrun.ts,
// which lists the commands without loading them.
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { UsageError } from '../errors.js';

export interface Command {
  name: string;
  usage: string;
  run(argv: string[]): Promise<number>;
}

type Options = NonNullable<ParseArgsConfig['options']>;

export type ParsedArgs<O extends Options> = ReturnType<typeof parseArgs<{ options: O; allowPositionals: true; strict: true }>>;

/**
 * Parses a subcommand's arguments. Returns undefined after printing the usage when --help is given;
 * unknown options and missing values become a UsageError (exit 2) that names the option.
 */
export function parseCommandArgs<O extends Options>(
  command: Pick<Command, 'name' | 'usage'>,
  argv: string[],
  options: O,
): ParsedArgs<O> | undefined {
  if (argv.includes('--help') || argv.includes('-h')) {
    process.stdout.write(`${command.usage.trimEnd()}\n`);
    return undefined;
  }
  try {
    return parseArgs({ args: argv, options, allowPositionals: true, strict: true });
  } catch (err) {
    throw new UsageError((err as Error).message, { hint: `see \`captionrun ${command.name} --help\`` });
  }
}
