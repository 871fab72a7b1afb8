// spec.suspend: true ends the current attempt (its pods get SIGTERM and write a final checkpoint) and
// launches nothing; unsetting it lets the launch policy start the next attempt from that checkpoint.
import { ConditionType } from './conditions.js';
import { condition, type PolicyContext } from './run-plan.js';

/** Returns true when the run is suspended and nothing else should happen in this reconcile. */
export function applySuspendPolicy(ctx: PolicyContext): boolean {
  const { status } = ctx.plan;
  if (ctx.spec.suspend) {
    if (status.phase !== 'Suspended') {
      // Advancing the attempt turns the running pods into an older attempt, which is deleted gracefully.
      if ((status.workers?.total ?? 0) > 0 || ctx.gang.current.size > 0) status.attempt = ctx.gang.attempt + 1;
      status.phase = 'Suspended';
      status.workers = { ready: 0, total: 0 };
      ctx.plan.events.push({ type: 'Normal', reason: 'Suspended', message: 'spec.suspend is true: stopping the gang after a final checkpoint' });
    }
    condition(ctx, ConditionType.Suspended, 'True', 'Suspended', 'spec.suspend is true');
    condition(ctx, ConditionType.Ready, 'False', 'Suspended', 'the run is suspended');
    return true;
  }
  if (status.phase === 'Suspended') {
    status.phase = 'Pending';
    condition(ctx, ConditionType.Suspended, 'False', 'Resumed', 'spec.suspend was unset');
    ctx.plan.events.push({ type: 'Normal', reason: 'Resumed', message: 'spec.suspend was unset: relaunching from the latest valid checkpoint' });
  }
  return false;
}
