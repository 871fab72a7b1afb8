// The `captionrun` CLI: a thin dispatcher. Each subcommand lives with its part and is loaded only when
// called, so `captionrun operator` never loads TensorFlow.js and `validate` starts fast.
import { CaptionrunError } from '../lib/errors.js';
import { packageVersion } from '../lib/package-info.js';
import { ExitCode } from '../lib/exit-codes.js';
import type { Command } from '../lib/cli/command.js';

interface Entry {
  summary: string;
  load: () => Promise<Command>;
}

const commands: Record<string, Entry> = {
  operator: {
    summary: 'run the Kubernetes operator that reconciles CaptionTrainingRuns',
    load: async () => (await import('../operator/operator-command.js')).operatorCommand,
  },
  validate: {
    summary: 'check CaptionTrainingRun YAML files against the API',
    load: async () => (await import('../lib/api/validate-command.js')).validateCommand,
  },
  checkpoints: {
    summary: 'list and verify the checkpoints of a run (S3 or a directory)',
    load: async () => (await import('../lib/checkpoint/checkpoints-command.js')).checkpointsCommand,
  },
  outputs: {
    summary: 'download and verify a finished run\'s outputs (S3 or a directory)',
    load: async () => (await import('../lib/checkpoint/outputs-command.js')).outputsCommand,
  },
  train: {
    summary: 'train a run locally; a supervisor relaunches the trainer from its checkpoints when it crashes',
    load: async () => (await import('../trainer-image/local/train-command.js')).trainCommand,
  },
  'extract-features': {
    summary: 'encode a dataset\'s images once into the content-addressed feature cache',
    load: async () => (await import('../trainer-image/features/extract-features-command.js')).extractFeaturesCommand,
  },
  launch: {
    summary: 'start one training process per GPU of a pod, torchrun-style (what multi-GPU worker pods run)',
    load: async () => (await import('../trainer-image/distributed/launch-command.js')).launchCommand,
  },
  trainer: {
    summary: 'the training process itself (what pods and `train` launch; resumes from the latest checkpoint)',
    load: async () => (await import('../trainer-image/train/trainer-command.js')).trainerCommand,
  },
  caption: {
    summary: 'caption new images with a trained model (a run\'s outputs)',
    load: async () => (await import('../trainer-image/caption/caption-command.js')).captionCommand,
  },
  evaluate: {
    summary: 'score captions: BLEU-1..4, ROUGE-L, CIDEr-D as the COCO toolkit, GloVe similarity, error analysis',
    load: async () => (await import('../trainer-image/eval/evaluate-command.js')).evaluateCommand,
  },
  'caption-llm': {
    summary: 'caption a dataset split with a vision LLM behind an OpenAI-compatible endpoint (vLLM, Ollama, llama.cpp)',
    load: async () => (await import('../trainer-image/eval/llm/caption-llm-command.js')).captionLlmCommand,
  },
  report: {
    summary: 'one self-contained HTML report comparing run outputs: scores, curves, attention maps, captions, embeddings',
    load: async () => (await import('../trainer-image/report/report-command.js')).reportCommand,
  },
};

function usage(): string {
  const width = Math.max(...Object.keys(commands).map((c) => c.length));
  const lines = Object.entries(commands).map(([name, e]) => `  ${name.padEnd(width)}  ${e.summary}`);
  return `Usage: captionrun COMMAND [options]

Train image-captioning models that survive crashes, locally or on Kubernetes.

Commands:
${lines.join('\n')}

Run \`captionrun COMMAND --help\` for a command's options.
Options: -h, --help; -v, --version
`;
}

export async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === '-h' || name === '--help' || name === 'help') {
    const topic = name === 'help' ? rest[0] : undefined;
    if (topic && commands[topic]) return (await commands[topic].load()).run(['--help']);
    process.stdout.write(usage());
    return name === undefined ? ExitCode.Usage : ExitCode.Ok;
  }
  if (name === '-v' || name === '--version') {
    process.stdout.write(`${packageVersion()}\n`);
    return ExitCode.Ok;
  }
  const entry = commands[name];
  if (!entry) {
    process.stderr.write(`captionrun: unknown command "${name}"\n\n${usage()}`);
    return ExitCode.Usage;
  }
  try {
    return await (await entry.load()).run(rest);
  } catch (err) {
    if (err instanceof CaptionrunError) {
      process.stderr.write(`captionrun ${name}: ${err.describe()}\n`);
      return err.exitCode;
    }
    process.stderr.write(`captionrun ${name}: ${(err as Error).stack ?? String(err)}\n`);
    return ExitCode.Failure;
  }
}

process.exitCode = await main(process.argv.slice(2));
