// The run succeeds when every worker of the current gang exited 0; its outputs are then next to its checkpoints.
import { OUTPUTS_DIR } from '../lib/checkpoint/outputs.js';
import { checkpointLocation } from '../lib/checkpoint/location.js';
import { ConditionType } from './conditions.js';
import { isSucceeded } from './pod-state.js';
import { condition, type PolicyContext } from './run-plan.js';

export function applySuccessPolicy(ctx: PolicyContext): boolean {
  const { gang, plan } = ctx;
  if (gang.current.size < gang.workers || ![...gang.current.values()].every(isSucceeded)) return false;
  plan.status.phase = 'Succeeded';
  plan.status.completionTime = ctx.nowIso;
  plan.status.workers = { ready: 0, total: gang.workers };
  // Rank 0 publishes the outputs next to the checkpoints before it exits 0.
  plan.status.outputURI = `${checkpointLocation(ctx.spec.checkpoint.store, ctx.run.metadata.namespace, ctx.run.metadata.name).uri}/${OUTPUTS_DIR}`;
  // With evaluation.report.enabled a trainer exits 0 only after writing the report into its outputs.
  if (ctx.spec.evaluation.report.enabled) plan.status.reportURI = `${plan.status.outputURI}/report.html`;
  condition(ctx, ConditionType.Ready, 'False', 'Succeeded', 'training finished');
  condition(ctx, ConditionType.Progressing, 'False', 'Succeeded', `all ${gang.workers} workers exited 0`);
  plan.events.push({ type: 'Normal', reason: 'Succeeded', message: `training finished: all ${gang.workers} workers exited 0; outputs in ${plan.status.outputURI}` });
  return true;
}
