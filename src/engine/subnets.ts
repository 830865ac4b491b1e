// Which /24s of 198.18.0.0/15 a new instance takes: free ones only, from a random place in the pool so that
// processes starting at the same moment rarely pick the same; the engine refuses an overlap, and provisioning
// then tries others.
import { LabError } from '../errors.js';
import { overlaps, subnetAt, SUBNET_POOL } from '../plan/plan.js';

/** Pick free /24s from the pool, skipping every subnet the engine already has. */
export function pickSubnets(used: string[], count: number, start: number): string[] {
  const picked: string[] = [];
  for (let k = 0; k < SUBNET_POOL.count && picked.length < count; k++) {
    const candidate = subnetAt(start + k);
    if (!used.some((u) => overlaps(u, candidate)) && !picked.includes(candidate)) picked.push(candidate);
  }
  if (picked.length < count) {
    throw new LabError(
      'no free subnet left in 198.18.0.0/15 for a new lab',
      'remove old labs with `lab clean`, or networks of your own in that range',
    );
  }
  return picked;
}

export function randomPoolStart(): number {
  return Math.floor(Math.random() * SUBNET_POOL.count);
}
