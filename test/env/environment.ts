// The whole local test environment in one call: control plane, MinIO as S3, and the node agent with GPU nodes,
// plus a Secret holding the MinIO credentials the way a run's spec.checkpoint.store.s3.credentialsSecret expects.
import { CoreV1Api } from '@kubernetes/client-node';
import { createLogger, type Logger } from '../../lib/telemetry/logger.js';
import { startCluster, type Cluster } from './cluster.js';
import type { ImageMap } from './images.js';
import { startMinio, type MinioServer } from './minio.js';
import { NodeAgent, type AgentNodeSpec } from './node-agent.js';

export interface TestEnvironmentOptions {
  nodes?: AgentNodeSpec[];
  nodeMonitorGracePeriodSeconds?: number;
  images?: ImageMap;
  /** Namespace of the S3 credentials Secret. */
  namespace?: string;
  logger?: Logger;
}

export interface TestEnvironment {
  cluster: Cluster;
  minio: MinioServer;
  agent: NodeAgent;
  /** Secret with AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY for MinIO. */
  s3Secret: { namespace: string; name: string };
  stop(): Promise<void>;
}

export const DEFAULT_NODES: AgentNodeSpec[] = [
  { name: 'gpu-node-1', gpus: 4, cpu: '16', memory: '64Gi' },
  { name: 'gpu-node-2', gpus: 4, cpu: '16', memory: '64Gi' },
];

export const S3_SECRET_NAME = 'captionrun-s3';

export async function startTestEnvironment(options: TestEnvironmentOptions = {}): Promise<TestEnvironment> {
  const logger = options.logger ?? createLogger({ component: 'test-environment' });
  const [cluster, minio] = await Promise.all([
    startCluster({ nodeMonitorGracePeriodSeconds: options.nodeMonitorGracePeriodSeconds, logger }),
    startMinio(),
  ]);
  let agent: NodeAgent | undefined;
  try {
    agent = await NodeAgent.start({ cluster, nodes: options.nodes ?? DEFAULT_NODES, images: options.images, logger: logger.child({ component: 'node-agent' }) });
    const namespace = options.namespace ?? 'default';
    const core = cluster.kubeConfig().makeApiClient(CoreV1Api);
    await core.createNamespacedSecret({
      namespace,
      body: {
        metadata: { name: S3_SECRET_NAME, namespace },
        stringData: { AWS_ACCESS_KEY_ID: minio.accessKeyId, AWS_SECRET_ACCESS_KEY: minio.secretAccessKey },
      },
    });
    const running = agent;
    return {
      cluster,
      minio,
      agent: running,
      s3Secret: { namespace, name: S3_SECRET_NAME },
      async stop() {
        await running.stop();
        await Promise.all([cluster.stop(), minio.stop()]);
      },
    };
  } catch (err) {
    await agent?.stop();
    await Promise.all([cluster.stop(), minio.stop()]);
    throw err;
  }
}
