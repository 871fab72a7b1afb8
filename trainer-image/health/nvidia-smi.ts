// GPU utilisation and memory from `nvidia-smi`, the one interface every NVIDIA driver ships. A machine without
// the binary (or without GPUs) yields no devices: the monitor then exports no GPU series rather than zeros,
// so "GPU idle" can never fire on a CPU-only run.
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';

const run = promisify(execFile);

export const NVIDIA_SMI_QUERY = ['index', 'uuid', 'name', 'utilization.gpu', 'memory.used', 'memory.total'] as const;

export interface GpuSample {
  index: number;
  uuid: string;
  name: string;
  /** 0..1, or undefined where the driver reports [N/A] (e.g. some MIG slices). */
  utilization?: number;
  memoryUsedBytes?: number;
  memoryTotalBytes?: number;
}

const MIB = 1024 * 1024;

/** Parses `nvidia-smi --query-gpu=<NVIDIA_SMI_QUERY> --format=csv,noheader,nounits` output. */
export function parseNvidiaSmi(csv: string): GpuSample[] {
  const number = (field: string | undefined): number | undefined => {
    if (field === undefined) return undefined;
    const value = Number(field.trim());
    return field.trim() === '' || Number.isNaN(value) ? undefined : value;
  };
  return csv
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line !== '')
    .map((line) => {
      const [index, uuid, name, util, used, total] = line.split(',').map((f) => f.trim());
      const idx = number(index);
      if (idx === undefined || uuid === undefined || name === undefined) {
        throw new Error(`unexpected nvidia-smi line: "${line}"`);
      }
      const utilization = number(util);
      const usedMiB = number(used);
      const totalMiB = number(total);
      return {
        index: idx,
        uuid,
        name,
        utilization: utilization === undefined ? undefined : utilization / 100,
        memoryUsedBytes: usedMiB === undefined ? undefined : usedMiB * MIB,
        memoryTotalBytes: totalMiB === undefined ? undefined : totalMiB * MIB,
      };
    });
}

/** Queries the GPUs; [] when nvidia-smi is not installed. Other failures (a hung driver) are thrown. */
export async function queryGpus(binary = 'nvidia-smi', timeoutMs = 10_000): Promise<GpuSample[]> {
  try {
    const { stdout } = await run(binary, [`--query-gpu=${NVIDIA_SMI_QUERY.join(',')}`, '--format=csv,noheader,nounits'], {
      timeout: timeoutMs,
    });
    return parseNvidiaSmi(stdout);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw err;
  }
}
