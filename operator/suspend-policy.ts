// spec.suspend: true ends the current attempt (its pods get SIGTERM and write a final checkpoint) and
// launches nothing; unsetting it lets the launch policy start the next attempt from that checkpoint.
import { ConditionType, setCondition } from './conditions.js';
import type { PolicyContext } from './run-plan.js';

/** Returns true when the run is suspended and nothing else should happen in this reconcile. */
export function applySuspendPolicy(ctx: PolicyContext): boolean {
  const { status } = ctx.plan;
  const generation = ctx.run.metadata.generation;
  if (ctx.spec.suspend) {
    if (status.phase !== 'Suspended') {
      // Advancing the attempt turns the running pods into an older attempt, which is deleted gracefully.
      if ((status.workers?.total ?? 0) > 0 || ctx.gang.current.size > 0) status.attempt = ctx.gang.attempt + 1;
      status.phase = 'Suspended';
      status.workers = { ready: 0, total: 0 };
      ctx.plan.events.push({ type: 'Normal', reason: 'Suspended', message: 'spec.suspend is true: stopping the gang after a final checkpoint' });
    }
    status.conditions = setCondition(status.conditions ?? [], { type: ConditionType.Suspended, status: 'True', reason: 'Suspended', message: 'spec.suspend is true' }, ctx.nowIso, generation);
    status.conditions = setCondition(status.conditions, { type: ConditionType.Ready, status: 'False', reason: 'Suspended', message: 'the run is suspended' }, ctx.nowIso, generation);
    return true;
  }
  if (status.phase === 'Suspended') {
    status.phase = 'Pending';
    status.conditions = setCondition(status.conditions ?? [], { type: ConditionType.Suspended, status: 'False', reason: 'Resumed', message: 'spec.suspend was unset' }, ctx.nowIso, generation);
    ctx.plan.events.push({ type: 'Normal', reason: 'Resumed', message: 'spec.suspend was unset: relaunching from the latest valid checkpoint' });
  }
  return false;
}
